//! What a replica can say about one sequence number.

use std::fmt;

use crate::digest::Digest;
use crate::replica::Replica;
use crate::service::{ExecResult, Service};
use crate::types::{Seq, View};

/// How far a sequence number has come at this replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SlotPhase {
    /// No pre-prepare accepted for this number (votes may have arrived).
    None,
    /// A pre-prepare is accepted; waiting for a prepared certificate.
    PrePrepare,
    /// Prepared (§4.2): pre-prepare plus `2f` matching prepares. This
    /// replica has sent its commit.
    Prepared,
    /// Committed-local (§4.2): prepared plus `2f + 1` matching commits.
    Committed,
    /// Executed, and covered by a stable checkpoint since: its messages
    /// were discarded (§4.3), so counts and results are no longer known.
    Checkpointed,
}

impl SlotPhase {
    /// The name used on the wire and in the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotPhase::None => "none",
            SlotPhase::PrePrepare => "pre-prepare",
            SlotPhase::Prepared => "prepared",
            SlotPhase::Committed => "committed",
            SlotPhase::Checkpointed => "checkpointed",
        }
    }
}

impl fmt::Display for SlotPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A replica's view of one sequence number, from its own log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotStatus {
    /// The sequence number asked about.
    pub seq: Seq,
    /// The view of the accepted pre-prepare, if any.
    pub view: Option<View>,
    /// How far the number has come.
    pub phase: SlotPhase,
    /// The digest of the accepted pre-prepare, if any.
    pub digest: Option<Digest>,
    /// Distinct replicas whose prepare this replica received, its own
    /// included: those it holds, and those that came once it was already
    /// prepared (dropped without their signature checked, as unneeded).
    /// Once a pre-prepare is accepted, only prepares matching its digest
    /// count.
    pub prepares_received: usize,
    /// Distinct replicas whose commit this replica holds, its own included,
    /// counted like `prepares_received`.
    pub commits_received: usize,
    /// Whether the batch has been executed here.
    pub executed: bool,
    /// The results of the batch's requests, in order, once executed.
    pub results: Option<Vec<ExecResult>>,
}

impl<S: Service> Replica<S> {
    /// What this replica's log says about `seq`. A number the log knows
    /// nothing about reports [`SlotPhase::None`] with zero counts.
    pub fn status(&self, seq: Seq) -> SlotStatus {
        let Some(slot) = self.log.get(seq) else {
            let collected = seq > Seq(0) && seq <= self.checkpoints.low();
            return SlotStatus {
                seq,
                view: None,
                phase: if collected {
                    SlotPhase::Checkpointed
                } else {
                    SlotPhase::None
                },
                digest: None,
                prepares_received: 0,
                commits_received: 0,
                executed: collected,
                results: None,
            };
        };
        // A committed number reports the batch that committed, even where
        // a kept certificate proves it against a pre-prepare accepted here.
        let committed = slot.committed_pre_prepare();
        let shown = committed.or(slot.pre_prepare.as_ref());
        let digest = shown.map(|pp| pp.digest);
        let count = |votes: &crate::votes::Votes| match digest {
            Some(d) => votes.heard(d),
            None => votes.len(),
        };
        let phase = match (shown, slot.commit_sent, slot.committed) {
            (None, _, _) => SlotPhase::None,
            (Some(_), _, true) => SlotPhase::Committed,
            (Some(_), _, false) if committed.is_some() => SlotPhase::Committed,
            (Some(_), true, false) => SlotPhase::Prepared,
            (Some(_), false, false) => SlotPhase::PrePrepare,
        };
        SlotStatus {
            seq,
            view: shown.map(|pp| pp.view),
            phase,
            digest,
            prepares_received: count(&slot.prepares),
            commits_received: count(&slot.commits),
            executed: slot.results.is_some(),
            results: slot.results.clone(),
        }
    }
}
