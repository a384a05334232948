//! The normal case: pre-prepare, prepare, commit (§4.2).
//!
//! ```text
//! client ──request──▶ primary ──pre-prepare──▶ backups
//!                     every backup ──prepare──▶ all
//!   prepared  = pre-prepare + 2f matching prepares from distinct backups
//!                     every replica ──commit──▶ all
//!   committed = prepared + 2f+1 matching commits (own included)
//! ```
//!
//! The `2f` and `2f + 1` are the paper's sizes for `n = 3f + 1`; the code
//! asks [`Quorums`](crate::Quorums) for them, so other `n` are handled too.

use std::sync::Arc;

use crate::auth::Signature;
use crate::message::{Message, Phase, PrePrepare, Vote};
use crate::output::{Destination, Ordered, Output};
use crate::rejection::Rejection;
use crate::replica::Replica;
use crate::request::Batch;
use crate::service::Service;
use crate::types::{ReplicaId, Seq};
use crate::votes::NotRecorded;

impl<S: Service> Replica<S> {
    /// As primary: assigns the next sequence number to `batch` and
    /// multicasts the pre-prepare. Returns the number assigned.
    pub(crate) fn propose(&mut self, batch: Batch, out: &mut Vec<Output>) -> Seq {
        debug_assert!(self.is_primary());
        let mut seq = self.last_assigned.next();
        // Numbers already holding a pre-prepare in this view, or a committed
        // certificate (adopted with a state transfer, say), are never
        // assigned twice.
        while self
            .log
            .get(seq)
            .is_some_and(|s| s.pre_prepare.is_some() || s.proof.is_some())
            && seq < Seq(u64::MAX)
        {
            seq = seq.next();
        }
        self.last_assigned = seq;
        for request in batch.requests() {
            self.clients.note_ordered(request, self.view, seq);
        }
        let pp = PrePrepare::new(self.view, seq, Arc::new(batch));
        let signature = self.send(Destination::Others, Message::PrePrepare(pp.clone()), out);
        let slot = self.log.slot_mut(self.view, seq);
        slot.pre_prepare = Some(pp);
        slot.pre_prepare_signature = signature;
        // With f = 0 no prepares are needed: the slot may already be prepared.
        self.advance(seq, out);
        seq
    }

    /// A backup accepts a pre-prepare if it is from the primary of the
    /// current view, its digest is its batch's, it does not contradict
    /// one already accepted for the same `(view, seq)` (§4.2), and each
    /// request of a client with a configured key carries that client's
    /// valid signature (§4.1).
    pub(crate) fn on_pre_prepare(
        &mut self,
        from: ReplicaId,
        pp: PrePrepare,
        signature: Option<Signature>,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        if pp.view < self.view {
            if self.follows(pp.view) {
                return self.learn_pre_prepare(from, pp, signature, out);
            }
            // A primary still working in a view the others left: show it
            // the view they are in.
            self.help_catch_up(from, pp.view, true, out);
        }
        self.check_view(pp.view)?;
        self.check_from_primary(from, &pp)?;
        if !self.vc.active {
            return Err(Rejection::ViewChanging);
        }
        self.check_seq(pp.seq)?;
        let batch = Arc::clone(self.check_pre_prepare_batch(&pp)?);
        if let Some(proven) = self
            .log
            .get(pp.seq)
            .and_then(|s| s.proof.as_ref())
            .and_then(|c| c.pre_prepare())
            .filter(|proven| proven.digest != pp.digest)
        {
            // A committed certificate proves another batch at this number.
            return Err(Rejection::ConflictingPrePrepare {
                view: pp.view,
                seq: pp.seq,
                accepted: proven.digest,
                offered: pp.digest,
            });
        }
        if let Some(existing) = self.log.get(pp.seq).and_then(|s| s.pre_prepare.as_ref()) {
            if existing.digest == pp.digest && existing.batch.is_none() {
                // A new view named this batch by digest; here it is.
                self.fill_batch(pp.seq, batch, out);
                return Ok(());
            }
            return Err(if existing.digest == pp.digest {
                Rejection::DuplicatePrePrepare { seq: pp.seq }
            } else {
                Rejection::ConflictingPrePrepare {
                    view: pp.view,
                    seq: pp.seq,
                    accepted: existing.digest,
                    offered: pp.digest,
                }
            });
        }
        // Last, as the dearest check.
        self.check_client_signatures(&pp)?;
        self.accept_pre_prepare(pp, signature, out);
        Ok(())
    }

    /// A pre-prepare comes from the primary of its own view (§4.2), be that
    /// the current view or one this replica follows (`follow.rs`).
    pub(crate) fn check_from_primary(
        &self,
        from: ReplicaId,
        pp: &PrePrepare,
    ) -> Result<(), Rejection> {
        let primary = self.quorums.primary(pp.view);
        if from != primary {
            return Err(Rejection::NotPrimary { primary });
        }
        Ok(())
    }

    /// A number a pre-prepare or a vote may name: not zero, and inside the
    /// watermark window (§4.2).
    pub(crate) fn check_seq(&self, seq: Seq) -> Result<(), Rejection> {
        if seq == Seq(0) {
            return Err(Rejection::ZeroSeq);
        }
        self.checkpoints.check_window(seq)
    }

    /// The batch a pre-prepare carries, once checked: it comes whole,
    /// within the batch and request size bounds, and its digest is the one
    /// the pre-prepare names, so that a certificate formed from it can
    /// execute. The same checks hold for a followed view's pre-prepare.
    pub(crate) fn check_pre_prepare_batch<'a>(
        &self,
        pp: &'a PrePrepare,
    ) -> Result<&'a Arc<Batch>, Rejection> {
        let Some(batch) = pp.batch.as_ref() else {
            return Err(Rejection::MissingBatch { seq: pp.seq });
        };
        let (size, limit) = (batch.size(), self.max_batch_bytes);
        if size > limit {
            return Err(Rejection::BatchTooLarge { size, limit });
        }
        for request in batch.requests() {
            self.check_request_size(request)?;
        }
        let actual = batch.digest();
        if pp.digest != actual {
            return Err(Rejection::DigestMismatch {
                seq: pp.seq,
                claimed: pp.digest,
                actual,
            });
        }
        Ok(batch)
    }

    /// A signature per request of a client that signs (§4.1), so that no
    /// primary orders one in its name. The dearest check, so callers make
    /// it last.
    pub(crate) fn check_client_signatures(&self, pp: &PrePrepare) -> Result<(), Rejection> {
        let Some(batch) = pp.batch.as_ref() else {
            return Ok(());
        };
        self.client_keys
            .check_all(batch.requests())
            .map_err(|(request, failure)| Rejection::UnauthenticRequest {
                client: request.client.clone(),
                failure,
            })
    }

    /// Accepts a checked pre-prepare for the current view: a backup records
    /// and multicasts its prepare; the primary (installing a new view) only
    /// records the pre-prepare. Clients waiting here are acknowledged.
    pub(crate) fn accept_pre_prepare(
        &mut self,
        pp: PrePrepare,
        signature: Option<Signature>,
        out: &mut Vec<Output>,
    ) {
        let n = self.quorums.n();
        let prepare = (!self.is_primary()).then(|| {
            self.sign(Message::Prepare(Vote {
                view: pp.view,
                seq: pp.seq,
                digest: pp.digest,
                replica: self.id,
            }))
        });
        let slot = self.log.slot_mut(self.view, pp.seq);
        if let Some(prepare) = &prepare {
            // Messages claiming to be from this replica are rejected on
            // arrival, so its own vote is recorded here for the first time.
            let recorded = slot
                .prepares
                .record(n, self.id, pp.digest, prepare.signature);
            debug_assert!(recorded.is_ok(), "own prepare recorded twice");
        }
        slot.pre_prepare = Some(pp.clone());
        slot.pre_prepare_signature = signature;

        if let Some(batch) = &pp.batch {
            self.note_batch_ordered(pp.view, pp.seq, batch, out);
        }
        if let Some(prepare) = prepare {
            out.push(Output::Send {
                to: Destination::Others,
                signed: prepare,
            });
        }
        self.advance(pp.seq, out);
    }

    /// Gives the accepted pre-prepare at `seq`, which named its batch by
    /// digest only, the batch itself, once checked against that digest.
    /// Votes never waited for it; execution does.
    pub(crate) fn fill_batch(&mut self, seq: Seq, batch: Arc<Batch>, out: &mut Vec<Output>) {
        let Some(pp) = self.log.get_mut(seq).and_then(|s| s.pre_prepare.as_mut()) else {
            return;
        };
        if pp.batch.is_some() || !pp.names(&batch) {
            return;
        }
        pp.batch = Some(Arc::clone(&batch));
        let view = pp.view;
        self.note_batch_ordered(view, seq, &batch, out);
    }

    /// Notes that `batch` is ordered at `(view, seq)`, acknowledging the
    /// clients waiting here.
    fn note_batch_ordered(
        &mut self,
        view: crate::types::View,
        seq: Seq,
        batch: &Batch,
        out: &mut Vec<Output>,
    ) {
        for request in batch.requests() {
            if self.clients.note_ordered(request, view, seq) {
                out.push(Output::Ordered(Ordered {
                    request: request.clone(),
                    view,
                    seq,
                }));
            }
        }
    }

    /// Records a backup's prepare.
    pub(crate) fn on_prepare(
        &mut self,
        from: ReplicaId,
        vote: Vote,
        signature: Option<Signature>,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        self.check_vote(from, &vote)?;
        if from == self.quorums.primary(vote.view) {
            return Err(Rejection::PrepareFromPrimary);
        }
        self.record_vote(false, vote, signature, out)
    }

    /// Records a commit.
    pub(crate) fn on_commit(
        &mut self,
        from: ReplicaId,
        vote: Vote,
        signature: Option<Signature>,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        if vote.view < self.view && self.follows(vote.view) {
            return self.learn_commit(from, vote, signature, out);
        }
        self.check_vote(from, &vote)?;
        self.record_vote(true, vote, signature, out)
    }

    fn check_view(&self, received: crate::types::View) -> Result<(), Rejection> {
        if received != self.view {
            return Err(Rejection::WrongView {
                current: self.view,
                received,
            });
        }
        Ok(())
    }

    fn check_vote(&self, from: ReplicaId, vote: &Vote) -> Result<(), Rejection> {
        if vote.replica != from {
            return Err(Rejection::SenderMismatch {
                claimed: vote.replica,
            });
        }
        self.check_view(vote.view)?;
        self.check_seq(vote.seq)
    }

    /// Records a prepare (`commit` false) or a commit.
    fn record_vote(
        &mut self,
        commit: bool,
        vote: Vote,
        signature: Option<Signature>,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        let n = self.quorums.n();
        let slot = self.log.slot_mut(self.view, vote.seq);
        let (phase, votes) = if commit {
            (Phase::Commit, &mut slot.commits)
        } else {
            (Phase::Prepare, &mut slot.prepares)
        };
        votes
            .record(n, vote.replica, vote.digest, signature)
            .map_err(|not_recorded| match not_recorded {
                NotRecorded::Duplicate => Rejection::DuplicateVote {
                    phase,
                    seq: vote.seq,
                },
                NotRecorded::Conflict { first } => Rejection::ConflictingVote {
                    phase,
                    seq: vote.seq,
                    first,
                    second: vote.digest,
                },
            })?;
        self.advance(vote.seq, out);
        Ok(())
    }

    /// Moves slot `seq` forward as far as its certificates allow: sends this
    /// replica's commit once it is prepared, and marks it committed once a
    /// quorum of commits matches.
    fn advance(&mut self, seq: Seq, out: &mut Vec<Output>) {
        let (id, n) = (self.id, self.quorums.n());
        let prepares_needed = self.quorums.prepares_needed();
        let quorum = self.quorums.quorum();
        let Some(slot) = self.log.get(seq) else {
            return;
        };
        let Some(digest) = slot.pre_prepare.as_ref().map(|pp| pp.digest) else {
            return;
        };
        if slot.contradicts_proof(digest) {
            return;
        }
        if !slot.committed {
            // Timed from the first time a pre-prepare is held here.
            self.reports.round_trip.start(seq, self.ticks);
        }
        if !slot.commit_sent && slot.prepares.matching(digest) >= prepares_needed {
            let commit = self.sign(Message::Commit(Vote {
                view: slot.view,
                seq,
                digest,
                replica: id,
            }));
            let Some(slot) = self.log.get_mut(seq) else {
                return;
            };
            slot.commit_sent = true;
            // As for prepares: only this code records this replica's commit.
            let recorded = slot.commits.record(n, id, digest, commit.signature);
            debug_assert!(recorded.is_ok(), "own commit recorded twice");
            if self.durable {
                if let Some(cert) = self.prepared_certificate(seq) {
                    self.persist(crate::durable::Record::Prepared(cert), out);
                }
            }
            out.push(Output::Send {
                to: Destination::Others,
                signed: commit,
            });
        }
        let Some(slot) = self.log.get_mut(seq) else {
            return;
        };
        if slot.commit_sent && !slot.committed && slot.commits.matching(digest) >= quorum {
            slot.committed = true;
            self.reports.round_trip.finish(seq, self.ticks);
        }
    }
}
