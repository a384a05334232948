//! A replica changing views alone follows the view it left.
//!
//! A backup cut off from the others (or just unlucky) lets its timer fire
//! and sends a view change for `v + 1`. When the network heals, the others
//! may still be working in `v`: one view change is not enough to move
//! them (`f + 1` are, §4.5.2), so the lone replica would wait in
//! view-changing until some later view change, refusing `v`'s
//! pre-prepares, and its clients would never hear back.
//!
//! It cannot go back to `v`: its view change promised that it prepares
//! nothing more there, and the view change's prepared certificates may be
//! all a new primary learns of `v` from it (§4.4). But nothing stops it
//! from *learning* what `v` commits. A number is committed once `2f + 1`
//! replicas signed commits for one batch at it in one view: at least
//! `f + 1` honest replicas then prepared it, so no new view can put another
//! batch there (§4.4's argument), and every honest replica executes that
//! batch. So while changing views, a replica keeps the pre-prepares and
//! commits that replicas still send in the views between the last one it
//! installed and the one it is changing to, without sending a prepare or
//! a commit of its own. When a pre-prepare and a quorum of matching
//! commits are in hand, they form a committed certificate, exactly the
//! one a state transfer would bring, and the number executes in order.
//! Its clients' requests meanwhile go to every other replica
//! (`client.rs`), so the primary the others follow orders them.
//!
//! What a peer can make it keep is bounded: numbers inside the window
//! above the last executed one, and for each number one pre-prepare per
//! replica (as primary of some followed view) and one commit per replica.
//! A newer view's message replaces a replica's older one. A pre-prepare
//! is kept only with its batch, checked against its digest and the size
//! bounds, so that every certificate formed here carries the batch it
//! executes.

use std::collections::BTreeMap;

use crate::auth::Signature;
use crate::certificate::CommittedCertificate;
use crate::digest::Digest;
use crate::message::{Message, PrePrepare, Signed, Vote};
use crate::output::{Ordered, Output};
use crate::rejection::Rejection;
use crate::replica::Replica;
use crate::service::Service;
use crate::types::{ReplicaId, Seq, View};

/// What a replica changing views has heard of the views it follows.
#[derive(Clone, Debug, Default)]
pub(crate) struct Follow {
    slots: BTreeMap<Seq, Learning>,
}

/// One number's messages from followed views.
#[derive(Clone, Debug)]
struct Learning {
    /// Each replica's latest pre-prepare, as primary of a followed view.
    pre_prepares: Vec<Option<(PrePrepare, Option<Signature>)>>,
    /// Each replica's latest commit: its view, digest and signature.
    commits: Vec<Option<(View, Digest, Option<Signature>)>>,
}

impl Follow {
    /// Forgets everything: a new view is installed.
    pub(crate) fn clear(&mut self) {
        self.slots.clear();
    }
}

impl<S: Service> Replica<S> {
    /// Whether this replica follows `view`: it is changing views, and
    /// `view` lies between the last view it installed and the one it is
    /// changing to.
    pub(crate) fn follows(&self, view: View) -> bool {
        !self.vc.active && view >= self.vc.last_installed && view < self.view
    }

    /// A pre-prepare of a followed view: kept, not prepared, once it
    /// checks as one of the current view would.
    pub(crate) fn learn_pre_prepare(
        &mut self,
        from: ReplicaId,
        pp: PrePrepare,
        signature: Option<Signature>,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        self.check_from_primary(from, &pp)?;
        self.check_learnable(pp.seq)?;
        // As in the normal case, so that a certificate formed from it can
        // execute.
        self.check_pre_prepare_batch(&pp)?;
        let seq = pp.seq;
        let held = self
            .follow
            .slots
            .get(&seq)
            .and_then(|learning| learning.pre_prepares[from.index()].as_ref());
        if held.is_some_and(|(old, _)| old.view >= pp.view) {
            return Err(Rejection::DuplicatePrePrepare { seq });
        }
        // Last, as the dearest check, like `on_pre_prepare`.
        self.check_client_signatures(&pp)?;
        let learning = self.learning(seq);
        let held = &mut learning.pre_prepares[from.index()];
        *held = Some((pp, signature));
        self.try_certify(seq, out);
        Ok(())
    }

    /// A commit of a followed view: kept, and counted.
    pub(crate) fn learn_commit(
        &mut self,
        from: ReplicaId,
        vote: Vote,
        signature: Option<Signature>,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        if vote.replica != from {
            return Err(Rejection::SenderMismatch {
                claimed: vote.replica,
            });
        }
        self.check_learnable(vote.seq)?;
        let seq = vote.seq;
        let learning = self.learning(seq);
        let held = &mut learning.commits[from.index()];
        if held.as_ref().is_some_and(|(view, _, _)| *view >= vote.view) {
            return Err(Rejection::DuplicateVote {
                phase: crate::message::Phase::Commit,
                seq,
            });
        }
        *held = Some((vote.view, vote.digest, signature));
        self.try_certify(seq, out);
        Ok(())
    }

    /// Numbers worth learning: inside the window, not executed yet, and
    /// not already proven.
    fn check_learnable(&mut self, seq: Seq) -> Result<(), Rejection> {
        self.check_seq(seq)?;
        // Forget what has executed meanwhile.
        let keep = self.follow.slots.split_off(&self.last_executed.next());
        self.follow.slots = keep;
        let proven = self.log.get(seq).is_some_and(|s| s.proof.is_some());
        if seq <= self.last_executed || proven {
            return Err(Rejection::AlreadyCommitted { seq });
        }
        Ok(())
    }

    fn learning(&mut self, seq: Seq) -> &mut Learning {
        let n = self.quorums.n();
        self.follow.slots.entry(seq).or_insert_with(|| Learning {
            pre_prepares: vec![None; n],
            commits: vec![None; n],
        })
    }

    /// Turns a pre-prepare and a quorum of matching commits for `seq` into
    /// a committed certificate beside the slot; `step` then executes it in
    /// order.
    fn try_certify(&mut self, seq: Seq, out: &mut Vec<Output>) {
        let quorum = self.quorums.quorum();
        let Some(learning) = self.follow.slots.get(&seq) else {
            return;
        };
        let certified = learning
            .pre_prepares
            .iter()
            .flatten()
            .find_map(|(pp, sig)| {
                let commits: Vec<Signed> = learning
                    .commits
                    .iter()
                    .enumerate()
                    .filter_map(|(r, held)| {
                        let (view, digest, signature) = held.as_ref()?;
                        ((*view, *digest) == (pp.view, pp.digest)).then_some(Signed {
                            message: Message::Commit(Vote {
                                view: pp.view,
                                seq,
                                digest: pp.digest,
                                replica: ReplicaId(r as u32),
                            }),
                            signature: *signature,
                        })
                    })
                    .collect();
                (commits.len() >= quorum).then(|| CommittedCertificate {
                    pre_prepare: Signed {
                        message: Message::PrePrepare(pp.clone()),
                        signature: *sig,
                    },
                    commits,
                })
            });
        let Some(cert) = certified else {
            return;
        };
        self.follow.slots.remove(&seq);
        let Some(pp) = cert.pre_prepare().cloned() else {
            return;
        };
        let Some(batch) = pp.batch else {
            return;
        };
        for request in batch.requests() {
            if self.clients.note_ordered(request, pp.view, seq) {
                out.push(Output::Ordered(Ordered {
                    request: request.clone(),
                    view: pp.view,
                    seq,
                }));
            }
        }
        let view = self.view;
        self.log.slot_mut(view, seq).proof = Some(cert);
    }
}
