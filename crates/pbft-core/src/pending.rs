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
    queue: VecDeque<Entry>,
    /// The queued requests, for lookups only: never iterated, so its
    /// order (a hash order) cannot leak into what the replica does.
    held: HashSet<Request>,
    /// The sum of the queued requests' sizes.
    bytes: usize,
}

/// A held request.
#[derive(Clone, Debug)]
struct Entry {
    request: Request,
    /// A client waits at this replica for its acknowledgement.
    ack: bool,
    /// Its client's signature is known to be valid.
    checked: bool,
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
    /// `checked` says whether its client's signature is known to be valid
    /// (a relayed request is checked before it comes here).
    ///
    /// Requests are held before their clients' signatures are checked, and
    /// the signature is not part of a request's equality: when the copy
    /// held and `request` carry different signatures, the one kept is one
    /// for which `checks` says the signature is valid, so a forged copy
    /// that came first cannot push out the client's own. Each copy that
    /// arrives costs at most one call of `checks` for itself, and the held
    /// copy at most one in all: a verdict, once known, is kept.
    pub(crate) fn hold(
        &mut self,
        request: Request,
        ack: bool,
        checked: bool,
        checks: impl Fn(&Request) -> bool,
    ) -> Held {
        if let Some(kept) = self.held.get(&request) {
            let differs = kept.signature() != request.signature();
            if !ack && !differs {
                return Held::Merged;
            }
            let Some(entry) = self.queue.iter_mut().find(|e| e.request == request) else {
                return Held::Merged;
            };
            entry.ack |= ack;
            if differs && !entry.checked && (checked || checks(&request)) {
                // The newcomer is good: keep it unless the held copy is too.
                if checks(&entry.request) {
                    entry.checked = true;
                } else {
                    self.bytes = self
                        .bytes
                        .saturating_sub(entry.request.size())
                        .saturating_add(request.size());
                    self.held.replace(request.clone());
                    entry.request = request;
                    entry.checked = true;
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
        self.queue.push_back(Entry {
            request,
            ack,
            checked,
        });
        Held::Queued
    }

    /// The oldest held request.
    pub(crate) fn pop_front(&mut self) -> Option<(Request, bool)> {
        let Entry { request, ack, .. } = self.queue.pop_front()?;
        self.held.remove(&request);
        self.bytes = self.bytes.saturating_sub(request.size());
        Some((request, ack))
    }

    /// The [`Request::size`] of the oldest held request.
    pub(crate) fn front_size(&self) -> Option<usize> {
        self.queue.front().map(|e| e.request.size())
    }

    /// Every held request, oldest first, leaving none.
    pub(crate) fn take_all(&mut self) -> Vec<(Request, bool)> {
        self.held.clear();
        self.bytes = 0;
        std::mem::take(&mut self.queue)
            .into_iter()
            .map(|e| (e.request, e.ack))
            .collect()
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
        assert_eq!(
            pending.hold(a.clone(), false, false, |_| true),
            Held::Queued
        );
        assert_eq!(
            pending.hold(b.clone(), false, false, |_| true),
            Held::Queued
        );
        assert_eq!(pending.hold(a.clone(), true, false, |_| true), Held::Merged);
        assert_eq!(pending.pop_front(), Some((a.clone(), true)));
        assert_eq!(
            pending.hold(a.clone(), false, false, |_| true),
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
        assert_eq!(
            pending.hold(forged.clone(), true, false, checks),
            Held::Queued
        );
        assert_eq!(
            pending.hold(genuine.clone(), false, false, checks),
            Held::Merged
        );
        // Not the other way round.
        assert_eq!(pending.hold(forged, false, false, checks), Held::Merged);
        let (kept, ack) = pending.pop_front().expect("held");
        assert_eq!(kept.signature(), genuine.signature());
        assert!(ack, "the acknowledgement owed stays owed");
        assert!(pending.is_empty());
        assert_eq!(pending.bytes(), 0);
    }

    #[test]
    fn each_copy_costs_at_most_one_check_and_the_held_one_at_most_one_in_all() {
        use crate::auth::Signature;
        use std::cell::Cell;
        let calls = Cell::new(0);
        let checks = |r: &Request| {
            calls.set(calls.get() + 1);
            r.signature() == Some(&Signature([5; 64]))
        };
        let request = Request::new("c1", Some(1), "set x=1");
        let signed = |b: u8| request.clone().with_signature(Some(Signature([b; 64])));
        let mut pending = Pending::default();
        pending.hold(signed(6), true, false, checks);
        for b in 7..57 {
            pending.hold(signed(b), true, false, checks);
        }
        assert_eq!(calls.get(), 50, "one check for each forged copy");
        pending.hold(signed(5), false, true, checks);
        assert_eq!(
            calls.get(),
            51,
            "a checked copy is not checked again; the held one is"
        );
        for b in 57..107 {
            pending.hold(signed(b), true, false, checks);
        }
        assert_eq!(calls.get(), 51, "the good copy's verdict is kept");
        let (kept, _) = pending.pop_front().expect("held");
        assert_eq!(kept.signature(), Some(&Signature([5; 64])));
    }

    #[test]
    fn at_most_max_pending_are_held() {
        let mut pending = Pending::default();
        for t in 0..MAX_PENDING as u64 {
            assert_eq!(
                pending.hold(Request::new("c", Some(t), "get x"), false, false, |_| true),
                Held::Queued
            );
        }
        let extra = Request::new("c", Some(u64::MAX), "get x");
        assert_eq!(pending.hold(extra, true, false, |_| true), Held::Full);
        assert_eq!(pending.take_all().len(), MAX_PENDING);
        assert!(pending.is_empty());
    }

    #[test]
    fn at_most_max_pending_bytes_are_held() {
        let mut pending = Pending::default();
        let op = "v".repeat(1 << 20);
        let mut held = 0;
        while pending.hold(Request::new("c", Some(held), &op), false, false, |_| true)
            == Held::Queued
        {
            held += 1;
        }
        let size = Request::new("c", Some(0), &op).size();
        assert_eq!(held as usize, MAX_PENDING_BYTES / size);
        assert_eq!(pending.front_size(), Some(size));
        // Popping one makes room for one.
        pending.pop_front();
        let next = Request::new("c", Some(u64::MAX), &op);
        assert_eq!(pending.hold(next, false, false, |_| true), Held::Queued);
    }
}
