//! View changes (§4.4, with signatures as in §4.5.2 of the OSDI paper).
//!
//! ```text
//! backup's timer expires ──▶ VIEW-CHANGE(v+1, stable checkpoint + proof,
//!                                         prepared certificates above it)
//! new primary, 2f+1 valid view changes ──▶ NEW-VIEW(v+1, V, O)
//!     O = a pre-prepare for every number from the latest stable
//!         checkpoint in V to the highest prepared number in V: the batch
//!         of the certificate from the latest view, or a null request
//! backups recompute O from V and move to v+1 only if it matches
//! ```
//!
//! Liveness (§4.5.2): a replica that sees `f + 1` view changes for views
//! above its own joins the smallest of them; the timer for a view change
//! starts once `2f + 1` replicas ask for the view (or a later one); each
//! view change that neither installs nor executes a request before the
//! timer fires doubles the timeout; the timeout is back to its base once a
//! request executes in the new view.
//!
//! Lost messages (`catch_up.rs`, as the BFT library does with its status
//! messages, in Castro's thesis §5.2): a replica that is changing views
//! sends its view change again, backing off, and a replica that hears a
//! view change for a view it has already passed answers the sender, at
//! most once per base timeout: the primary of an installed view with its
//! new view, any other replica with its own latest view change. A replica
//! left behind in an old view thus collects `f + 1` view changes for a
//! later one, or the new view itself, and catches up.
//!
//! `determine.rs` computes `O` from `V`; `errors.rs` says why a view change
//! or a new view is refused.

mod catch_up;
mod determine;
mod errors;

pub(crate) use catch_up::backoff;
pub use errors::{NewViewError, ViewChangeError};

use determine::determine;

use crate::auth::Signature;
use crate::certificate::CertificateError;
use crate::checkpoint::StableCheckpoint;
use crate::client_table::Known;
use std::sync::Arc;

use crate::certificate::PreparedCertificate;
use crate::digest::Digest;
use crate::message::{Message, NewView, PrePrepare, Signed, ViewChange};
use crate::output::{Destination, Output, Refusal};
use crate::pending::Held;
use crate::rejection::Rejection;
use crate::replica::Replica;
use crate::request::Batch;
use crate::service::Service;
use crate::types::{ReplicaId, Seq, View};

/// The timer and the view changes a replica has seen.
#[derive(Clone, Debug)]
pub(crate) struct ViewChanges {
    /// False between sending a view change and installing the new view.
    pub(crate) active: bool,
    base_timeout: u64,
    /// The current timeout: doubled by each view change that fails.
    timeout: u64,
    /// The tick at which the timer fires, when it runs.
    deadline: Option<u64>,
    /// `last_executed` when the timer last (re)started.
    progress: Seq,
    /// False from sending a view change until a request executes in a view
    /// installed after it: the view change has not yet shown that it
    /// worked, so the next one waits twice as long (§4.5.2).
    proven: bool,
    /// The latest valid view change from each replica.
    latest: Vec<Option<(ViewChange, Signed)>>,
    /// The new view installed last, signed by this replica to relay it to
    /// replicas left behind.
    installed: Option<Signed>,
    /// The view installed last (0 at the start): while changing views, a
    /// replica follows what the views from here on commit (`follow.rs`).
    pub(crate) last_installed: View,
    /// The view change this replica sent last, kept after the new view
    /// installs so that it can vouch for the view to replicas left behind.
    own: Option<(View, Signed)>,
    /// While changing views: the tick at which the view change goes out
    /// again, and the wait after that (doubled by each resend).
    resend_at: Option<u64>,
    resend_wait: u64,
    /// The tick each peer was last helped to catch up, to bound the work a
    /// peer can demand.
    helped: Vec<Option<u64>>,
    /// The tick each peer's last view change or new view that did not
    /// check arrived. Checking one costs a signature check per certificate
    /// member, so a peer that sent an invalid one waits a base timeout
    /// before another of its view changes or new views is checked; an
    /// honest replica never sends one.
    invalid_at: Vec<Option<u64>>,
}

impl ViewChanges {
    pub(crate) fn new(n: usize, timeout: u64) -> ViewChanges {
        ViewChanges {
            active: true,
            base_timeout: timeout,
            timeout,
            deadline: None,
            progress: Seq(0),
            proven: true,
            latest: vec![None; n],
            installed: None,
            last_installed: View(0),
            own: None,
            resend_at: None,
            resend_wait: 0,
            helped: vec![None; n],
            invalid_at: vec![None; n],
        }
    }
}

impl<S: Service> Replica<S> {
    /// The view-change timeout before any doubling.
    pub(crate) fn vc_base_timeout(&self) -> u64 {
        self.vc.base_timeout
    }

    /// One tick: fires the view-change timer when it is due, asks for
    /// state when this replica is behind, and proposes held requests.
    pub(crate) fn on_tick(&mut self, out: &mut Vec<Output>) {
        self.ticks += 1;
        self.fetch_if_behind(out);
        self.propose_held_any(out);
        self.relay_waiting(out);
        self.report_if_stalled(out);
        self.reforward_waiting(out);
        self.resend_view_change(out);
        let due = self.vc.deadline.is_some_and(|d| self.ticks >= d);
        if due {
            if !self.vc.proven {
                // The last view change did not install in time, or its view
                // executed nothing new before the timer fired.
                self.vc.timeout = self.vc.timeout.saturating_mul(2);
            }
            self.start_view_change(self.view.next(), out);
        }
    }

    /// Sets the timer after each input (§4.4). During a view change it runs
    /// as the view change set it. Otherwise a backup's timer runs from the
    /// moment the oldest request a client gave it began to wait, so a
    /// primary that orders other requests cannot starve that one; with no
    /// such request, it runs while an accepted pre-prepare waits to
    /// execute, restarting whenever something executes.
    pub(crate) fn update_timer(&mut self) {
        let progressed = self.last_executed > self.vc.progress;
        self.vc.progress = self.last_executed;
        if !self.vc.active {
            return;
        }
        if progressed {
            // A request executed in this view: the view works.
            self.vc.timeout = self.vc.base_timeout;
            self.vc.proven = true;
        }
        if self.is_primary() {
            self.vc.deadline = None;
        } else if let Some(since) = self.clients.oldest_wait() {
            self.vc.deadline = Some(since.saturating_add(self.vc.timeout));
        } else if self.has_unexecuted_pre_prepare() {
            if self.vc.deadline.is_none() || progressed {
                self.vc.deadline = Some(self.ticks.saturating_add(self.vc.timeout));
            }
        } else {
            self.vc.deadline = None;
        }
    }

    pub(crate) fn has_unexecuted_pre_prepare(&self) -> bool {
        self.log
            .after(self.last_executed)
            .any(|(_, slot)| slot.pre_prepare.is_some() && slot.results.is_none())
    }

    /// Moves to `target` without a new view yet: slots start over (keeping
    /// their prepared certificates), and normal-case messages wait.
    fn enter_view(&mut self, target: View, out: &mut Vec<Output>) {
        // Before any message of the new view goes out.
        self.persist(crate::durable::Record::View(target), out);
        for seq in self.log.seqs() {
            let carried = if self.log.get(seq).is_some_and(|s| s.commit_sent) {
                self.prepared_certificate(seq)
            } else {
                None
            };
            if let Some(slot) = self.log.get_mut(seq) {
                slot.reset(target, carried);
            }
        }
        // Requests held back as primary now go to the next primary, and
        // requests acknowledged for numbers that may be reassigned wait for
        // the new view.
        // Forwarded ones (no client waits here) are the backups' to resend.
        // A client's own was held unchecked (`order`): one with a bad
        // signature must not run this replica's timer.
        for (request, ack) in self.pending.take_all() {
            if ack && self.client_keys.check(&request).is_ok() {
                self.clients.await_order(request, self.ticks, true);
            }
        }
        self.clients.requeue_unexecuted(self.ticks);
        self.clients.relay_again(self.ticks);
        self.view = target;
        self.vc.active = false;
        self.vc.proven = false;
    }

    /// Sends a view change for `target` (§4.4).
    pub(crate) fn start_view_change(&mut self, target: View, out: &mut Vec<Output>) {
        if target <= self.view {
            return;
        }
        self.enter_view(target, out);
        // Each certificate names its batch by digest: a view change stays
        // small whatever the batches hold. The batches stay in the log.
        let prepared = self
            .log
            .seqs()
            .into_iter()
            .filter(|seq| *seq > self.checkpoints.low())
            .filter_map(|seq| self.prepared_certificate(seq))
            .map(|cert| PreparedCertificate {
                pre_prepare: without_batch(&cert.pre_prepare),
                prepares: cert.prepares,
            })
            .collect();
        let vc = ViewChange {
            new_view: target,
            checkpoint: self.checkpoints.stable.clone(),
            prepared,
            replica: self.id,
        };
        let signed = self.sign(Message::ViewChange(vc.clone()));
        out.push(Output::Send {
            to: Destination::Others,
            signed: signed.clone(),
        });
        self.vc.own = Some((target, signed.clone()));
        self.vc.resend_wait = (self.vc.base_timeout / 2).max(1);
        self.vc.resend_at = Some(self.ticks.saturating_add(self.vc.resend_wait));
        self.vc.latest[self.id.index()] = Some((vc, signed));
        self.vc.deadline = None;
        self.arm_view_change_timer();
        self.try_new_view(out);
    }

    /// §4.5.2: the timer for a view change starts only once a quorum of
    /// replicas asked for this view or a later one, so that a replica that
    /// moved on alone waits for the others instead of running further
    /// ahead. (A replica already asking for a later view no longer counts
    /// for this one in `latest`, but it clearly wants this one gone.)
    fn arm_view_change_timer(&mut self) {
        if self.vc.active || self.vc.deadline.is_some() {
            return;
        }
        let view = self.view;
        let votes = self
            .vc
            .latest
            .iter()
            .flatten()
            .filter(|(vc, _)| vc.new_view >= view)
            .count();
        if votes >= self.quorums.quorum() {
            self.vc.deadline = Some(self.ticks.saturating_add(self.vc.timeout));
        }
    }

    /// Checks a view change: first its shape (certificates in order, inside
    /// the window above the checkpoint, from earlier views), which costs
    /// nothing, then every signature.
    fn check_view_change(&self, vc: &ViewChange) -> Result<(), ViewChangeError> {
        let mut last = vc.checkpoint.seq;
        let high = Seq(vc.checkpoint.seq.0.saturating_add(self.checkpoints.window));
        for cert in &vc.prepared {
            let Some(pp) = cert.pre_prepare() else {
                return Err(ViewChangeError::Prepared {
                    seq: last.next(),
                    error: CertificateError::NotAPrePrepare,
                });
            };
            if pp.seq <= last || pp.seq > high {
                return Err(ViewChangeError::PreparedOutOfOrder { seq: pp.seq });
            }
            if pp.view >= vc.new_view {
                return Err(ViewChangeError::PreparedFromFuture {
                    seq: pp.seq,
                    view: pp.view,
                });
            }
            last = pp.seq;
        }
        let auth = &*self.auth;
        if vc.checkpoint.seq > Seq(0) {
            vc.checkpoint
                .check(&self.quorums, auth)
                .map_err(ViewChangeError::Checkpoint)?;
        }
        for cert in &vc.prepared {
            let seq = cert.pre_prepare().map_or(Seq(0), |pp| pp.seq);
            cert.check(&self.quorums, auth)
                .map_err(|error| ViewChangeError::Prepared { seq, error })?;
        }
        Ok(())
    }

    /// A peer's view change.
    pub(crate) fn on_view_change(
        &mut self,
        from: ReplicaId,
        vc: ViewChange,
        signature: Option<Signature>,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        if vc.replica != from {
            return Err(Rejection::SenderMismatch {
                claimed: vc.replica,
            });
        }
        let installed = self.vc.active && vc.new_view <= self.view;
        if installed || vc.new_view < self.view {
            self.help_catch_up(from, vc.new_view, false, out);
            return Err(Rejection::StaleViewChange {
                current: self.view,
                received: vc.new_view,
            });
        }
        if let Some((held, _)) = &self.vc.latest[from.index()] {
            if held.new_view >= vc.new_view {
                return Err(Rejection::StaleViewChange {
                    current: held.new_view,
                    received: vc.new_view,
                });
            }
        }
        self.check_throttle(from)?;
        if let Err(e) = self.check_view_change(&vc) {
            self.vc.invalid_at[from.index()] = Some(self.ticks);
            return Err(Rejection::InvalidViewChange(e));
        }
        let signed = Signed {
            message: Message::ViewChange(vc.clone()),
            signature,
        };
        self.vc.latest[from.index()] = Some((vc, signed));
        // §4.5.2: f + 1 replicas want a later view, so at least one honest
        // replica does: join the smallest such view.
        let later: Vec<View> = self
            .vc
            .latest
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.id.index())
            .filter_map(|(_, held)| held.as_ref().map(|(vc, _)| vc.new_view))
            .filter(|v| *v > self.view)
            .collect();
        if later.len() >= self.quorums.weak() {
            if let Some(smallest) = later.into_iter().min() {
                self.start_view_change(smallest, out);
            }
        }
        self.arm_view_change_timer();
        self.try_new_view(out);
        Ok(())
    }

    /// As the primary of the view being changed to: sends the new view
    /// once a quorum of view changes for it has arrived.
    fn try_new_view(&mut self, out: &mut Vec<Output>) {
        if self.vc.active || !self.is_primary() {
            return;
        }
        let view = self.view;
        let chosen: Vec<Signed> = self
            .vc
            .latest
            .iter()
            .flatten()
            .filter(|(vc, _)| vc.new_view == view)
            .map(|(_, signed)| signed.clone())
            .collect();
        if chosen.len() < self.quorums.quorum() {
            return;
        }
        let vcs: Vec<&ViewChange> = chosen.iter().filter_map(as_view_change).collect();
        let determined = determine(view, &vcs);
        // O names its batches by digest; the signature covers only
        // (view, seq, digest), so the same signature serves the
        // pre-prepare sent again with its batch.
        let pre_prepares: Vec<Signed> = determined
            .pre_prepares
            .into_iter()
            .map(|pp| self.sign(Message::PrePrepare(pp)))
            .collect();
        let nv = NewView {
            view,
            view_changes: chosen,
            pre_prepares,
        };
        let signed = self.sign(Message::NewView(nv.clone()));
        out.push(Output::Send {
            to: Destination::Others,
            signed,
        });
        // Then each re-issued pre-prepare with its batch, where this
        // replica holds it, for backups that lack it (TOCS §4.4: the
        // backups need the requests to execute them).
        for signed in &nv.pre_prepares {
            let Message::PrePrepare(pp) = &signed.message else {
                continue;
            };
            if pp.batch.is_some() {
                continue;
            }
            if let Some(batch) = self.local_batch(pp.seq, pp.digest) {
                let full = PrePrepare {
                    batch: Some(batch),
                    ..pp.clone()
                };
                out.push(Output::Send {
                    to: Destination::Others,
                    signed: Signed {
                        message: Message::PrePrepare(full),
                        signature: signed.signature,
                    },
                });
            }
        }
        self.install_new_view(nv, determined.checkpoint, out);
    }

    /// A batch this replica holds for `seq` whose digest is `digest`: the
    /// null request, or one in the number's slot.
    fn local_batch(&self, seq: Seq, digest: Digest) -> Option<Arc<Batch>> {
        let null = Batch::new(Vec::new());
        if null.digest() == digest {
            return Some(Arc::new(null));
        }
        self.log.get(seq)?.batch_for(digest).cloned()
    }

    /// The new primary's new view.
    pub(crate) fn on_new_view(
        &mut self,
        from: ReplicaId,
        nv: NewView,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        // Any replica may relay a new view to one left behind: its members
        // are checked against their own signers, and its pre-prepares
        // against the primary, so the sender adds nothing to trust.
        if nv.view < self.view || (nv.view == self.view && self.vc.active) {
            return Err(Rejection::StaleViewChange {
                current: self.view,
                received: nv.view,
            });
        }
        self.check_throttle(from)?;
        let checkpoint = match self.check_new_view(&nv) {
            Ok(checkpoint) => checkpoint,
            Err(e) => {
                self.vc.invalid_at[from.index()] = Some(self.ticks);
                return Err(Rejection::InvalidNewView(e));
            }
        };
        if nv.view > self.view {
            self.enter_view(nv.view, out);
        }
        self.install_new_view(nv, checkpoint, out);
        Ok(())
    }

    /// Refuses, unchecked, a view change or new view from a peer whose
    /// last one did not check less than a base timeout ago.
    fn check_throttle(&self, from: ReplicaId) -> Result<(), Rejection> {
        let last_invalid = self.vc.invalid_at[from.index()];
        if last_invalid.is_some_and(|t| self.ticks < t.saturating_add(self.vc.base_timeout)) {
            return Err(Rejection::ViewChangeThrottled);
        }
        Ok(())
    }

    /// Checks `V` member by member and recomputes `O`.
    fn check_new_view(&self, nv: &NewView) -> Result<StableCheckpoint, NewViewError> {
        let mut seen = vec![false; self.quorums.n()];
        let mut vcs = Vec::with_capacity(nv.view_changes.len());
        for (index, member) in nv.view_changes.iter().enumerate() {
            let Some(vc) = as_view_change(member).filter(|vc| vc.new_view == nv.view) else {
                return Err(NewViewError::NotAViewChange { index });
            };
            let replica = vc.replica;
            let Some(seen) = seen.get_mut(replica.index()) else {
                return Err(NewViewError::NonMember { replica });
            };
            if std::mem::replace(seen, true) {
                return Err(NewViewError::Duplicate { replica });
            }
            // Verify each signature once: a view change this replica
            // already accepted, byte for byte, needs no second check.
            let known = self.vc.latest[replica.index()]
                .as_ref()
                .is_some_and(|(_, held)| held == member);
            if !known {
                self.auth
                    .verify(replica, &member.message, member.signature.as_ref())
                    .map_err(|failure| NewViewError::Unauthentic { replica, failure })?;
                self.check_view_change(vc)
                    .map_err(|error| NewViewError::InvalidViewChange { replica, error })?;
            }
            vcs.push(vc);
        }
        let need = self.quorums.quorum();
        if vcs.len() < need {
            return Err(NewViewError::TooFew {
                have: vcs.len(),
                need,
            });
        }
        let determined = determine(nv.view, &vcs);
        if determined.pre_prepares.len() != nv.pre_prepares.len() {
            return Err(NewViewError::WrongPrePrepares);
        }
        let primary = self.quorums.primary(nv.view);
        for (expected, given) in determined.pre_prepares.iter().zip(&nv.pre_prepares) {
            let Message::PrePrepare(pp) = &given.message else {
                return Err(NewViewError::WrongPrePrepares);
            };
            let same =
                (pp.view, pp.seq, pp.digest) == (expected.view, expected.seq, expected.digest);
            let wrong_batch = pp.batch.as_ref().is_some_and(|batch| !pp.names(batch));
            if !same || wrong_batch {
                return Err(NewViewError::WrongPrePrepares);
            }
            self.auth
                .verify(primary, &given.message, given.signature.as_ref())
                .map_err(|failure| NewViewError::UnsignedPrePrepare {
                    seq: pp.seq,
                    failure,
                })?;
        }
        Ok(determined.checkpoint)
    }

    /// Moves into the new view: adopts the latest stable checkpoint of `V`
    /// when this replica has that state, and accepts every pre-prepare in
    /// `O` as if it had just arrived from the primary.
    fn install_new_view(
        &mut self,
        nv: NewView,
        checkpoint: StableCheckpoint,
        out: &mut Vec<Output>,
    ) {
        // Kept to send again to a replica that missed it, naming its
        // batches by digest so that it stays small.
        let installed = {
            let sent = NewView {
                pre_prepares: nv.pre_prepares.iter().map(without_batch).collect(),
                ..nv.clone()
            };
            Some(self.sign(Message::NewView(sent)))
        };
        self.vc.last_installed = nv.view;
        self.follow.clear();
        self.vc.deadline = None;
        self.vc.progress = self.last_executed;
        for held in &mut self.vc.latest {
            if held.as_ref().is_some_and(|(vc, _)| vc.new_view <= nv.view) {
                *held = None;
            }
        }
        let checkpoint_seq = checkpoint.seq;
        if checkpoint.seq > self.checkpoints.low() {
            self.adopt_checkpoint(checkpoint, out);
        }
        // A primary that could not adopt the checkpoint still numbers after it.
        let mut highest = self.checkpoints.low().max(checkpoint_seq);
        for signed in nv.pre_prepares {
            let Message::PrePrepare(mut pp) = signed.message else {
                continue;
            };
            if pp.batch.is_none() {
                // Named by digest: this replica may hold the batch already
                // (it prepared it, say); if not, it arrives with the
                // primary's pre-prepare or through state transfer.
                pp.batch = self.local_batch(pp.seq, pp.digest);
            }
            highest = highest.max(pp.seq);
            if pp.seq <= self.checkpoints.low() {
                continue;
            }
            // A checked new view never contradicts a committed certificate
            // (§4.4: some member of V carries the number's prepared
            // certificate); refuse to prepare one that would.
            if self
                .log
                .get(pp.seq)
                .is_some_and(|slot| slot.contradicts_proof(pp.digest))
            {
                continue;
            }
            self.accept_pre_prepare(pp, signed.signature, out);
        }
        // The view is active only now. Until here nothing may be proposed:
        // adopting the checkpoint moves the window, and a primary ordering
        // its held requests then would number them before it knows the
        // numbers O re-issues (§4.4), or below its new low watermark.
        self.vc.active = true;
        if self.is_primary() {
            self.last_assigned = highest;
            // Requests this replica held as a backup are now its to order.
            for (request, here) in self.clients.take_awaiting() {
                // Checked when it came to this replica as a backup.
                let keys = &self.client_keys;
                let held = self
                    .pending
                    .hold(request.clone(), here, true, |r| keys.check(r).is_ok());
                if held == Held::Full && here {
                    out.push(Output::Refused {
                        request,
                        reason: Refusal::Overloaded,
                    });
                }
            }
            self.propose_pending(out);
        } else {
            self.clients.restart_waits(self.ticks);
            for request in self.clients.awaiting() {
                if self.classify(&request) != Known::New {
                    continue;
                }
                self.send(
                    Destination::Replica(self.primary()),
                    Message::Forward(request),
                    out,
                );
            }
        }
        self.vc.installed = installed;
    }

    /// The view changes this replica holds, latest per replica.
    pub fn view_changes(&self) -> impl Iterator<Item = &ViewChange> {
        self.vc.latest.iter().flatten().map(|(vc, _)| vc)
    }

    /// The current view-change timeout in ticks: the configured one,
    /// doubled by each consecutive view change that failed to install.
    pub fn view_change_timeout(&self) -> u64 {
        self.vc.timeout
    }

    /// The tick at which the view-change timer fires, when it runs.
    pub fn view_change_deadline(&self) -> Option<u64> {
        self.vc.deadline
    }

    /// False while a view change is in progress: the replica has moved to
    /// [`view`](Self::view) but the new view is not installed yet.
    pub fn view_active(&self) -> bool {
        self.vc.active
    }
}

/// `signed` with any pre-prepare in it naming its batch by digest only; the
/// signature still holds, since it covers only `(view, seq, digest)`.
fn without_batch(signed: &Signed) -> Signed {
    match &signed.message {
        Message::PrePrepare(pp) => Signed {
            message: Message::PrePrepare(pp.without_batch()),
            signature: signed.signature,
        },
        _ => signed.clone(),
    }
}

fn as_view_change(signed: &Signed) -> Option<&ViewChange> {
    match &signed.message {
        Message::ViewChange(vc) => Some(vc),
        _ => None,
    }
}
