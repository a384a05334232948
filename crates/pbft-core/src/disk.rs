//! The simulated disk of a durable replica in a [`Cluster`]: records are
//! written, then synced; a crash keeps what was synced and loses the rest.
//!
//! [`Cluster`]: crate::Cluster

use crate::durable::Record;

/// One replica's disk.
#[derive(Clone, Debug, Default)]
pub(crate) struct Disk {
    /// Durable records, oldest first, from the last synced base on.
    synced: Vec<Record>,
    /// Written but not yet synced.
    unsynced: Vec<Record>,
    /// Syncs that wrote something.
    syncs: u64,
}

impl Disk {
    /// Writes `record`; it is durable only after the next [`sync`](Self::sync).
    pub(crate) fn write(&mut self, record: Record) {
        self.unsynced.push(record);
    }

    /// Whether some record written waits for a sync.
    pub(crate) fn dirty(&self) -> bool {
        !self.unsynced.is_empty()
    }

    /// Makes everything written durable, then discards what the last
    /// durable base makes obsolete, as a log garbage-collected at stable
    /// checkpoints does.
    pub(crate) fn sync(&mut self) {
        if self.unsynced.is_empty() {
            return;
        }
        self.syncs += 1;
        self.synced.append(&mut self.unsynced);
        if let Some(last_base) = self
            .synced
            .iter()
            .rposition(|r| matches!(r, Record::Base(_)))
        {
            self.synced.drain(..last_base);
        }
    }

    /// A crash: what was not synced is lost. Returns what survives.
    pub(crate) fn crash(&mut self) -> Vec<Record> {
        self.unsynced.clear();
        self.synced.clone()
    }

    /// The durable records.
    pub(crate) fn synced(&self) -> &[Record] {
        &self.synced
    }

    /// How many syncs wrote something.
    pub(crate) fn syncs(&self) -> u64 {
        self.syncs
    }
}
