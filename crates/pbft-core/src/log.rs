//! The message log: what a replica knows about each sequence number.
//!
//! Slots are kept in order of sequence number; each slot holds the state
//! of the replica's current view for that number (votes for other views are
//! rejected before they reach the log). The numbers in the log are nearly
//! always consecutive (the window between the watermarks, §4.3), so a
//! lookup first tries the position the number would have if they were, and
//! only then searches; new numbers nearly always come last. Lookups never
//! scan.

use std::collections::VecDeque;

use crate::auth::Signature;
use crate::certificate::{CommittedCertificate, PreparedCertificate};
use crate::message::{Message, PrePrepare, Signed, Vote};
use crate::service::ExecResult;
use crate::types::{Seq, View};
use crate::votes::Votes;

/// Everything known about one sequence number in one view.
#[derive(Clone, Debug)]
pub struct Slot {
    /// The view this slot's votes belong to.
    pub view: View,
    /// The accepted pre-prepare, once there is one.
    pub pre_prepare: Option<PrePrepare>,
    /// The primary's signature on the accepted pre-prepare.
    pub pre_prepare_signature: Option<Signature>,
    /// Prepares received, including this replica's own.
    pub prepares: Votes,
    /// Commits received, including this replica's own.
    pub commits: Votes,
    /// This replica has multicast its commit (it saw the slot prepared).
    pub commit_sent: bool,
    /// The slot is committed-local (§4.2).
    pub committed: bool,
    /// The results, once executed.
    pub results: Option<Vec<ExecResult>>,
    /// The latest prepared certificate from an earlier view, kept across
    /// view changes so that later view-change messages can carry it.
    pub carried: Option<PreparedCertificate>,
    /// A committed certificate from an earlier view, kept across view
    /// changes so that a peer that missed the number can still be sent it.
    pub proof: Option<CommittedCertificate>,
}

impl Slot {
    fn new(view: View) -> Slot {
        Slot {
            view,
            pre_prepare: None,
            pre_prepare_signature: None,
            prepares: Votes::default(),
            commits: Votes::default(),
            commit_sent: false,
            committed: false,
            results: None,
            carried: None,
            proof: None,
        }
    }

    /// Starts the slot over in `view`, keeping only what outlives a view:
    /// the results, `carried`, the latest prepared certificate, and the
    /// committed certificate, which moves to `proof`.
    pub fn reset(&mut self, view: View, carried: Option<PreparedCertificate>) {
        let results = self.results.take();
        let carried = carried.or_else(|| self.carried.take());
        let proof = self.committed_certificate();
        *self = Slot {
            results,
            carried,
            proof,
            ..Slot::new(view)
        };
    }
}

impl Slot {
    /// The batch this number committed, if it did: the slot's own
    /// pre-prepare once committed in its view, or the one a kept committed
    /// certificate proves.
    pub fn committed_pre_prepare(&self) -> Option<&PrePrepare> {
        match (&self.pre_prepare, self.committed) {
            (Some(pp), true) => Some(pp),
            _ => self
                .proof
                .as_ref()
                .and_then(CommittedCertificate::pre_prepare),
        }
    }

    /// Whether `digest` contradicts the batch a kept committed certificate
    /// proves for this number: no honest replica prepares or commits
    /// another batch there.
    pub fn contradicts_proof(&self, digest: crate::digest::Digest) -> bool {
        self.proof
            .as_ref()
            .and_then(CommittedCertificate::pre_prepare)
            .is_some_and(|proven| proven.digest != digest)
    }

    /// The committed certificate for this number: from the slot's own
    /// commits if it committed in its view, or else the one kept from an
    /// earlier view.
    pub fn committed_certificate(&self) -> Option<CommittedCertificate> {
        let (Some(pp), true) = (&self.pre_prepare, self.committed) else {
            return self.proof.clone();
        };
        let commits = self
            .commits
            .signed_for(pp.digest)
            .map(|(replica, signature)| Signed {
                message: Message::Commit(Vote {
                    view: pp.view,
                    seq: pp.seq,
                    digest: pp.digest,
                    replica,
                }),
                signature,
            })
            .collect();
        Some(CommittedCertificate {
            pre_prepare: Signed {
                message: Message::PrePrepare(pp.clone()),
                signature: self.pre_prepare_signature,
            },
            commits,
        })
    }
}

/// All slots, by sequence number.
#[derive(Clone, Debug, Default)]
pub struct Log {
    /// In increasing order of sequence number, with no duplicates.
    slots: VecDeque<(Seq, Slot)>,
}

impl Log {
    /// Where `seq` is, or where it would go.
    fn position(&self, seq: Seq) -> Result<usize, usize> {
        let Some((first, _)) = self.slots.front() else {
            return Err(0);
        };
        // Consecutive numbers: `seq` sits `seq - first` places in.
        if let Some(offset) = seq.0.checked_sub(first.0) {
            if let Ok(i) = usize::try_from(offset) {
                if self.slots.get(i).is_some_and(|(s, _)| *s == seq) {
                    return Ok(i);
                }
            }
        }
        if self.slots.back().is_some_and(|(last, _)| *last < seq) {
            return Err(self.slots.len());
        }
        self.slots.binary_search_by_key(&seq, |(s, _)| *s)
    }

    /// The slot for `seq`, if anything is known about it.
    pub fn get(&self, seq: Seq) -> Option<&Slot> {
        let i = self.position(seq).ok()?;
        Some(&self.slots[i].1)
    }

    /// The slot for `seq` in `view`, created empty if needed. A slot held
    /// from an earlier view (one adopted with its committed certificate,
    /// say) starts over first, so that votes from two views never mix.
    pub fn slot_mut(&mut self, view: View, seq: Seq) -> &mut Slot {
        let i = match self.position(seq) {
            Ok(i) => i,
            Err(i) => {
                self.slots.insert(i, (seq, Slot::new(view)));
                i
            }
        };
        let slot = &mut self.slots[i].1;
        if slot.view != view {
            slot.reset(view, None);
        }
        slot
    }

    /// The slot for `seq` if it exists.
    pub fn get_mut(&mut self, seq: Seq) -> Option<&mut Slot> {
        let i = self.position(seq).ok()?;
        Some(&mut self.slots[i].1)
    }

    /// Discards every slot at or below `seq` (garbage collection after a
    /// stable checkpoint, §4.3).
    pub fn remove_through(&mut self, seq: Seq) {
        let keep_from = self.slots.partition_point(|(s, _)| *s <= seq);
        self.slots.drain(..keep_from);
    }

    /// The sequence numbers in the log, in order.
    pub fn seqs(&self) -> Vec<Seq> {
        self.slots.iter().map(|(seq, _)| *seq).collect()
    }

    /// The slots after `seq`, in order.
    pub fn after(&self, seq: Seq) -> impl Iterator<Item = (Seq, &Slot)> {
        let from = self.slots.partition_point(|(s, _)| *s <= seq);
        self.slots.range(from..).map(|(seq, slot)| (*seq, slot))
    }

    /// How many sequence numbers the log holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::request::{Batch, Request};
    use crate::types::ReplicaId;

    #[test]
    fn a_committed_certificate_outlives_every_reset() {
        let pp = PrePrepare::new(
            View(3),
            Seq(9),
            Arc::new(Batch::single(Request::new("c", Some(1), "set x=1"))),
        );
        let mut log = Log::default();
        let slot = log.slot_mut(View(3), Seq(9));
        slot.pre_prepare = Some(pp.clone());
        for r in 0..3 {
            slot.commits
                .record(4, ReplicaId(r), pp.digest, None)
                .expect("first vote");
        }
        slot.committed = true;
        let cert = slot.committed_certificate().expect("committed");
        assert_eq!(cert.commits.len(), 3);
        // A vote of a later view starts the slot over, and so does a view
        // change: the certificate stays.
        log.slot_mut(View(4), Seq(9));
        log.get_mut(Seq(9)).expect("slot").reset(View(5), None);
        let slot = log.get(Seq(9)).expect("slot");
        assert_eq!((slot.view, slot.committed), (View(5), false));
        assert_eq!(slot.committed_certificate(), Some(cert));
    }

    #[test]
    fn numbers_stay_in_order_however_they_arrive() {
        let mut log = Log::default();
        for n in [5u64, 3, 9, 4, 7, 6, 12, 1] {
            log.slot_mut(View(0), Seq(n)).commit_sent = n % 2 == 0;
        }
        let all = [1u64, 3, 4, 5, 6, 7, 9, 12].map(Seq);
        assert_eq!(log.seqs(), all);
        for n in 0..14 {
            let held = all.contains(&Seq(n));
            assert_eq!(log.get(Seq(n)).is_some(), held, "{n}");
            if held {
                assert_eq!(log.get(Seq(n)).map(|s| s.commit_sent), Some(n % 2 == 0));
            }
        }
        let after: Vec<Seq> = log.after(Seq(5)).map(|(seq, _)| seq).collect();
        assert_eq!(after, [6u64, 7, 9, 12].map(Seq));
        log.remove_through(Seq(6));
        assert_eq!(log.seqs(), [7u64, 9, 12].map(Seq));
        assert!(log.get(Seq(5)).is_none() && log.get_mut(Seq(9)).is_some());
        // A slot asked for in another view starts over; the same view keeps it.
        log.slot_mut(View(0), Seq(12)).commit_sent = true;
        assert!(log.slot_mut(View(0), Seq(12)).commit_sent);
        assert!(!log.slot_mut(View(1), Seq(12)).commit_sent);
        log.remove_through(Seq(u64::MAX));
        assert_eq!(log.len(), 0);
        assert!(log.get(Seq(7)).is_none());
    }
}
