//! Durability: what a replica must find on disk after a crash, and how it
//! starts again from it.
//!
//! A replica built with [`Replica::restore`] is *durable*: among its
//! outputs come [`Output::Persist`] records, each placed before the first
//! output that depends on it. The contract, in the manner of raft-rs's
//! `Ready` (persist, then send):
//!
//! > Before carrying out any output that follows an [`Output::Persist`],
//! > make that record durable (written and synced).
//!
//! A caller keeps the contract most cheaply by collecting the records of
//! one step (or of several steps whose outputs it holds back), syncing
//! once, and only then carrying out the rest: one sync per step or batch,
//! not one per record. Records are never needed in another order than the
//! one they came out in.
//!
//! What the records make binding, and why that is enough (TOCS §4; the
//! argument is in `docs/design.md`, "Durable replicas"):
//!
//! - [`Record::View`] comes before any message of a view goes out. A
//!   restored replica never acts again in a view it recorded: it starts a
//!   view change to the next one. So it cannot contradict a pre-prepare,
//!   prepare or commit it sent before the crash, whether or not it
//!   remembers them;
//! - [`Record::Prepared`] comes before the commit it allows. A view change
//!   after the restart still carries the certificate, so a request that
//!   may have committed survives the view change (§4.4);
//! - [`Record::Committed`] comes before the number executes, so before any
//!   reply to a client: what a client was told is in the replica's state
//!   after the restart;
//! - [`Record::Base`] comes at each new stable checkpoint. It holds the
//!   checkpoint's state and proof and every record above it still binding,
//!   so once it is durable every record before it may be discarded: the
//!   disk stays bounded by one state and a window of certificates.
//!
//! ```
//! use pbft_core::{Config, Input, KvService, Output, Record, Replica, ReplicaId, Request, Unauthenticated};
//!
//! let config = Config::new(1); // one replica, f = 0: it commits alone
//! let mut disk: Vec<Record> = Vec::new();
//! let mut out = Vec::new();
//! let mut replica =
//!     Replica::restore(&config, ReplicaId(0), KvService::default(), Unauthenticated, Vec::new(), &mut out)
//!         .unwrap();
//! replica.step(Input::Request(Request::new("c1", Some(1), "set x=42")), &mut out);
//! for output in out.drain(..) {
//!     match output {
//!         // Written and synced before anything after it is carried out.
//!         Output::Persist(record) => disk.push(record),
//!         _ => { /* send, reply, log */ }
//!     }
//! }
//! assert_eq!(replica.service().get("x"), Some("42"));
//!
//! // A crash: memory is lost, the disk is not.
//! let restored =
//!     Replica::restore(&config, ReplicaId(0), KvService::default(), Unauthenticated, disk, &mut out)
//!         .unwrap();
//! assert_eq!(restored.service().get("x"), Some("42"));
//! // It never acts again in the views it recorded.
//! assert!(restored.view() > replica.view());
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::auth::Authenticator;
use crate::certificate::{CertificateError, CommittedCertificate, PreparedCertificate};
use crate::checkpoint::{Snapshot, StableCheckpoint};
use crate::config::{Config, ConfigError};
use crate::output::Output;
use crate::rejection::Rejection;
use crate::replica::Replica;
use crate::service::Service;
use crate::state_transfer::StateError;
use crate::types::{ReplicaId, Seq, View};

/// One thing a durable replica needs on disk; see the [module
/// docs](crate::Record) for the contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// The replica entered this view; messages of the view follow.
    View(View),
    /// The replica prepared this certificate's batch and is about to send
    /// its commit. The pre-prepare carries the batch where the replica
    /// holds it.
    Prepared(PreparedCertificate),
    /// The number this certificate proves committed is about to execute.
    /// The pre-prepare carries the batch.
    Committed(CommittedCertificate),
    /// A new stable checkpoint with its state, and everything above it that
    /// still binds: every record before this one may now be discarded.
    Base(Box<Base>),
}

/// A stable checkpoint's state and the records above it that still bind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Base {
    /// The checkpoint and its proof.
    pub checkpoint: StableCheckpoint,
    /// The service's snapshot at the checkpoint.
    pub service: Arc<Vec<u8>>,
    /// The client table's snapshot at the checkpoint.
    pub clients: Arc<Vec<u8>>,
    /// The replica's view.
    pub view: View,
    /// The latest prepared certificate of each number above the checkpoint.
    pub prepared: Vec<PreparedCertificate>,
    /// The committed certificate of each number above the checkpoint that
    /// has one.
    pub committed: Vec<CommittedCertificate>,
}

impl Record {
    /// What the record is, in a word, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::View(_) => "view",
            Record::Prepared(_) => "prepared",
            Record::Committed(_) => "committed",
            Record::Base(_) => "base",
        }
    }
}

/// Why [`Replica::restore`] refused the records it was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreError {
    /// The configuration does not describe this replica.
    Config(ConfigError),
    /// A base's state does not hash to its checkpoint's digest.
    DigestMismatch {
        /// The checkpoint's number.
        seq: Seq,
    },
    /// A base's state does not decode.
    Snapshot {
        /// The checkpoint's number.
        seq: Seq,
        /// What the decoder said.
        reason: String,
    },
    /// A certificate's first member is not a pre-prepare.
    NotAPrePrepare {
        /// The record's kind.
        kind: &'static str,
    },
    /// A stored certificate or checkpoint proof does not check against
    /// this configuration's members and keys (written under another
    /// configuration, say).
    Certificate {
        /// What it is: `prepared`, `committed` or `checkpoint`.
        kind: &'static str,
        /// Its number.
        seq: Seq,
        /// What is wrong with it.
        error: CertificateError,
    },
    /// A stored certificate is for a number beyond the window above the
    /// stored checkpoint: the configuration's window is smaller than the
    /// one it was written under.
    OutsideWindow {
        /// The certificate's number.
        seq: Seq,
        /// The highest number the window allows.
        high: Seq,
    },
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::Config(e) => write!(f, "{e}"),
            RestoreError::DigestMismatch { seq } => write!(
                f,
                "the state stored for checkpoint {seq} does not match its digest"
            ),
            RestoreError::Snapshot { seq, reason } => {
                write!(
                    f,
                    "the state stored for checkpoint {seq} does not decode: {reason}"
                )
            }
            RestoreError::NotAPrePrepare { kind } => {
                write!(
                    f,
                    "a stored {kind} certificate does not start with a pre-prepare"
                )
            }
            RestoreError::Certificate { kind, seq, error } => write!(
                f,
                "the stored {kind} certificate for {seq} does not check: {error}"
            ),
            RestoreError::OutsideWindow { seq, high } => write!(
                f,
                "a stored certificate is for {seq}, beyond the window's high watermark {high}"
            ),
        }
    }
}

impl std::error::Error for RestoreError {}

/// What the records add up to: the latest base and what came after it.
#[derive(Default)]
struct Found {
    any: bool,
    base: Option<Base>,
    view: View,
    prepared: BTreeMap<Seq, PreparedCertificate>,
    committed: BTreeMap<Seq, CommittedCertificate>,
}

impl Found {
    fn add(&mut self, record: Record) -> Result<(), RestoreError> {
        self.any = true;
        match record {
            Record::View(view) => self.view = self.view.max(view),
            Record::Prepared(cert) => {
                let Some(pp) = cert.pre_prepare() else {
                    return Err(RestoreError::NotAPrePrepare { kind: "prepared" });
                };
                let (seq, view) = (pp.seq, pp.view);
                self.view = self.view.max(view);
                let later = self
                    .prepared
                    .get(&seq)
                    .and_then(PreparedCertificate::pre_prepare)
                    .is_none_or(|held| held.view <= view);
                if later {
                    self.prepared.insert(seq, cert);
                }
            }
            Record::Committed(cert) => {
                let Some(pp) = cert.pre_prepare() else {
                    return Err(RestoreError::NotAPrePrepare { kind: "committed" });
                };
                let seq = pp.seq;
                let has_batch = pp.batch.is_some();
                let held_has_batch = self
                    .committed
                    .get(&seq)
                    .and_then(CommittedCertificate::pre_prepare)
                    .is_some_and(|held| held.batch.is_some());
                if has_batch || !held_has_batch {
                    self.committed.insert(seq, cert);
                }
            }
            Record::Base(base) => {
                let mut base = *base;
                let view = self.view.max(base.view);
                let prepared = std::mem::take(&mut base.prepared);
                let committed = std::mem::take(&mut base.committed);
                *self = Found {
                    any: true,
                    view,
                    base: Some(base),
                    ..Found::default()
                };
                for cert in prepared {
                    self.add(Record::Prepared(cert))?;
                }
                for cert in committed {
                    self.add(Record::Committed(cert))?;
                }
            }
        }
        Ok(())
    }
}

impl Found {
    /// Checks what was found against `replica`'s configuration: the disk's
    /// checksums guard against faults, this against a disk written under
    /// other members, keys or window, on which the replica would start
    /// with view changes nobody accepts.
    fn check<S: Service>(&self, replica: &Replica<S>, low: Seq) -> Result<(), RestoreError> {
        let (quorums, auth) = (&replica.quorums, &*replica.auth);
        if let Some(base) = &self.base {
            base.checkpoint
                .check(quorums, auth)
                .map_err(|error| RestoreError::Certificate {
                    kind: "checkpoint",
                    seq: low,
                    error,
                })?;
        }
        let high = Seq(low.0.saturating_add(replica.checkpoints.window));
        for (&seq, cert) in self.prepared.range(low.next()..) {
            if seq > high {
                return Err(RestoreError::OutsideWindow { seq, high });
            }
            cert.check(quorums, auth)
                .map_err(|error| RestoreError::Certificate {
                    kind: "prepared",
                    seq,
                    error,
                })?;
        }
        for (&seq, cert) in self.committed.range(low.next()..) {
            if seq > high {
                return Err(RestoreError::OutsideWindow { seq, high });
            }
            cert.check_members(quorums, auth, false).map_err(|error| {
                RestoreError::Certificate {
                    kind: "committed",
                    seq,
                    error,
                }
            })?;
        }
        Ok(())
    }
}

impl<S: Service> Replica<S> {
    /// A durable replica `id`, started again from the records it persisted
    /// before (in the order it persisted them), or started afresh from
    /// none. Its outputs include [`Output::Persist`] records from now on;
    /// the first ones are in `out`, to be carried out like those of a step.
    ///
    /// With records, the replica resumes at its stable checkpoint, executes
    /// what it had committed above it, and starts a view change to the
    /// view after the last one it recorded: it never again takes part in a
    /// view it may have voted in before the crash, so nothing it forgot
    /// can make it contradict itself. The view change carries its prepared
    /// certificates, as any view change does.
    ///
    /// Executing again, it emits [`Output::Executed`] once more for every
    /// number above the checkpoint that it had executed: a caller that
    /// answers clients from those answers them again (clients drop
    /// answers they no longer wait for). Every certificate and the
    /// checkpoint's proof are checked against `config` and `auth` first; a
    /// disk written under other members, keys or a larger window is
    /// refused ([`RestoreError::Certificate`], [`RestoreError::OutsideWindow`]).
    pub fn restore(
        config: &Config,
        id: ReplicaId,
        service: S,
        auth: impl Authenticator + 'static,
        records: impl IntoIterator<Item = Record>,
        out: &mut Vec<Output>,
    ) -> Result<Replica<S>, RestoreError> {
        let mut replica = Replica::new(config, id, service, auth).map_err(RestoreError::Config)?;
        replica.durable = true;
        let mut found = Found::default();
        for record in records {
            found.add(record)?;
        }
        if !found.any {
            // Nothing was ever recorded: a fresh replica, whose first
            // messages are of view 0.
            replica.persist(Record::View(View(0)), out);
            return Ok(replica);
        }
        let low = found.base.as_ref().map_or(Seq(0), |b| b.checkpoint.seq);
        found.check(&replica, low)?;
        // The certificates go in first, so that the base the checkpoint
        // writes again below holds them.
        for (seq, cert) in found.prepared.into_iter().filter(|(s, _)| *s > low) {
            replica.log.slot_mut(View(0), seq).carried = Some(cert);
        }
        for (seq, cert) in found.committed.into_iter().filter(|(s, _)| *s > low) {
            replica.log.slot_mut(View(0), seq).proof = Some(cert);
            replica.last_assigned = replica.last_assigned.max(seq);
        }
        // As if the replica had entered its last view and were changing
        // views: nothing of that view is acted on again.
        replica.view = found.view;
        replica.vc.active = false;
        if let Some(base) = found.base {
            let seq = base.checkpoint.seq;
            let snapshot = Snapshot::of(
                Arc::unwrap_or_clone(base.service),
                Arc::unwrap_or_clone(base.clients),
                replica.checkpoints.chunk_bytes,
            );
            if snapshot.digest != base.checkpoint.digest {
                return Err(RestoreError::DigestMismatch { seq });
            }
            match replica.restore_state(base.checkpoint, snapshot, Vec::new(), out) {
                Ok(()) => {}
                Err(Rejection::InvalidState(StateError::Snapshot(reason))) => {
                    return Err(RestoreError::Snapshot { seq, reason })
                }
                Err(other) => {
                    return Err(RestoreError::Snapshot {
                        seq,
                        reason: other.to_string(),
                    })
                }
            }
        }
        replica.execute_ready(out);
        replica.start_view_change(found.view.next(), out);
        replica.update_timer();
        Ok(replica)
    }

    /// Whether this replica emits [`Output::Persist`] records.
    pub fn is_durable(&self) -> bool {
        self.durable
    }

    /// Queues `record` for the disk, if this replica is durable.
    pub(crate) fn persist(&self, record: Record, out: &mut Vec<Output>) {
        if self.durable {
            out.push(Output::Persist(record));
        }
    }

    /// The base record for the stable checkpoint just reached, if this
    /// replica is durable and holds that checkpoint's state.
    pub(crate) fn persist_base(&self, out: &mut Vec<Output>) {
        if !self.durable {
            return;
        }
        let checkpoint = self.checkpoints.stable.clone();
        let Some(snapshot) = self.checkpoints.own_snapshot(checkpoint.seq) else {
            return;
        };
        let low = checkpoint.seq;
        let seqs: Vec<Seq> = self.log.after(low).map(|(seq, _)| seq).collect();
        let prepared = seqs
            .iter()
            .filter_map(|seq| self.prepared_certificate(*seq))
            .collect();
        let committed = seqs
            .iter()
            .filter_map(|seq| self.committed_certificate(*seq))
            .collect();
        let base = Base {
            service: Arc::clone(&snapshot.service),
            clients: Arc::clone(&snapshot.clients),
            checkpoint,
            view: self.view,
            prepared,
            committed,
        };
        out.push(Output::Persist(Record::Base(Box::new(base))));
    }
}
