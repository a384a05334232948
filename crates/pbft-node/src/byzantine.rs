//! Byzantine behaviours, a testing aid only (`--byzantine`), off by default.
//!
//! They are applied at the node's edge, to the messages the honest core
//! wants sent, so the core's logic is never bent: the node re-signs what
//! it alters with its own key, exactly as a faulty replica holding only
//! its own key could.

use std::sync::Arc;

use pbft_core::{
    Batch, Digest, Message, PrePrepare, PreparedCertificate, Replica, ReplicaId, Request, Service,
    Signed, View, Vote,
};
use pbft_wire::{Body, ErrorCode};
use serde_json::Value;

/// How a faulty replica misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Sends nothing to its peers.
    Silent,
    /// As primary, sends half its peers a different batch (the null
    /// request) for each number.
    Equivocate,
    /// As primary, sends pre-prepares whose digest does not match the batch.
    BadDigest,
    /// Sends each prepare and commit also in another replica's name.
    ForgeVotes,
    /// Sends its pre-prepares, prepares and commits labelled with the view
    /// before the current one.
    StaleView,
    /// Puts a fabricated prepared certificate (a batch nobody proposed,
    /// with prepares in other replicas' names) into its view changes.
    FabricateCertificate,
    /// Follows the protocol with its peers but lies to clients: every
    /// read returns a forged value, every success is reported as a
    /// failure and every failure as a success.
    WrongResults,
}

impl Behaviour {
    /// Parses a behaviour's name, as [`name`](Self::name) writes it.
    pub fn parse(name: &str) -> Option<Behaviour> {
        Behaviour::EVERY.into_iter().find(|b| b.name() == name)
    }

    /// The behaviour's name on the command line (`--byzantine`).
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Silent => "silent",
            Behaviour::Equivocate => "equivocate",
            Behaviour::BadDigest => "bad-digest",
            Behaviour::ForgeVotes => "forge-votes",
            Behaviour::StaleView => "stale-view",
            Behaviour::FabricateCertificate => "fabricate-certificate",
            Behaviour::WrongResults => "wrong-results",
        }
    }

    /// What goes to each target instead of `signed`.
    pub fn apply<S: Service>(
        self,
        replica: &Replica<S>,
        targets: Vec<ReplicaId>,
        signed: Signed,
    ) -> Vec<(ReplicaId, Signed)> {
        match (self, &signed.message) {
            (Behaviour::Silent, _) => Vec::new(),
            (Behaviour::Equivocate, Message::PrePrepare(pp)) => {
                let other = PrePrepare::new(pp.view, pp.seq, Arc::new(Batch::new(Vec::new())));
                let other = replica.sign(Message::PrePrepare(other));
                targets
                    .into_iter()
                    .enumerate()
                    .map(|(i, to)| {
                        (
                            to,
                            if i % 2 == 0 {
                                signed.clone()
                            } else {
                                other.clone()
                            },
                        )
                    })
                    .collect()
            }
            (Behaviour::BadDigest, Message::PrePrepare(pp)) => {
                let mut bytes = pp.digest.0;
                bytes[0] ^= 0xff;
                let bad = PrePrepare {
                    digest: Digest(bytes),
                    ..pp.clone()
                };
                let bad = replica.sign(Message::PrePrepare(bad));
                targets.into_iter().map(|to| (to, bad.clone())).collect()
            }
            (Behaviour::ForgeVotes, Message::Prepare(v) | Message::Commit(v)) => {
                let n = replica.quorums().n() as u32;
                let mut forged_vote = *v;
                forged_vote.replica = ReplicaId((v.replica.0 + 1) % n.max(1));
                let forged = match &signed.message {
                    Message::Prepare(_) => Message::Prepare(forged_vote),
                    _ => Message::Commit(forged_vote),
                };
                let forged = replica.sign(forged);
                targets
                    .into_iter()
                    .flat_map(|to| [(to, signed.clone()), (to, forged.clone())])
                    .collect()
            }
            (Behaviour::StaleView, message) => {
                let stale = |view: View| View(view.0.saturating_sub(1));
                let altered = match message {
                    Message::PrePrepare(pp) => Message::PrePrepare(PrePrepare {
                        view: stale(pp.view),
                        ..pp.clone()
                    }),
                    Message::Prepare(v) => Message::Prepare(Vote {
                        view: stale(v.view),
                        ..*v
                    }),
                    Message::Commit(v) => Message::Commit(Vote {
                        view: stale(v.view),
                        ..*v
                    }),
                    other => other.clone(),
                };
                let altered = replica.sign(altered);
                targets
                    .into_iter()
                    .map(|to| (to, altered.clone()))
                    .collect()
            }
            (Behaviour::FabricateCertificate, Message::ViewChange(vc)) => {
                let n = replica.quorums().n() as u32;
                let seq = vc.checkpoint.seq.next();
                let view = View(vc.new_view.0.saturating_sub(1));
                let batch = Batch::single(Request::new("fabricated", Some(1), "set evil=1"));
                let pp = PrePrepare::new(view, seq, Arc::new(batch));
                let prepares = (0..n)
                    .map(ReplicaId)
                    .filter(|r| *r != replica.quorums().primary(view))
                    .map(|r| {
                        replica.sign(Message::Prepare(Vote {
                            view,
                            seq,
                            digest: pp.digest,
                            replica: r,
                        }))
                    })
                    .collect();
                let cert = PreparedCertificate {
                    pre_prepare: replica.sign(Message::PrePrepare(pp)),
                    prepares,
                };
                let mut fabricated = vc.clone();
                fabricated
                    .prepared
                    .retain(|c| c.pre_prepare().is_some_and(|p| p.seq != seq));
                fabricated.prepared.insert(0, cert);
                let fabricated = replica.sign(Message::ViewChange(fabricated));
                targets
                    .into_iter()
                    .map(|to| (to, fabricated.clone()))
                    .collect()
            }
            _ => targets.into_iter().map(|to| (to, signed.clone())).collect(),
        }
    }

    /// What a client receives instead of the honest reply `body`: only
    /// [`Behaviour::WrongResults`] changes it.
    pub fn alter_reply(self, body: Body) -> Body {
        if self != Behaviour::WrongResults {
            return body;
        }
        match body {
            Body::ReadOk {
                in_reply_to,
                msg_id,
                view,
                ..
            } => Body::ReadOk {
                in_reply_to,
                msg_id,
                value: Value::from("forged by a faulty replica"),
                view,
            },
            Body::WriteOk {
                in_reply_to,
                msg_id,
                ..
            }
            | Body::CasOk {
                in_reply_to,
                msg_id,
                ..
            } => Body::Error {
                in_reply_to: Some(in_reply_to),
                msg_id: Some(msg_id),
                code: ErrorCode::PreconditionFailed.code(),
                text: "forged by a faulty replica".into(),
            },
            Body::Error {
                in_reply_to: Some(in_reply_to),
                msg_id,
                ..
            } => Body::CasOk {
                in_reply_to,
                msg_id: msg_id.unwrap_or(0),
                view: None,
            },
            other => other,
        }
    }

    /// Every behaviour: those towards peers ([`Behaviour::ALL`]) and
    /// the one towards clients, which the replica-to-replica simulators
    /// have no use for.
    pub const EVERY: [Behaviour; 7] = {
        let mut every = [Behaviour::WrongResults; 7];
        let mut i = 0;
        while i < Behaviour::ALL.len() {
            every[i] = Behaviour::ALL[i];
            i += 1;
        }
        every
    };

    /// Every behaviour towards peers, for simulators that pick one.
    pub const ALL: [Behaviour; 6] = [
        Behaviour::Silent,
        Behaviour::Equivocate,
        Behaviour::BadDigest,
        Behaviour::ForgeVotes,
        Behaviour::StaleView,
        Behaviour::FabricateCertificate,
    ];
}

impl std::fmt::Display for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
