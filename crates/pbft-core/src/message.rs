//! The replica-to-replica messages of the normal case (§4.2).
//!
//! Local events (ticks, client input) are [`Input`](crate::Input)s, never
//! messages. Every message here is something one replica sends another.

use std::sync::Arc;

use crate::auth::Signature;
use crate::digest::Digest;
use crate::request::{Batch, Request};
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
/// `batch.digest()` before accepting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrePrepare {
    /// The view the primary proposes in.
    pub view: View,
    /// The sequence number it assigns.
    pub seq: Seq,
    /// The claimed digest of `batch`.
    pub digest: Digest,
    /// The requests, shared rather than copied between replicas.
    pub batch: Arc<Batch>,
}

impl PrePrepare {
    /// A pre-prepare whose digest is the batch's own.
    pub fn new(view: View, seq: Seq, batch: Arc<Batch>) -> PrePrepare {
        PrePrepare {
            view,
            seq,
            digest: batch.digest(),
            batch,
        }
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
