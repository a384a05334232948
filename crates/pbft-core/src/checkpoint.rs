//! Checkpoints, the stable checkpoint, watermarks and garbage collection
//! (§4.3).
//!
//! Every `K` executed numbers a replica snapshots its state, multicasts a
//! signed `<CHECKPOINT, n, d, i>`, and keeps the snapshot. When `2f + 1`
//! replicas (its own vote included) agree on `(n, d)`, the checkpoint is
//! *stable*: its proof is those signed messages, the low watermark `h`
//! moves to `n`, and everything at or below `n` is discarded from the log.
//! Only numbers in the window `(h, h + L]` are accepted or assigned, so the
//! log never holds more than `L` numbers.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::auth::Signature;
use crate::chunks::{manifest_digest, Layout};
use crate::digest::Digest;
use crate::message::{CheckpointVote, Manifest, Message, Phase, Signed};
use crate::output::{Destination, Output};
use crate::rejection::Rejection;
use crate::replica::Replica;
use crate::service::Service;
use crate::types::{ReplicaId, Seq};
use crate::votes::{NotRecorded, Votes};

/// A replica's own checkpoint: the state it had after executing `seq`.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The state digest: SHA-256 over the state's length, the chunk size
    /// and the digests of its chunks (see [`Manifest`]).
    pub digest: Digest,
    /// The service's snapshot.
    pub service: Arc<Vec<u8>>,
    /// The client table's snapshot (the last reply per client).
    pub clients: Arc<Vec<u8>>,
    /// The digest of each chunk of the canonical state bytes, in order.
    pub chunks: Arc<Vec<Digest>>,
}

impl Snapshot {
    /// The snapshot of these two parts, cut into chunks of `chunk_bytes`.
    pub(crate) fn of(service: Vec<u8>, clients: Vec<u8>, chunk_bytes: usize) -> Snapshot {
        let layout = Layout::new(&service, &clients);
        let chunks = layout.chunk_digests(chunk_bytes);
        let digest = manifest_digest(layout.len(), chunk_bytes, &chunks);
        Snapshot {
            digest,
            service: Arc::new(service),
            clients: Arc::new(clients),
            chunks: Arc::new(chunks),
        }
    }

    /// The length of the canonical state bytes.
    pub(crate) fn length(&self) -> u64 {
        Layout::new(&self.service, &self.clients).len()
    }

    /// The manifest that proves each chunk against the digest.
    pub(crate) fn manifest(&self) -> Manifest {
        Manifest {
            length: self.length(),
            chunks: Arc::clone(&self.chunks),
        }
    }

    /// The bytes of chunk `index`.
    pub(crate) fn chunk(&self, chunk_bytes: usize, index: u64) -> Vec<u8> {
        Layout::new(&self.service, &self.clients).chunk(chunk_bytes, index)
    }
}

/// The last stable checkpoint and its proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StableCheckpoint {
    /// Its sequence number, the low watermark `h`. 0 before the first.
    pub seq: Seq,
    /// The state digest `2f + 1` replicas signed.
    pub digest: Digest,
    /// Their signed checkpoint messages. Empty for the initial state,
    /// which needs no proof.
    pub proof: Vec<Signed>,
}

/// Checkpoint bookkeeping of one replica.
#[derive(Clone, Debug)]
pub(crate) struct Checkpoints {
    pub(crate) interval: u64,
    pub(crate) window: u64,
    /// The size of a state chunk.
    pub(crate) chunk_bytes: usize,
    pub(crate) stable: StableCheckpoint,
    /// This replica's snapshots above the stable one, and the stable one.
    own: BTreeMap<Seq, Snapshot>,
    /// Checkpoint messages received for numbers above the stable one.
    votes: BTreeMap<Seq, Votes>,
}

impl Checkpoints {
    pub(crate) fn new(
        interval: u64,
        window: u64,
        chunk_bytes: usize,
        initial: Snapshot,
    ) -> Checkpoints {
        let stable = StableCheckpoint {
            seq: Seq(0),
            digest: initial.digest,
            proof: Vec::new(),
        };
        Checkpoints {
            interval,
            window,
            chunk_bytes,
            stable,
            own: BTreeMap::from([(Seq(0), initial)]),
            votes: BTreeMap::new(),
        }
    }

    /// The low watermark `h`.
    pub(crate) fn low(&self) -> Seq {
        self.stable.seq
    }

    /// The checkpoint votes held for `seq`.
    pub(crate) fn votes_at(&self, seq: Seq) -> Option<&Votes> {
        self.votes.get(&seq)
    }

    /// The high watermark `H = h + L`.
    pub(crate) fn high(&self) -> Seq {
        Seq(self.low().0.saturating_add(self.window))
    }

    /// Accepts `seq` only inside the window `(h, H]`.
    pub(crate) fn check_window(&self, seq: Seq) -> Result<(), Rejection> {
        let (low, high) = (self.low(), self.high());
        if seq <= low || seq > high {
            return Err(Rejection::OutsideWindow { seq, low, high });
        }
        Ok(())
    }

    /// This replica's snapshot at `seq`, if it kept one.
    pub(crate) fn own_snapshot(&self, seq: Seq) -> Option<&Snapshot> {
        self.own.get(&seq)
    }

    /// Installs a checkpoint restored from a peer as the stable one.
    pub(crate) fn install(&mut self, checkpoint: StableCheckpoint, snapshot: Snapshot) {
        self.own.insert(checkpoint.seq, snapshot);
        self.stable = checkpoint;
    }

    /// Whether a checkpoint is taken after executing `seq`.
    pub(crate) fn is_checkpoint(&self, seq: Seq) -> bool {
        seq.0 > 0 && seq.0.is_multiple_of(self.interval)
    }
}

impl<S: Service> Replica<S> {
    /// The replica's current state as a checkpoint snapshot.
    pub(crate) fn current_snapshot(&self) -> Snapshot {
        let service = self.service.snapshot();
        let clients = self.clients.snapshot();
        Snapshot::of(service, clients, self.checkpoints.chunk_bytes)
    }

    /// After executing `seq`, takes a checkpoint if `seq` is a multiple of
    /// `K`: keeps the snapshot and multicasts a signed checkpoint message.
    pub(crate) fn take_checkpoint(&mut self, seq: Seq, out: &mut Vec<Output>) {
        if !self.checkpoints.is_checkpoint(seq) || seq <= self.checkpoints.low() {
            return;
        }
        let snapshot = self.current_snapshot();
        let vote = CheckpointVote {
            seq,
            digest: snapshot.digest,
            replica: self.id,
        };
        self.checkpoints.own.insert(seq, snapshot);
        let signature = self.send(Destination::Others, Message::Checkpoint(vote), out);
        let n = self.quorums.n();
        // Messages claiming to be from this replica are rejected on arrival,
        // so this is the first time its own vote is recorded.
        let recorded = self.checkpoints.votes.entry(seq).or_default().record(
            n,
            self.id,
            vote.digest,
            signature,
        );
        debug_assert!(recorded.is_ok(), "own checkpoint recorded twice");
        self.try_stabilize(seq, out);
    }

    /// A peer's checkpoint message.
    pub(crate) fn on_checkpoint(
        &mut self,
        from: ReplicaId,
        vote: CheckpointVote,
        signature: Option<Signature>,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        if vote.replica != from {
            return Err(Rejection::SenderMismatch {
                claimed: vote.replica,
            });
        }
        if !self.checkpoints.is_checkpoint(vote.seq) {
            return Err(Rejection::NotACheckpoint { seq: vote.seq });
        }
        if vote.seq > self.checkpoints.high() {
            // Not counted, but a sign that this replica may be behind.
            self.note_ahead(from, vote.seq);
        }
        self.checkpoints.check_window(vote.seq)?;
        let n = self.quorums.n();
        self.checkpoints
            .votes
            .entry(vote.seq)
            .or_default()
            .record(n, from, vote.digest, signature)
            .map_err(|not_recorded| match not_recorded {
                NotRecorded::Duplicate => Rejection::DuplicateVote {
                    phase: Phase::Checkpoint,
                    seq: vote.seq,
                },
                NotRecorded::Conflict { first } => Rejection::ConflictingVote {
                    phase: Phase::Checkpoint,
                    seq: vote.seq,
                    first,
                    second: vote.digest,
                },
            })?;
        self.try_stabilize(vote.seq, out);
        Ok(())
    }

    /// Makes the checkpoint at `seq` stable once a quorum agrees with this
    /// replica's own snapshot there.
    fn try_stabilize(&mut self, seq: Seq, out: &mut Vec<Output>) {
        let quorum = self.quorums.quorum();
        let Some(own) = self.checkpoints.own.get(&seq) else {
            // Not executed that far yet: checked again when it is. Once
            // f + 1 replicas agree on the checkpoint, at least one honest
            // replica has that state, and this one may have missed
            // messages: it asks for the state (which it accepts only with
            // a full proof).
            let weak = self.quorums.weak();
            let vouched = self
                .checkpoints
                .votes
                .get(&seq)
                .is_some_and(|v| v.quorum_digest(weak).is_some());
            if vouched {
                self.note_behind(seq);
            }
            return;
        };
        let digest = own.digest;
        let Some(votes) = self.checkpoints.votes.get(&seq) else {
            return;
        };
        if seq <= self.checkpoints.low() || votes.matching(digest) < quorum {
            return;
        }
        let proof = votes
            .signed_for(digest)
            .map(|(replica, signature)| Signed {
                message: Message::Checkpoint(CheckpointVote {
                    seq,
                    digest,
                    replica,
                }),
                signature,
            })
            .collect();
        self.checkpoints.stable = StableCheckpoint { seq, digest, proof };
        self.collect_garbage(seq, out);
    }

    /// Discards everything at or below the new stable checkpoint `seq`.
    pub(crate) fn collect_garbage(&mut self, seq: Seq, out: &mut Vec<Output>) {
        self.log.remove_through(seq);
        let cp = &mut self.checkpoints;
        cp.votes = cp.votes.split_off(&seq.next());
        cp.own = cp.own.split_off(&seq);
        self.persist_base(out);
        // The window moved: the primary may propose what it held back.
        self.propose_pending(out);
    }

    /// Adopts a stable checkpoint proven elsewhere (in a new view's view
    /// changes). With the state at that number, this replica collects its
    /// garbage as for its own; without it, it is behind and needs the state
    /// from its peers.
    pub(crate) fn adopt_checkpoint(&mut self, checkpoint: StableCheckpoint, out: &mut Vec<Output>) {
        let seq = checkpoint.seq;
        if seq <= self.checkpoints.low() {
            return;
        }
        let matches = self
            .checkpoints
            .own
            .get(&seq)
            .is_some_and(|own| own.digest == checkpoint.digest);
        if matches {
            self.checkpoints.stable = checkpoint;
            self.collect_garbage(seq, out);
        } else {
            self.note_behind(seq);
        }
    }

    /// The last stable checkpoint and its proof.
    pub fn stable_checkpoint(&self) -> &StableCheckpoint {
        &self.checkpoints.stable
    }

    /// The low and high watermarks `(h, H]`.
    pub fn watermarks(&self) -> (Seq, Seq) {
        (self.checkpoints.low(), self.checkpoints.high())
    }
}
