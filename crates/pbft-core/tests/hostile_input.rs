//! Byzantine input is data: random messages with extreme and forged values,
//! from members and strangers, in any order, never make a replica panic,
//! and honest replicas still agree.

mod common;

use std::sync::Arc;

use common::*;
use pbft_core::{
    Batch, CheckpointVote, Chunk, ChunkRange, Cluster, ClusterAuth, Config, Digest, FetchState,
    KvService, Manifest, Message, Output, PrePrepare, ReplicaId, Request, Seq, Signed, SlotPhase,
    StableCheckpoint, StateTransfer, StatusReport, View, Vote,
};

fn extreme(rng: &mut fastrand::Rng) -> u64 {
    match rng.u8(0..6) {
        0 => 0,
        1 => u64::MAX,
        2 => u64::MAX - 1,
        3 => rng.u64(0..4),
        4 => rng.u64(0..300),
        _ => rng.u64(..),
    }
}

fn random_message(rng: &mut fastrand::Rng, n: u32) -> Message {
    let view = View(extreme(rng));
    let seq = Seq(extreme(rng));
    let digest = if rng.bool() {
        Digest([rng.u8(..); 32])
    } else {
        Batch::single(Request::new("c1", Some(1), "set x=1")).digest()
    };
    let replica = ReplicaId(rng.u32(0..n + 3));
    let vote = Vote {
        view,
        seq,
        digest,
        replica,
    };
    match rng.u8(0..9) {
        0 => Message::PrePrepare(PrePrepare {
            view,
            seq,
            digest,
            // Sometimes named by digest only, as in a view change.
            batch: (!rng.bool()).then(|| {
                Arc::new(Batch::single(Request::new(
                    "c1",
                    Some(extreme(rng)),
                    "set x=1",
                )))
            }),
        }),
        1 => Message::Prepare(vote),
        2 => Message::Commit(vote),
        3 => Message::Checkpoint(CheckpointVote {
            seq,
            digest,
            replica,
        }),
        4 => {
            // Status reports with extreme, unsorted or too many entries.
            let report = rng.bool().then(|| StatusReport {
                view,
                through: Seq(extreme(rng)),
                pending: (0..rng.usize(0..40))
                    .map(|_| (Seq(extreme(rng)), SlotPhase::None))
                    .collect(),
            });
            Message::FetchState(FetchState {
                report,
                ..FetchState::new(seq, replica)
            })
        }
        5 => Message::FetchState(FetchState {
            chunks: Some(ChunkRange {
                checkpoint: Seq(extreme(rng)),
                digest,
                first: extreme(rng),
                count: extreme(rng),
            }),
            ..FetchState::new(seq, replica)
        }),
        6 | 7 => {
            let chunks: Vec<Digest> = (0..rng.usize(0..4))
                .map(|_| Digest([rng.u8(..); 32]))
                .collect();
            let state = StateTransfer {
                checkpoint: StableCheckpoint {
                    seq,
                    digest,
                    proof: Vec::new(),
                },
                service: Arc::default(),
                clients: Arc::default(),
                committed: Vec::new(),
                replica,
                manifest: (rng.bool()).then(|| Manifest {
                    length: extreme(rng),
                    chunks: Arc::new(chunks),
                }),
                chunk: (rng.bool()).then(|| Chunk {
                    index: extreme(rng),
                    bytes: Arc::new(vec![rng.u8(..); rng.usize(0..300)]),
                }),
            };
            Message::State(state)
        }
        _ => Message::Forward(Request::new("c9", Some(extreme(rng)), "get x")),
    }
}

#[test]
fn random_hostile_messages_never_panic_and_honest_replicas_agree() {
    for seed in 0..150u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let n = [1usize, 2, 3, 4, 5, 7][rng.usize(0..6)];
        let k = [1u64, 2, 4][rng.usize(0..3)];
        let config = Config::new(n).with_checkpoint_interval(k);
        let auth = if rng.bool() {
            ClusterAuth::None
        } else {
            ClusterAuth::Seeded(seed)
        };
        let mut c = Cluster::new(&config, auth, |_| KvService::default()).expect("valid");
        let byzantine = (n >= 4).then(|| ReplicaId(n as u32 - 1));
        let mut events = Vec::new();
        for step in 0..60u64 {
            if step % 6 == 0 {
                c.submit(
                    ReplicaId(rng.u32(0..n as u32)),
                    req("c1", step + 1, "set x=1"),
                );
            }
            // The hostile sender: the one Byzantine member (when n >= 4
            // leaves room for a fault) signing as itself, any member's name
            // with no signature, or a stranger.
            let to = ReplicaId(rng.u32(0..n as u32));
            let message = random_message(&mut rng, n as u32);
            match (rng.u8(0..3), byzantine) {
                (0, Some(b)) => c.inject(b, to, message),
                (1, _) => {
                    let name = ReplicaId(rng.u32(0..n as u32));
                    c.inject_signed(
                        name,
                        to,
                        Signed {
                            message,
                            signature: None,
                        },
                    );
                }
                _ => c.inject(ReplicaId(n as u32 + rng.u32(0..2)), to, message),
            }
            for _ in 0..rng.usize(0..40) {
                c.deliver_next();
            }
            if step % 10 == 0 {
                c.tick_all();
            }
            events.extend(c.take_events());
        }
        c.stabilize();
        events.extend(c.take_events());
        // Unsigned clusters cannot tell a forged name from a real one, so
        // agreement is promised, and checked, only when messages are signed.
        if matches!(auth, ClusterAuth::Seeded(_)) {
            let mut chosen = std::collections::BTreeMap::new();
            for e in events.iter().filter(|e| Some(e.replica) != byzantine) {
                if let Output::Executed(x) = &e.output {
                    let first = *chosen.entry(x.seq).or_insert(x.digest);
                    assert_eq!(first, x.digest, "seed {seed}: disagreement at {}", x.seq);
                }
            }
        }
    }
}
