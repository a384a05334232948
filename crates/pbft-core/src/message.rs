//! The replica-to-replica messages of the normal case (§4.2).
//!
//! Local events (ticks, client input) are [`Input`](crate::Input)s, never
//! messages. Every message here is something one replica sends another.

use std::sync::Arc;

use crate::auth::Signature;
use crate::certificate::{CommittedCertificate, PreparedCertificate};
use crate::checkpoint::StableCheckpoint;
use crate::digest::Digest;
use crate::request::{Batch, Request};
use crate::status::SlotPhase;
use crate::types::{ReplicaId, Seq, View};

/// A message from one replica to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A client request that a backup relays to the primary (§4.1).
    Forward(Request),
    /// `<PRE-PREPARE, v, n, d>` with the batch it orders.
    PrePrepare(PrePrepare),
    /// `<PREPARE, v, n, d, i>`.
    Prepare(Vote),
    /// `<COMMIT, v, n, d, i>`.
    Commit(Vote),
    /// `<CHECKPOINT, n, d, i>` (§4.3): replica `i` executed up to `n` and
    /// its state then had digest `d`.
    Checkpoint(CheckpointVote),
    /// `<VIEW-CHANGE, v+1, n, C, P, i>` (§4.4).
    ViewChange(ViewChange),
    /// `<NEW-VIEW, v+1, V, O>` (§4.4).
    NewView(NewView),
    /// A replica that is behind asks for a stable checkpoint at or above
    /// `seq`.
    FetchState(FetchState),
    /// The answer: a stable checkpoint's state, with its proof, and the
    /// committed batches after it.
    State(StateTransfer),
}

impl Message {
    /// The message's name, for logs and rejection reasons.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Forward(_) => "forward",
            Message::PrePrepare(_) => "pre-prepare",
            Message::Prepare(_) => "prepare",
            Message::Commit(_) => "commit",
            Message::Checkpoint(_) => "checkpoint",
            Message::ViewChange(_) => "view-change",
            Message::NewView(_) => "new-view",
            Message::FetchState(_) => "fetch-state",
            Message::State(_) => "state",
        }
    }

    /// The bytes of requests and snapshots the message carries, as the
    /// wire spends them: each request's [`Request::size`], each snapshot
    /// or state chunk byte twice (it travels as hex), and 67 bytes for
    /// each chunk digest of a manifest. Everything else a message
    /// holds (numbers, digests, signatures) takes a few hundred bytes per
    /// member, so this is what decides whether a message fits the
    /// transport.
    pub fn payload_size(&self) -> usize {
        let batch = |signed: &Signed| match &signed.message {
            Message::PrePrepare(pp) => pp.batch.as_ref().map_or(0, |b| b.size()),
            _ => 0,
        };
        match self {
            Message::Forward(request) => request.size(),
            Message::PrePrepare(pp) => pp.batch.as_ref().map_or(0, |b| b.size()),
            Message::ViewChange(vc) => vc
                .prepared
                .iter()
                .map(|cert| batch(&cert.pre_prepare))
                .sum(),
            Message::NewView(nv) => nv
                .view_changes
                .iter()
                .map(|signed| signed.message.payload_size())
                .chain(nv.pre_prepares.iter().map(batch))
                .sum(),
            Message::State(st) => st
                .committed
                .iter()
                .map(|cert| batch(&cert.pre_prepare))
                .sum::<usize>()
                .saturating_add(2 * (st.service.len() + st.clients.len()))
                .saturating_add(st.manifest.as_ref().map_or(0, |m| {
                    // 64 hex characters, two quotes and a comma each.
                    67 * m.chunks.len()
                }))
                .saturating_add(st.chunk.as_ref().map_or(0, |c| 2 * c.bytes.len())),
            Message::Prepare(_)
            | Message::Commit(_)
            | Message::Checkpoint(_)
            | Message::FetchState(_) => 0,
        }
    }
}

/// A message with its sender's signature, as it travels between replicas.
///
/// The signer is not written down: it is the sender for a forward, the
/// primary of the view for a pre-prepare, and the voter for a prepare or
/// commit, so a signature can always be checked against the replica the
/// message speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    /// The message.
    pub message: Message,
    /// Its sender's signature over
    /// [`message_bytes`](crate::message_bytes), or `None` when the sender
    /// does not sign.
    pub signature: Option<Signature>,
}

/// The primary's proposal to order `batch` at `seq` in `view`.
///
/// `digest` is what the primary claims; receivers check it against
/// `batch.digest()` before accepting. Inside view changes and new views a
/// pre-prepare names its batch by the digest alone (`batch` is `None`), so
/// that they stay small whatever the batches hold (§4.4): the signature
/// covers only `(view, seq, digest)`, and a replica that lacks the batch
/// gets it from the new primary, or from its peers, and checks it against
/// the digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrePrepare {
    /// The view the primary proposes in.
    pub view: View,
    /// The sequence number it assigns.
    pub seq: Seq,
    /// The claimed digest of `batch`.
    pub digest: Digest,
    /// The requests, shared rather than copied between replicas; `None`
    /// where the pre-prepare names its batch by digest only.
    pub batch: Option<Arc<Batch>>,
}

impl PrePrepare {
    /// A pre-prepare whose digest is the batch's own.
    pub fn new(view: View, seq: Seq, batch: Arc<Batch>) -> PrePrepare {
        PrePrepare {
            view,
            seq,
            digest: batch.digest(),
            batch: Some(batch),
        }
    }

    /// The same pre-prepare naming its batch by digest only. The null
    /// request keeps its (empty) batch: it costs nothing to carry.
    pub fn without_batch(&self) -> PrePrepare {
        PrePrepare {
            batch: self.batch.clone().filter(|batch| batch.is_empty()),
            ..self.clone()
        }
    }

    /// Whether `batch` is the one this pre-prepare's digest names.
    pub fn names(&self, batch: &Batch) -> bool {
        batch.digest() == self.digest
    }
}

/// A prepare or commit: replica `replica` votes for `digest` at
/// `(view, seq)`. Prepares and commits share this shape; the
/// [`Message`] variant says which one it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vote {
    /// The view of the vote.
    pub view: View,
    /// The sequence number voted on.
    pub seq: Seq,
    /// The digest of the batch voted for.
    pub digest: Digest,
    /// The voter, which must be the sender.
    pub replica: ReplicaId,
}

/// A backup's request to move to `new_view` (§4.4): its last stable
/// checkpoint with the proof, and a prepared certificate for every number
/// above it that prepared at this replica, from the latest view it
/// prepared in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewChange {
    /// The view to move to.
    pub new_view: View,
    /// The sender's last stable checkpoint, with its proof.
    pub checkpoint: StableCheckpoint,
    /// Prepared certificates above the checkpoint, in sequence order, at
    /// most one per number.
    pub prepared: Vec<PreparedCertificate>,
    /// The sender.
    pub replica: ReplicaId,
}

/// The new primary's announcement of `view` (§4.4): the `2f + 1` view
/// changes it collected, and the pre-prepares `O` they determine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewView {
    /// The new view.
    pub view: View,
    /// Signed view-change messages for `view` from distinct replicas.
    pub view_changes: Vec<Signed>,
    /// Signed pre-prepares for `view`, one per number from just above the
    /// latest stable checkpoint in `view_changes` to the highest prepared
    /// number in them; null requests fill the gaps.
    pub pre_prepares: Vec<Signed>,
}

/// A request for state: the sender is behind `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchState {
    /// The first number the sender has not executed: it asks for a stable
    /// checkpoint at or above it, or for the committed certificates from
    /// it on.
    pub seq: Seq,
    /// The sender.
    pub replica: ReplicaId,
    /// What the sender holds for the numbers from `seq` on, when it
    /// reports a stall (the BFT library's status message, Castro's thesis
    /// §5.2): peers then answer with exactly what it lacks.
    pub report: Option<StatusReport>,
    /// Set when the sender fetches a checkpoint's state in chunks: the
    /// chunks it asks this peer for. `None` asks for the checkpoint itself
    /// (its proof and manifest, or its whole state when that is one chunk)
    /// and the committed certificates after it.
    pub chunks: Option<ChunkRange>,
}

/// A stalled replica's status: its view, and how far each number it has
/// not committed has come there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusReport {
    /// The sender's view.
    pub view: View,
    /// The highest number the report covers. Every number from the
    /// request's `seq` through this one that `pending` does not list is
    /// committed at the sender; every number above it, the sender knows
    /// nothing of.
    pub through: Seq,
    /// The numbers up to `through` that the sender has not committed, in
    /// increasing order, each with its phase there: [`SlotPhase::None`]
    /// (no pre-prepare), [`SlotPhase::PrePrepare`] or
    /// [`SlotPhase::Prepared`].
    pub pending: Vec<(Seq, SlotPhase)>,
}

impl FetchState {
    /// A request for the stable checkpoint at or above `seq`, or the
    /// committed certificates from `seq` on.
    pub fn new(seq: Seq, replica: ReplicaId) -> FetchState {
        FetchState {
            seq,
            replica,
            report: None,
            chunks: None,
        }
    }
}

/// Consecutive chunks of one checkpoint's state (see [`Manifest`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRange {
    /// The checkpoint's sequence number.
    pub checkpoint: Seq,
    /// Its proven state digest.
    pub digest: Digest,
    /// The first chunk's index.
    pub first: u64,
    /// How many chunks; a peer serves only a few per tick.
    pub count: u64,
}

/// The chunk digests of a checkpoint's state: its canonical state bytes,
/// `length` of them, cut into chunks of
/// [`Config::state_chunk_bytes`](crate::Config::state_chunk_bytes). The
/// checkpoint digest is the digest of the length, the chunk size and this
/// list, so a manifest is checked against the proven digest, and each
/// chunk against its entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The length of the canonical state bytes.
    pub length: u64,
    /// Each chunk's digest, in order.
    pub chunks: Arc<Vec<Digest>>,
}

/// One chunk of a checkpoint's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Its index in the manifest.
    pub index: u64,
    /// Its bytes.
    pub bytes: Arc<Vec<u8>>,
}

/// A stable checkpoint's state and what was committed after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateTransfer {
    /// The checkpoint, with the proof that `2f + 1` replicas agreed on its
    /// digest.
    pub checkpoint: StableCheckpoint,
    /// The service's snapshot at the checkpoint.
    pub service: Arc<Vec<u8>>,
    /// The client table's snapshot at the checkpoint.
    pub clients: Arc<Vec<u8>>,
    /// Committed certificates for the numbers after the checkpoint, in
    /// order.
    pub committed: Vec<CommittedCertificate>,
    /// The sender.
    pub replica: ReplicaId,
    /// When the state goes in chunks: the checkpoint's manifest, and
    /// `service` and `clients` are empty. The receiver then fetches the
    /// chunks.
    pub manifest: Option<Manifest>,
    /// One chunk of the checkpoint's state, asked for by a
    /// [`ChunkRange`]; the checkpoint carries no proof then, and nothing
    /// else is set.
    pub chunk: Option<Chunk>,
}

/// A replica's claim about its state at a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointVote {
    /// The sequence number executed up to.
    pub seq: Seq,
    /// The digest of the state after executing it.
    pub digest: Digest,
    /// The replica, which must be the sender.
    pub replica: ReplicaId,
}

/// What a vote is for: a prepare or commit [`Vote`], or a
/// [`CheckpointVote`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The prepare phase.
    Prepare,
    /// The commit phase.
    Commit,
    /// Checkpoint votes (§4.3).
    Checkpoint,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Prepare => "prepare",
            Phase::Commit => "commit",
            Phase::Checkpoint => "checkpoint",
        })
    }
}
