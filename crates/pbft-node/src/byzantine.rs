//! Byzantine behaviours, a testing aid only (`--byzantine`), off by default.
//!
//! They are applied at the node's edge, to the messages the honest core
//! wants sent, so the core's logic is never bent: the node re-signs what
//! it alters with its own key, exactly as a faulty replica holding only
//! its own key could.

use std::sync::Arc;

use pbft_core::{Batch, Digest, Message, PrePrepare, Replica, ReplicaId, Service, Signed};

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
}

impl Behaviour {
    /// Parses a behaviour's name.
    pub fn parse(name: &str) -> Option<Behaviour> {
        Some(match name {
            "silent" => Behaviour::Silent,
            "equivocate" => Behaviour::Equivocate,
            "bad-digest" => Behaviour::BadDigest,
            "forge-votes" => Behaviour::ForgeVotes,
            _ => return None,
        })
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
            _ => targets.into_iter().map(|to| (to, signed.clone())).collect(),
        }
    }
}
