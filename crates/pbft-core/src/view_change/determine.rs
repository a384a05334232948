//! What a set of view changes `V` determines (§4.4): the latest stable
//! checkpoint in it, and `O`, the pre-prepares of the new view.

use std::sync::Arc;

use crate::checkpoint::StableCheckpoint;
use crate::digest::Digest;
use crate::message::{PrePrepare, ViewChange};
use crate::request::Batch;
use crate::types::{Seq, View};

/// What `V` determines: the latest stable checkpoint in it, and `O`.
pub(super) struct Determined {
    pub(super) checkpoint: StableCheckpoint,
    pub(super) pre_prepares: Vec<PrePrepare>,
}

/// Computes `O` from the view changes `V` (§4.4): one pre-prepare for
/// `view` at every number from the latest checkpoint to the highest
/// prepared number, with the batch of the certificate from the latest
/// view (named by its digest alone), or the null request when no
/// certificate covers the number.
pub(super) fn determine(view: View, vcs: &[&ViewChange]) -> Determined {
    let checkpoint = vcs
        .iter()
        .map(|vc| &vc.checkpoint)
        .max_by_key(|cp| cp.seq)
        .cloned()
        .unwrap_or(StableCheckpoint {
            seq: Seq(0),
            digest: Digest::default(),
            proof: Vec::new(),
        });
    let min_s = checkpoint.seq;
    // For each number above min_s, the certificate from the latest view.
    let mut chosen: std::collections::BTreeMap<Seq, &PrePrepare> = Default::default();
    for vc in vcs {
        for cert in &vc.prepared {
            let Some(pp) = cert.pre_prepare() else {
                continue;
            };
            if pp.seq <= min_s {
                continue;
            }
            let replace = match chosen.get(&pp.seq) {
                None => true,
                Some(current) => (pp.view, pp.digest) > (current.view, current.digest),
            };
            if replace {
                chosen.insert(pp.seq, pp);
            }
        }
    }
    let max_s = chosen.keys().next_back().copied().unwrap_or(min_s);
    // min_s + 1 ..= max_s, written so that it cannot overflow.
    let pre_prepares = (min_s.0..max_s.0)
        .map(|n| Seq(n + 1))
        .map(|seq| match chosen.get(&seq) {
            // Named by digest: the new primary and each backup find the
            // batch in their own logs, or are sent it.
            Some(pp) => PrePrepare {
                view,
                seq,
                digest: pp.digest,
                batch: None,
            },
            None => PrePrepare::new(view, seq, Arc::new(Batch::new(Vec::new()))),
        })
        .collect();
    Determined {
        checkpoint,
        pre_prepares,
    }
}
