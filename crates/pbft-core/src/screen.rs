//! Cheap checks made before a peer's signature is verified.
//!
//! Verifying an Ed25519 signature costs far more than anything else a
//! replica does with a message (about 34 µs against well under 1 µs; see
//! docs/performance.md), and in the normal case many messages arrive that
//! the replica has no use for:
//!
//! - the votes beyond a quorum. A backup is prepared with its own prepare
//!   and one other backup's (2f in all), and committed with 2f + 1 commits
//!   counting its own, so of the n − 1 prepares and commits that reach it
//!   per number, f of each arrive after they could matter;
//! - repeats, which retransmission sends when a peer reports a gap;
//! - votes for numbers outside the window, often for a checkpoint already
//!   stable here.
//!
//! [`Replica::screen`] turns these away unverified. It only reads state,
//! and it only rejects a message that the handler would reject whatever
//! its signature, or whose votes the slot no longer needs
//! ([`Rejection::Unneeded`]). Dropping a message is always safe: the
//! network may lose any message (§3), and a vote held once counts once
//! whatever copies follow. A vote dropped as unneeded would never have
//! changed the slot: its certificates are already complete, and later
//! messages (a view change's prepared certificate, a status answer) are
//! built from the votes held, which are quorums. Anything the checks here
//! do not cover goes on to verification and its handler, unchanged.

use crate::message::{CheckpointVote, Message, Phase, PrePrepare, Vote};
use crate::rejection::Rejection;
use crate::replica::Replica;
use crate::service::Service;
use crate::types::ReplicaId;
use crate::votes::Votes;

impl<S: Service> Replica<S> {
    /// Rejects `message` from `from` before its signature is checked, when
    /// its handler would reject it anyway or its slot needs no more votes.
    /// `Ok` means only that the message goes on to be verified.
    pub(crate) fn screen(&self, from: ReplicaId, message: &Message) -> Result<(), Rejection> {
        match message {
            Message::Prepare(vote) => self.screen_vote(from, vote, Phase::Prepare),
            Message::Commit(vote) => self.screen_vote(from, vote, Phase::Commit),
            Message::PrePrepare(pp) => self.screen_pre_prepare(from, pp),
            Message::Checkpoint(vote) => self.screen_checkpoint(from, vote),
            _ => Ok(()),
        }
    }

    /// Notes a vote screened out as unneeded, so that the slot's status
    /// still shows every replica heard from.
    pub(crate) fn note_late(&mut self, from: ReplicaId, message: &Message) {
        let n = self.quorums.n();
        let (vote, commit) = match message {
            Message::Prepare(vote) => (vote, false),
            Message::Commit(vote) => (vote, true),
            _ => return,
        };
        let Some(slot) = self.log.get_mut(vote.seq).filter(|s| s.view == vote.view) else {
            return;
        };
        let votes = if commit {
            &mut slot.commits
        } else {
            &mut slot.prepares
        };
        votes.note_late(n, from, vote.digest);
    }

    /// A prepare or a commit of the current view. Votes of other views go
    /// to their handlers, which may learn from them (`follow.rs`).
    fn screen_vote(&self, from: ReplicaId, vote: &Vote, phase: Phase) -> Result<(), Rejection> {
        if vote.view != self.view || vote.replica != from {
            return Ok(());
        }
        self.check_seq(vote.seq)?;
        let Some(slot) = self.log.get(vote.seq).filter(|s| s.view == vote.view) else {
            return Ok(());
        };
        let (votes, done) = match phase {
            Phase::Prepare => (&slot.prepares, slot.commit_sent),
            _ => (&slot.commits, slot.committed),
        };
        already_voted(votes, from, vote, phase)?;
        if done {
            return Err(Rejection::Unneeded {
                phase,
                seq: vote.seq,
            });
        }
        Ok(())
    }

    /// A repeat of the pre-prepare accepted at its number, batch and all.
    fn screen_pre_prepare(&self, from: ReplicaId, pp: &PrePrepare) -> Result<(), Rejection> {
        if pp.view != self.view || from != self.quorums.primary(pp.view) || !self.vc.active {
            return Ok(());
        }
        let repeated = self
            .log
            .get(pp.seq)
            .filter(|s| s.view == pp.view)
            .and_then(|s| s.pre_prepare.as_ref())
            .is_some_and(|held| held.digest == pp.digest && held.batch.is_some());
        if repeated && pp.batch.is_some() {
            return Err(Rejection::DuplicatePrePrepare { seq: pp.seq });
        }
        Ok(())
    }

    /// A checkpoint vote already held, or for a number at or below the
    /// stable checkpoint (a number above the window goes to the handler,
    /// which takes it as a sign that this replica is behind).
    fn screen_checkpoint(&self, from: ReplicaId, vote: &CheckpointVote) -> Result<(), Rejection> {
        if vote.replica != from || !self.checkpoints.is_checkpoint(vote.seq) {
            return Ok(());
        }
        if vote.seq <= self.checkpoints.high() {
            self.checkpoints.check_window(vote.seq)?;
        }
        if let Some(votes) = self.checkpoints.votes_at(vote.seq) {
            let as_vote = Vote {
                view: self.view,
                seq: vote.seq,
                digest: vote.digest,
                replica: from,
            };
            already_voted(votes, from, &as_vote, Phase::Checkpoint)?;
        }
        Ok(())
    }
}

/// The rejection `votes` would give a second vote from `from`: a duplicate
/// of its first, or a conflict with it.
fn already_voted(
    votes: &Votes,
    from: ReplicaId,
    vote: &Vote,
    phase: Phase,
) -> Result<(), Rejection> {
    match votes.of(from) {
        Some(first) if first == vote.digest => Err(Rejection::DuplicateVote {
            phase,
            seq: vote.seq,
        }),
        Some(first) => Err(Rejection::ConflictingVote {
            phase,
            seq: vote.seq,
            first,
            second: vote.digest,
        }),
        None => Ok(()),
    }
}
