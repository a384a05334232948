//! The requests a primary holds back while its pipeline or window is full,
//! in arrival order, with a set beside the queue so that a retried request
//! is found without scanning (§5.1: they go out together as one batch).

use std::collections::{HashSet, VecDeque};

use crate::request::Request;

/// The most requests a primary holds back; more are refused as
/// [`Refusal::Overloaded`](crate::Refusal::Overloaded) so that memory stays
/// bounded.
pub const MAX_PENDING: usize = 4096;

/// The most bytes of requests (by [`Request::size`]) a primary holds back:
/// 64 MiB. A request that would take the held bytes past this is refused
/// as [`Refusal::Overloaded`](crate::Refusal::Overloaded), unless none is
/// held.
pub const MAX_PENDING_BYTES: usize = 64 << 20;

/// Held-back requests, each with whether a client waits at this replica
/// for its acknowledgement.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pending {
    queue: VecDeque<(Request, bool)>,
    /// The queued requests, for lookups only: never iterated, so its
    /// order (a hash order) cannot leak into what the replica does.
    held: HashSet<Request>,
    /// The sum of the queued requests' sizes.
    bytes: usize,
}

/// What [`Pending::hold`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Held {
    /// Queued.
    Queued,
    /// Already held: only its `ack` was added.
    Merged,
    /// [`MAX_PENDING`] requests, or [`MAX_PENDING_BYTES`] bytes of them,
    /// are already held.
    Full,
}

impl Pending {
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How many requests are held.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// The sum of the held requests' sizes.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds `request` at the back of the queue, unless it is already held.
    ///
    /// Requests are held before their clients' signatures are checked, and
    /// the signature is not part of a request's equality: when the copy
    /// held and `request` carry different signatures, the one kept is one
    /// for which `checks` says the signature is valid, so a forged copy
    /// that came first cannot push out the client's own.
    pub(crate) fn hold(
        &mut self,
        request: Request,
        ack: bool,
        checks: impl Fn(&Request) -> bool,
    ) -> Held {
        if self.held.contains(&request) {
            if let Some(entry) = self.queue.iter_mut().find(|(r, _)| *r == request) {
                entry.1 |= ack;
                if entry.0.signature() != request.signature()
                    && !checks(&entry.0)
                    && checks(&request)
                {
                    self.bytes = self.bytes.saturating_sub(entry.0.size()) + request.size();
                    self.held.replace(request.clone());
                    entry.0 = request;
                }
            }
            return Held::Merged;
        }
        let size = request.size();
        let over_bytes =
            !self.queue.is_empty() && self.bytes.saturating_add(size) > MAX_PENDING_BYTES;
        if self.queue.len() >= MAX_PENDING || over_bytes {
            return Held::Full;
        }
        self.bytes = self.bytes.saturating_add(size);
        self.held.insert(request.clone());
        self.queue.push_back((request, ack));
        Held::Queued
    }

    /// The oldest held request.
    pub(crate) fn pop_front(&mut self) -> Option<(Request, bool)> {
        let (request, ack) = self.queue.pop_front()?;
        self.held.remove(&request);
        self.bytes = self.bytes.saturating_sub(request.size());
        Some((request, ack))
    }

    /// The [`Request::size`] of the oldest held request.
    pub(crate) fn front_size(&self) -> Option<usize> {
        self.queue.front().map(|(request, _)| request.size())
    }

    /// Every held request, oldest first, leaving none.
    pub(crate) fn take_all(&mut self) -> VecDeque<(Request, bool)> {
        self.held.clear();
        self.bytes = 0;
        std::mem::take(&mut self.queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_held_once_and_keeps_its_place() {
        let mut pending = Pending::default();
        let a = Request::new("c1", Some(1), "set x=1");
        let b = Request::new("c2", Some(1), "set y=1");
        assert_eq!(pending.hold(a.clone(), false, |_| true), Held::Queued);
        assert_eq!(pending.hold(b.clone(), false, |_| true), Held::Queued);
        assert_eq!(pending.hold(a.clone(), true, |_| true), Held::Merged);
        assert_eq!(pending.pop_front(), Some((a.clone(), true)));
        assert_eq!(
            pending.hold(a.clone(), false, |_| true),
            Held::Queued,
            "held again"
        );
        assert_eq!(pending.pop_front(), Some((b, false)));
        assert_eq!(pending.pop_front(), Some((a, false)));
        assert!(pending.is_empty());
    }

    #[test]
    fn a_copy_whose_signature_checks_replaces_one_that_does_not() {
        use crate::auth::Signature;
        let mut pending = Pending::default();
        let forged =
            Request::new("c1", Some(1), "set x=1").with_signature(Some(Signature([6; 64])));
        let genuine = forged.clone().with_signature(Some(Signature([5; 64])));
        let checks = |r: &Request| r.signature() == Some(&Signature([5; 64]));
        assert_eq!(pending.hold(forged.clone(), true, checks), Held::Queued);
        assert_eq!(pending.hold(genuine.clone(), false, checks), Held::Merged);
        // Not the other way round.
        assert_eq!(pending.hold(forged, false, checks), Held::Merged);
        let (kept, ack) = pending.pop_front().expect("held");
        assert_eq!(kept.signature(), genuine.signature());
        assert!(ack, "the acknowledgement owed stays owed");
        assert!(pending.is_empty());
        assert_eq!(pending.bytes(), 0);
    }

    #[test]
    fn at_most_max_pending_are_held() {
        let mut pending = Pending::default();
        for t in 0..MAX_PENDING as u64 {
            assert_eq!(
                pending.hold(Request::new("c", Some(t), "get x"), false, |_| true),
                Held::Queued
            );
        }
        let extra = Request::new("c", Some(u64::MAX), "get x");
        assert_eq!(pending.hold(extra, true, |_| true), Held::Full);
        assert_eq!(pending.take_all().len(), MAX_PENDING);
        assert!(pending.is_empty());
    }

    #[test]
    fn at_most_max_pending_bytes_are_held() {
        let mut pending = Pending::default();
        let op = "v".repeat(1 << 20);
        let mut held = 0;
        while pending.hold(Request::new("c", Some(held), &op), false, |_| true) == Held::Queued {
            held += 1;
        }
        let size = Request::new("c", Some(0), &op).size();
        assert_eq!(held as usize, MAX_PENDING_BYTES / size);
        assert_eq!(pending.front_size(), Some(size));
        // Popping one makes room for one.
        pending.pop_front();
        let next = Request::new("c", Some(u64::MAX), &op);
        assert_eq!(pending.hold(next, false, |_| true), Held::Queued);
    }
}
