//! What the transport hands the driver.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
    /// The sender's own share of `budget`.
    sender: Arc<AtomicUsize>,
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
        self.sender.fetch_sub(self.len, Ordering::AcqRel);
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frame({} bytes)", self.len)
    }
}

/// The bytes of received frames that the driver holds or has yet to take.
///
/// A frame is admitted while the total stays within the limit, or while
/// its sender's own frames, with it, stay within [`RESERVED_BYTES`]: a
/// member that floods the driver fills the shared bound only for itself,
/// and every other member can still get its frames through (a replica's
/// reply to a client, say). So the bytes held are at most the limit plus
/// [`RESERVED_BYTES`] per member of the roster.
#[derive(Debug)]
pub(crate) struct Budget {
    used: Arc<AtomicUsize>,
    limit: usize,
    /// Each sender's bytes held, by member: the roster bounds it.
    senders: Mutex<HashMap<PeerId, Arc<AtomicUsize>>>,
}

/// The bytes of its own frames that any member may have held, whatever
/// the others hold: one frame of the largest size.
pub(crate) const RESERVED_BYTES: usize = crate::frame::MAX_FRAME_BYTES;

impl Budget {
    pub(crate) fn new(limit: usize) -> Budget {
        Budget {
            used: Arc::new(AtomicUsize::new(0)),
            limit,
            senders: Mutex::new(HashMap::new()),
        }
    }

    /// The account of `peer`'s held bytes, to pass to [`admit`](Self::admit)
    /// for each of its frames.
    pub(crate) fn sender(&self, peer: &PeerId) -> Arc<AtomicUsize> {
        let mut senders = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(senders.entry(peer.clone()).or_default())
    }

    /// The frame, if its bytes fit the bound or the sender's reserve.
    pub(crate) fn admit(&self, sender: &Arc<AtomicUsize>, bytes: Vec<u8>) -> Option<Frame> {
        let len = bytes.len();
        let own = sender.fetch_add(len, Ordering::AcqRel).saturating_add(len);
        let total = self
            .used
            .fetch_add(len, Ordering::AcqRel)
            .saturating_add(len);
        if total > self.limit && own > RESERVED_BYTES {
            self.used.fetch_sub(len, Ordering::AcqRel);
            sender.fetch_sub(len, Ordering::AcqRel);
            return None;
        }
        Some(Frame {
            bytes,
            len,
            budget: Arc::clone(&self.used),
            sender: Arc::clone(sender),
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
        // Past the reserve, as a member that floods is.
        let one = budget.sender(&PeerId::Replica(pbft_core::ReplicaId(1)));
        one.fetch_add(RESERVED_BYTES, Ordering::AcqRel);
        let a = budget.admit(&one, vec![0; 6]).expect("fits");
        assert!(budget.admit(&one, vec![0; 5]).is_none(), "6 + 5 > 10");
        let b = budget.admit(&one, vec![0; 4]).expect("6 + 4 fits");
        drop(a);
        let c = budget
            .admit(&one, vec![0; 6])
            .expect("fits once a is dropped");
        assert_eq!(b.into_vec().len(), 4);
        assert!(budget.admit(&one, vec![0; 4]).is_some(), "b left the bound");
        drop(c);
        one.fetch_sub(RESERVED_BYTES, Ordering::AcqRel);
        assert_eq!(
            one.load(Ordering::Acquire),
            0,
            "every frame gave back its bytes"
        );
    }

    #[test]
    fn a_member_that_floods_leaves_room_for_the_others() {
        let budget = Budget::new(RESERVED_BYTES);
        let flood = budget.sender(&PeerId::Replica(pbft_core::ReplicaId(3)));
        let honest = budget.sender(&PeerId::Replica(pbft_core::ReplicaId(1)));
        let mut held = Vec::new();
        while let Some(frame) = budget.admit(&flood, vec![0; 1 << 20]) {
            held.push(frame);
        }
        assert_eq!(held.len(), 16, "the flood fills the bound and its reserve");
        for _ in 0..10 {
            held.push(
                budget
                    .admit(&honest, vec![0; 200])
                    .expect("within its reserve"),
            );
        }
        assert!(
            budget.admit(&flood, vec![0; 1]).is_none(),
            "the flood gets no more"
        );
        assert!(
            budget
                .sender(&PeerId::Replica(pbft_core::ReplicaId(1)))
                .load(Ordering::Acquire)
                == 2000,
            "the same account for the same member"
        );
    }

    #[test]
    fn floods_are_logged_rarely() {
        let logged: Vec<u64> = (1..=100).filter(|n| worth_logging(*n)).collect();
        assert_eq!(logged, [1, 2, 4, 8, 16, 32, 64]);
    }
}
