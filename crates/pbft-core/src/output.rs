//! What goes into a replica ([`Input`]) and what comes out ([`Output`]).

use std::fmt;
use std::sync::Arc;

use crate::auth::AuthFailure;
use crate::digest::Digest;
use crate::durable::Record;
use crate::message::Signed;
use crate::rejection::Rejection;
use crate::request::{Batch, Request};
use crate::service::ExecResult;
use crate::types::{ReplicaId, Seq, View};

/// One event for [`Replica::step`](crate::Replica::step).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A message from peer `from`: the replica the transport says sent it.
    /// The replica verifies the signature against `from` before anything
    /// else, so with an authenticating [`Authenticator`](crate::Authenticator)
    /// the transport need not be trusted.
    Message {
        /// The sending replica.
        from: ReplicaId,
        /// The message and its signature.
        signed: Signed,
    },
    /// A request submitted by a client directly to this replica.
    Request(Request),
    /// One unit of time has passed.
    Tick,
}

/// One thing the replica wants done, in the order it wants it done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Make `record` durable before carrying out any output after this
    /// one. Only a durable replica ([`Replica::restore`]) emits these; see
    /// [`Record`] for the contract.
    ///
    /// [`Replica::restore`]: crate::Replica::restore
    Persist(Record),
    /// Send `signed` to `to`.
    Send {
        /// Who gets it.
        to: Destination,
        /// What to send, signed by this replica.
        signed: Signed,
    },
    /// A request this replica received from a client now has a sequence
    /// number: the acknowledgement the client is waiting for.
    Ordered(Ordered),
    /// A request this replica received from a client was refused and will
    /// not be ordered: at intake, or, while it waited here, because another
    /// request of its client executed under its timestamp
    /// ([`Refusal::Conflict`]).
    Refused {
        /// The refused request.
        request: Request,
        /// Why.
        reason: Refusal,
    },
    /// A client retried a request this replica already executed: the
    /// result it had, to send again (§4.1). The request is not executed
    /// again.
    Answered {
        /// The retried request.
        request: Request,
        /// The number it executed at.
        seq: Seq,
        /// Its result.
        result: ExecResult,
    },
    /// A batch was executed, in sequence order, with no gaps.
    Executed(Executed),
    /// The replica restored a stable checkpoint's state from its peers: it
    /// now stands executed up to `seq`, and executes on from there.
    Restored {
        /// The checkpoint's number.
        seq: Seq,
        /// The state digest `2f + 1` replicas signed.
        digest: Digest,
    },
    /// A message from a peer was ignored.
    Rejected {
        /// The sender.
        from: ReplicaId,
        /// The kind of message, as [`Message::kind`](crate::Message::kind)
        /// names it.
        kind: &'static str,
        /// Why it was ignored.
        reason: Rejection,
    },
}

/// The recipients of a [`Output::Send`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Every replica except the sender (a multicast).
    Others,
    /// One replica.
    Replica(ReplicaId),
}

/// A client request and the sequence number it was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ordered {
    /// The request.
    pub request: Request,
    /// The view of the pre-prepare that assigned the number. For a retry of
    /// a request this replica knows only from a restored checkpoint, view
    /// 0: views are not part of the replicated state.
    pub view: View,
    /// The assigned sequence number.
    pub seq: Seq,
}

/// Why a client request was refused before it was ordered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The service's [`check`](crate::Service::check) refused the operation.
    InvalidOperation(String),
    /// The primary's window is full and it already holds back as many
    /// requests as it may; the client should retry later.
    Overloaded,
    /// The request is larger than the replica accepts: every message that
    /// carries it must fit the transport.
    TooLarge {
        /// The request's [`size`](crate::Request::size).
        size: usize,
        /// The most a request may take.
        limit: usize,
    },
    /// The client already had a later request executed; this one is older
    /// than the replica's record and will never be ordered (§4.1).
    Stale {
        /// The latest timestamp executed for this client.
        latest: u64,
    },
    /// The client's timestamp was already used by another request (another
    /// digest), which executed: this one will never be ordered, and the
    /// other's result is not its to have (§4.1: a reply answers one
    /// request).
    Conflict {
        /// The timestamp both requests carry.
        timestamp: u64,
    },
    /// The timestamp is further ahead of the client's last executed one
    /// than [`Config::max_timestamp_gap`](crate::Config::max_timestamp_gap)
    /// allows.
    TooFarAhead {
        /// The request's timestamp.
        timestamp: u64,
        /// The client's last executed timestamp (0 if none).
        latest: u64,
        /// The gap allowed.
        max_gap: u64,
    },
    /// The client has a configured public key and the request carries no
    /// valid signature of it.
    Unauthentic(AuthFailure),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::InvalidOperation(reason) => write!(f, "invalid operation: {reason}"),
            Refusal::Overloaded => f.write_str("the primary is overloaded; retry later"),
            Refusal::TooLarge { size, limit } => write!(
                f,
                "request too large: {size} bytes, the limit is {limit} bytes"
            ),
            Refusal::Stale { latest } => write!(
                f,
                "stale request: timestamp {latest} from this client was already executed"
            ),
            Refusal::Conflict { timestamp } => write!(
                f,
                "conflicting request: timestamp {timestamp} of this client was already used \
                 by another request"
            ),
            Refusal::TooFarAhead {
                timestamp,
                latest,
                max_gap,
            } => write!(
                f,
                "timestamp {timestamp} is too far ahead: at most {max_gap} after this \
                 client's last executed one ({latest})"
            ),
            Refusal::Unauthentic(failure) => {
                write!(f, "request not authentic: {failure} of this client")
            }
        }
    }
}

/// A batch executed at one sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executed {
    /// The view of the pre-prepare that ordered it.
    pub view: View,
    /// The sequence number.
    pub seq: Seq,
    /// The batch's digest.
    pub digest: Digest,
    /// The requests, in the order they were executed.
    pub batch: Arc<Batch>,
    /// One result per request, in the same order. A request that was
    /// already executed at an earlier number is not executed again: it gets
    /// that execution's result if it was the client's latest, or an error.
    /// A request whose timestamp was used by another request, or is too
    /// far ahead, gets an error and leaves the client's record as it was.
    pub results: Vec<ExecResult>,
}
