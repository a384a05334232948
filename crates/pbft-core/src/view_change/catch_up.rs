//! Lost view-change messages (in the spirit of the BFT library's status
//! messages, Castro's thesis §5.2): a replica changing views sends its view
//! change again, backing off; a replica that hears a view change for a view
//! it has passed answers with what lets the sender catch up.

use crate::message::{Message, Signed};
use crate::output::{Destination, Output};
use crate::replica::Replica;
use crate::service::Service;
use crate::types::{ReplicaId, View};

impl<S: Service> Replica<S> {
    /// While changing views, sends this replica's view change again: the
    /// first may have been lost, and the new primary needs a quorum of
    /// them. The first resend comes after half a base timeout, so that a
    /// lost message is replaced before the timer gives up on the view;
    /// each later one waits twice as long as the one before, up to
    /// [`MAX_BACKOFF`] base timeouts, so that resends cannot flood a
    /// network that is merely slow.
    pub(super) fn resend_view_change(&mut self, out: &mut Vec<Output>) {
        if self.vc.active || self.vc.resend_at.is_some_and(|t| self.ticks < t) {
            return;
        }
        let Some((view, signed)) = &self.vc.own else {
            return;
        };
        if *view != self.view {
            return;
        }
        out.push(Output::Send {
            to: Destination::Others,
            signed: signed.clone(),
        });
        self.vc.resend_wait = backoff(self.vc.resend_wait, self.vc.base_timeout);
        self.vc.resend_at = Some(self.ticks.saturating_add(self.vc.resend_wait));
    }

    /// `from` sent a message of `received`, a view this replica has passed
    /// or installed: a view change for it, or (`stale_primary`) a
    /// pre-prepare of it from a primary still working there. It missed
    /// what moved the others on.
    ///
    /// The primary of the installed view sends the new view that installed
    /// it, and the pre-prepares issued since; the sender checks the new
    /// view member by member and installs it directly. A new view proves
    /// itself (its view changes and its pre-prepares are each signed by
    /// their own replica), so to a stale primary every replica of the
    /// installed view sends it, in case the current primary is the one it
    /// cannot reach. Otherwise a replica sends its own latest view change,
    /// so that `f + 1` of them make the sender join (§4.5.2); answering a
    /// lost view change with `n - 1` new views would cost far more. At
    /// most once per base timeout for each peer.
    pub(crate) fn help_catch_up(
        &mut self,
        from: ReplicaId,
        received: View,
        stale_primary: bool,
        out: &mut Vec<Output>,
    ) {
        let wait = self.vc.base_timeout;
        let last = self.vc.helped[from.index()];
        if last.is_some_and(|t| self.ticks < t.saturating_add(wait)) {
            return;
        }
        let mut help = Vec::new();
        let relay = stale_primary || self.is_primary();
        if self.vc.active && received <= self.view && relay {
            if let Some(nv) = &self.vc.installed {
                help.push(nv.clone());
                if self.is_primary() {
                    // The pre-prepares issued since: the sender refused
                    // them while it waited for the new view.
                    help.extend(self.current_pre_prepares());
                }
            }
        }
        if help.is_empty() {
            let own = self.vc.own.as_ref().filter(|(view, _)| *view > received);
            help.extend(own.map(|(_, signed)| signed.clone()));
        }
        if !help.is_empty() {
            self.vc.helped[from.index()] = Some(self.ticks);
        }
        for signed in help {
            out.push(Output::Send {
                to: Destination::Replica(from),
                signed,
            });
        }
    }

    /// The pre-prepares of the current view in the log, signed as sent.
    fn current_pre_prepares(&self) -> Vec<Signed> {
        self.log
            .after(self.checkpoints.low())
            .filter_map(|(_, slot)| {
                let pp = slot
                    .pre_prepare
                    .as_ref()
                    .filter(|pp| pp.view == self.view && pp.batch.is_some())?;
                Some(Signed {
                    message: Message::PrePrepare(pp.clone()),
                    signature: slot.pre_prepare_signature,
                })
            })
            .collect()
    }
}

/// The most base timeouts a resend waits.
pub(crate) const MAX_BACKOFF: u64 = 16;

/// `wait` doubled, up to [`MAX_BACKOFF`] times `base`.
pub(crate) fn backoff(wait: u64, base: u64) -> u64 {
    wait.saturating_mul(2)
        .min(base.saturating_mul(MAX_BACKOFF))
        .max(1)
}
