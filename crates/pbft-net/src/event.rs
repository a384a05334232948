//! What the transport hands the driver.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::handshake::Refusal;
use crate::roster::PeerId;

/// Something that happened on the network, in the order it happened on
/// each connection.
#[derive(Debug)]
pub enum Event {
    /// A data frame from a member whose identity the handshake proved.
    Frame {
        /// The authenticated sender.
        from: PeerId,
        /// The frame's payload.
        frame: Frame,
    },
    /// A connection to a member completed its handshake.
    Connected {
        /// The member.
        peer: PeerId,
        /// Its address.
        addr: SocketAddr,
    },
    /// A member's connection closed.
    Disconnected {
        /// The member.
        peer: PeerId,
        /// Why.
        reason: CloseReason,
    },
    /// A connection was refused before or during its handshake.
    Refused {
        /// The other end's address.
        addr: SocketAddr,
        /// Why.
        reason: Refusal,
    },
}

/// Why an established connection closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed it.
    Closed,
    /// Nothing arrived for the idle timeout: the peer or the path is dead.
    IdleTimeout,
    /// The peer announced a frame over the limit.
    Oversized {
        /// The announced length.
        len: u64,
    },
    /// The peer sent something that is not a frame of this protocol.
    Garbage(String),
    /// Reading or writing failed.
    Io(String),
    /// The same member connected again; the newer connection replaced it.
    Replaced,
    /// This transport is shutting down.
    Stopped,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Closed => f.write_str("closed by the peer"),
            CloseReason::IdleTimeout => f.write_str("silent for the idle timeout"),
            CloseReason::Oversized { len } => {
                write!(f, "it announced a frame of {len} bytes, over the limit")
            }
            CloseReason::Garbage(what) => write!(f, "garbage on the connection: {what}"),
            CloseReason::Io(e) => write!(f, "{e}"),
            CloseReason::Replaced => f.write_str("replaced by a newer connection"),
            CloseReason::Stopped => f.write_str("the transport stopped"),
        }
    }
}

/// A received frame's payload. Its bytes count against the transport's
/// incoming byte bound until it is dropped or turned into a `Vec`.
pub struct Frame {
    bytes: Vec<u8>,
    len: usize,
    budget: Arc<AtomicUsize>,
}

impl Frame {
    /// The payload, leaving the transport's bound (the caller now owns the
    /// memory).
    pub fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
}

impl Deref for Frame {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        self.budget.fetch_sub(self.len, Ordering::AcqRel);
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frame({} bytes)", self.len)
    }
}

/// The bytes of received frames that the driver holds or has yet to take.
#[derive(Debug)]
pub(crate) struct Budget {
    used: Arc<AtomicUsize>,
    limit: usize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Budget {
        Budget {
            used: Arc::new(AtomicUsize::new(0)),
            limit,
        }
    }

    /// The frame, if its bytes fit the bound.
    pub(crate) fn admit(&self, bytes: Vec<u8>) -> Option<Frame> {
        let len = bytes.len();
        let before = self.used.fetch_add(len, Ordering::AcqRel);
        if before.saturating_add(len) > self.limit {
            self.used.fetch_sub(len, Ordering::AcqRel);
            return None;
        }
        Some(Frame {
            bytes,
            len,
            budget: Arc::clone(&self.used),
        })
    }
}

/// Whether the `count`th occurrence of something should be logged: the
/// first and then each power of two, so a flood costs a few log lines.
pub(crate) fn worth_logging(count: u64) -> bool {
    count.is_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_hold_budget_until_dropped_or_taken() {
        let budget = Budget::new(10);
        let a = budget.admit(vec![0; 6]).expect("fits");
        assert!(budget.admit(vec![0; 5]).is_none(), "6 + 5 > 10");
        let b = budget.admit(vec![0; 4]).expect("6 + 4 fits");
        drop(a);
        let c = budget.admit(vec![0; 6]).expect("fits once a is dropped");
        assert_eq!(b.into_vec().len(), 4);
        assert!(budget.admit(vec![0; 4]).is_some(), "b left the bound");
        drop(c);
    }

    #[test]
    fn floods_are_logged_rarely() {
        let logged: Vec<u64> = (1..=100).filter(|n| worth_logging(*n)).collect();
        assert_eq!(logged, [1, 2, 4, 8, 16, 32, 64]);
    }
}
