//! Typed reasons for ignoring a peer's message.
//!
//! Byzantine input is data, not an error: a replica that ignores a message
//! reports why as a [`Rejection`], which tests assert on and logs show.

use std::fmt;

use crate::auth::AuthFailure;
use crate::digest::Digest;
use crate::message::Phase;
use crate::state_transfer::StateError;
use crate::types::{ClientId, ReplicaId, Seq, View};
use crate::view_change::{NewViewError, ViewChangeError};

/// Why a replica ignored a message from a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The sender is not one of the `n` replicas.
    NonMember,
    /// The message claims to come from the receiving replica itself, which
    /// never sends to itself: someone else wrote it.
    FromSelf,
    /// The signature does not show that the sender wrote the message: it
    /// is missing, forged, made by another replica, or the message was
    /// altered. The message counts for nothing.
    Unauthentic(AuthFailure),
    /// A vote names a different replica than the one that sent it.
    SenderMismatch {
        /// The replica named inside the message.
        claimed: ReplicaId,
    },
    /// The message belongs to a view other than the replica's current one.
    WrongView {
        /// The replica's view.
        current: View,
        /// The message's view.
        received: View,
    },
    /// A pre-prepare that did not come from the primary of its view.
    NotPrimary {
        /// The primary of the message's view.
        primary: ReplicaId,
    },
    /// A prepare from the primary, which never sends one (§4.2).
    PrepareFromPrimary,
    /// Sequence number 0 is never assigned.
    ZeroSeq,
    /// A pre-prepare whose digest is not the digest of its batch.
    DigestMismatch {
        /// The sequence number it proposed.
        seq: Seq,
        /// The digest it claimed.
        claimed: Digest,
        /// The digest of the batch it carried.
        actual: Digest,
    },
    /// A second pre-prepare for a `(view, seq)` that already has one with
    /// another digest: the primary equivocated.
    ConflictingPrePrepare {
        /// The view.
        view: View,
        /// The sequence number.
        seq: Seq,
        /// The digest accepted first.
        accepted: Digest,
        /// The digest offered now.
        offered: Digest,
    },
    /// The same pre-prepare again; it changes nothing.
    DuplicatePrePrepare {
        /// The sequence number.
        seq: Seq,
    },
    /// The same vote again from the same replica; it counts once.
    DuplicateVote {
        /// Prepare or commit.
        phase: Phase,
        /// The sequence number.
        seq: Seq,
    },
    /// A replica voted for two digests at one `(view, seq)`; the first
    /// vote stands.
    ConflictingVote {
        /// Prepare or commit.
        phase: Phase,
        /// The sequence number.
        seq: Seq,
        /// The digest of its first vote.
        first: Digest,
        /// The digest of this vote.
        second: Digest,
    },
    /// A prepare for a number this replica is already prepared at, or a
    /// commit for one it already committed: the slot's certificate is
    /// complete, so the vote is dropped before its signature is checked.
    Unneeded {
        /// Which phase.
        phase: Phase,
        /// The number.
        seq: Seq,
    },
    /// A sequence number outside the window `(low, high]`: at or below the
    /// last stable checkpoint, or too far ahead (§4.3).
    OutsideWindow {
        /// The number.
        seq: Seq,
        /// The low watermark `h`.
        low: Seq,
        /// The high watermark `H = h + L`.
        high: Seq,
    },
    /// A checkpoint for a number that is not a multiple of the interval.
    NotACheckpoint {
        /// The number.
        seq: Seq,
    },
    /// A forwarded request arrived while the primary already holds back as
    /// many requests as it may; it is dropped.
    Overloaded,
    /// A peer asks for state more often than once per timeout.
    TooFrequent,
    /// A status report that lists more numbers than one answer covers,
    /// or lists them out of order or outside the numbers it covers.
    InvalidReport,
    /// A view change or new view from a peer whose last one did not
    /// check, less than a base timeout ago: it is dropped unchecked, since
    /// checking costs a signature check per certificate member.
    ViewChangeThrottled,
    /// State from a peer that does not check.
    InvalidState(StateError),
    /// A pre-prepare arrived while a view change is in progress.
    ViewChanging,
    /// A message of a view this replica follows while it changes views
    /// alone, for a number that already executed or is already proven
    /// committed here (`follow.rs`).
    AlreadyCommitted {
        /// The number.
        seq: Seq,
    },
    /// A view change or new view for a view that is already installed, or
    /// older than one this sender already asked for.
    StaleViewChange {
        /// The view it is compared with.
        current: View,
        /// The view of the message.
        received: View,
    },
    /// A view change whose certificates do not check.
    InvalidViewChange(ViewChangeError),
    /// A new view that does not check.
    InvalidNewView(NewViewError),
    /// A forwarded client request whose operation the service refuses.
    InvalidOperation(String),
    /// A forwarded request, or one in a pre-prepare, from a client with a
    /// configured public key that lacks its valid signature: a replica
    /// tried to order an operation in the client's name.
    UnauthenticRequest {
        /// The client it claims to come from.
        client: ClientId,
        /// What is wrong with its signature.
        failure: AuthFailure,
    },
    /// A forwarded request whose timestamp is further ahead of its
    /// client's last executed one than the configuration allows.
    TimestampTooFarAhead {
        /// The client.
        client: ClientId,
        /// The request's timestamp.
        timestamp: u64,
        /// The client's last executed timestamp (0 if none).
        latest: u64,
    },
    /// A forwarded request, or one in a pre-prepare's batch, larger than
    /// the configured limit: an honest replica never relays or proposes
    /// one.
    RequestTooLarge {
        /// The request's [`size`](crate::Request::size).
        size: usize,
        /// The most a request may take.
        limit: usize,
    },
    /// A pre-prepare that names its batch by digest only, outside a new
    /// view: in the normal case the primary sends the batch, so that no
    /// number prepares whose batch no honest replica holds.
    MissingBatch {
        /// The sequence number.
        seq: Seq,
    },
    /// A pre-prepare whose batch is larger than the configured limit: an
    /// honest primary never proposes one.
    BatchTooLarge {
        /// The batch's [`size`](crate::Batch::size).
        size: usize,
        /// The most a batch may take.
        limit: usize,
    },
}

impl Rejection {
    /// Whether this is what a correct peer's messages meet in normal
    /// operation: a repeat, a vote beyond a quorum, or a number or a state
    /// the replica has moved past. A node logs these quietly; the others point
    /// at a faulty or confused peer.
    pub fn is_routine(&self) -> bool {
        match self {
            Rejection::DuplicatePrePrepare { .. }
            | Rejection::DuplicateVote { .. }
            | Rejection::Unneeded { .. }
            | Rejection::AlreadyCommitted { .. } => true,
            // An answer to a status report that crossed this replica's own
            // progress: everything in it is executed here already.
            Rejection::InvalidState(StateError::Stale { .. }) => true,
            Rejection::OutsideWindow { seq, low, .. } => seq <= low,
            _ => false,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::NonMember => f.write_str("sender is not a member of the cluster"),
            Rejection::FromSelf => f.write_str("message claims to come from this replica itself"),
            Rejection::Unauthentic(failure) => write!(f, "not authentic: {failure}"),
            Rejection::SenderMismatch { claimed } => {
                write!(f, "vote claims to be from {claimed}, not its sender")
            }
            Rejection::WrongView { current, received } => {
                write!(f, "message for {received}, replica is in {current}")
            }
            Rejection::NotPrimary { primary } => {
                write!(f, "pre-prepare not from the primary ({primary})")
            }
            Rejection::PrepareFromPrimary => f.write_str("the primary does not send prepares"),
            Rejection::ZeroSeq => f.write_str("sequence number 0 is never assigned"),
            Rejection::DigestMismatch {
                seq,
                claimed,
                actual,
            } => write!(
                f,
                "pre-prepare {seq} claims digest {claimed} but its batch hashes to {actual}"
            ),
            Rejection::ConflictingPrePrepare {
                view,
                seq,
                accepted,
                offered,
            } => write!(
                f,
                "second pre-prepare for ({view}, {seq}): accepted {accepted}, offered {offered}"
            ),
            Rejection::DuplicatePrePrepare { seq } => write!(f, "duplicate pre-prepare {seq}"),
            Rejection::DuplicateVote { phase, seq } => {
                write!(f, "duplicate {phase} for {seq}; it counts once")
            }
            Rejection::ConflictingVote {
                phase,
                seq,
                first,
                second,
            } => write!(
                f,
                "conflicting {phase} for {seq}: voted {first} before, now {second}"
            ),
            Rejection::Unneeded { phase, seq } => {
                write!(f, "{phase} for {seq} not needed: the slot has its quorum")
            }
            Rejection::OutsideWindow { seq, low, high } => {
                write!(f, "{seq} is outside the window ({low}, {high}]")
            }
            Rejection::NotACheckpoint { seq } => {
                write!(f, "no checkpoint is taken at {seq}")
            }
            Rejection::ViewChanging => f.write_str("a view change is in progress"),
            Rejection::AlreadyCommitted { seq } => {
                write!(f, "{seq} already executed or is proven committed here")
            }
            Rejection::TooFrequent => f.write_str("state asked for too often"),
            Rejection::InvalidReport => {
                f.write_str("status report lists too many numbers, or lists them out of order")
            }
            Rejection::ViewChangeThrottled => f.write_str(
                "view change dropped unchecked: the sender's last one was invalid, \
                 less than a timeout ago",
            ),
            Rejection::Overloaded => f.write_str("the primary holds back too many requests"),
            Rejection::InvalidState(e) => write!(f, "invalid state transfer: {e}"),
            Rejection::StaleViewChange { current, received } => {
                write!(f, "stale view change for {received} (at {current})")
            }
            Rejection::InvalidViewChange(e) => write!(f, "invalid view change: {e}"),
            Rejection::InvalidNewView(e) => write!(f, "invalid new view: {e}"),
            Rejection::InvalidOperation(reason) => {
                write!(f, "forwarded request has an invalid operation: {reason}")
            }
            Rejection::UnauthenticRequest { client, failure } => {
                write!(
                    f,
                    "a request of client {client} is not authentic: {failure}"
                )
            }
            Rejection::TimestampTooFarAhead {
                client,
                timestamp,
                latest,
            } => write!(
                f,
                "a request of client {client} has timestamp {timestamp}, too far ahead of \
                 its last executed one ({latest})"
            ),
            Rejection::RequestTooLarge { size, limit } => {
                write!(f, "a request of {size} bytes is over the limit of {limit}")
            }
            Rejection::MissingBatch { seq } => {
                write!(f, "pre-prepare {seq} names its batch by digest only")
            }
            Rejection::BatchTooLarge { size, limit } => {
                write!(f, "a batch of {size} bytes is over the limit of {limit}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Seq;

    #[test]
    fn a_state_overtaken_by_execution_is_routine_and_a_bad_one_is_not() {
        let stale = Rejection::InvalidState(StateError::Stale {
            offered: Seq(128),
            executed: Seq(211),
        });
        assert!(stale.is_routine());
        assert!(!Rejection::InvalidState(StateError::DigestMismatch).is_routine());
    }
}
