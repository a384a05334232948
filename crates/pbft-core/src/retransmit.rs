//! Retransmission of the normal case (in the spirit of the BFT library's
//! status messages, Castro's thesis §5.2): when execution stalls with
//! numbers of the current view pending, a replica sends again what it
//! already sent for them, so that a peer that lost the messages (or
//! refused them, say a pre-prepare just above a window that had not yet
//! moved) can still complete them: the primary its pre-prepares, a backup
//! its prepares, and every replica its commits. Each is the original
//! signed message, so a receiver that had it already rejects the copy as
//! a duplicate and nothing changes.

use crate::message::{Message, Signed, Vote};
use crate::output::{Destination, Output};
use crate::replica::Replica;
use crate::service::Service;
use crate::types::Seq;

impl<S: Service> Replica<S> {
    /// Sends again this replica's own messages for the unexecuted numbers
    /// of the current view.
    pub(crate) fn resend_stalled(&self, out: &mut Vec<Output>) {
        if !self.vc.active {
            return;
        }
        let primary = self.is_primary();
        for (seq, slot) in self.log.after(self.last_executed) {
            if slot.view != self.view || slot.results.is_some() {
                continue;
            }
            let Some(pp) = &slot.pre_prepare else {
                continue;
            };
            if primary && pp.batch.is_some() {
                self.resend(
                    Message::PrePrepare(pp.clone()),
                    slot.pre_prepare_signature,
                    out,
                );
            }
            let own = |votes: &crate::votes::Votes| {
                votes
                    .signed_for(pp.digest)
                    .find(|(replica, _)| *replica == self.id)
                    .map(|(_, signature)| signature)
            };
            let vote = |seq: Seq| Vote {
                view: pp.view,
                seq,
                digest: pp.digest,
                replica: self.id,
            };
            if !primary {
                if let Some(signature) = own(&slot.prepares) {
                    self.resend(Message::Prepare(vote(seq)), signature, out);
                }
            }
            if let Some(signature) = own(&slot.commits) {
                self.resend(Message::Commit(vote(seq)), signature, out);
            }
        }
    }

    fn resend(
        &self,
        message: Message,
        signature: Option<crate::auth::Signature>,
        out: &mut Vec<Output>,
    ) {
        out.push(Output::Send {
            to: Destination::Others,
            signed: Signed { message, signature },
        });
    }
}
