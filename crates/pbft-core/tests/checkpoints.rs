//! Checkpoints, watermarks and garbage collection (§4.3): the log stays
//! bounded, stable checkpoints carry a checked proof, and numbers outside
//! the window are refused.

mod common;

use common::*;
use pbft_core::{
    CertificateError, CheckpointVote, Cluster, ClusterAuth, Config, Digest, KvService, Message,
    Phase, Rejection, ReplicaId, Seq, Signed, SlotPhase, View, Vote,
};

/// A signed 4-replica cluster with checkpoint interval `k` (window `2k`).
/// One request per number, and as many numbers in flight as the window
/// holds, so that the window alone holds the primary back.
fn cluster_k(k: u64) -> Cluster<KvService> {
    let config = Config::new(4)
        .with_checkpoint_interval(k)
        .with_batching(1, u64::MAX);
    Cluster::new(&config, ClusterAuth::Seeded(9), |_| KvService::default()).expect("valid")
}

fn run(c: &mut Cluster<KvService>, from: u64, to: u64) {
    for t in from..=to {
        c.submit(R0, req("c1", t, &format!("set k{}={t}", t % 7)));
        c.stabilize();
    }
}

/// Delivers one message, signed by `from`, to `to` alone and returns what
/// it rejected.
fn deliver_one(
    c: &mut Cluster<KvService>,
    from: ReplicaId,
    to: ReplicaId,
    m: Message,
) -> Vec<Rejection> {
    let signed = c.replica(from).sign(m);
    deliver_only(c, from, to, signed)
}

#[test]
fn ten_thousand_requests_keep_the_log_within_the_window() {
    // Unsigned to keep the test quick; signing does not change the log.
    // One request per number, as many in flight as the window holds.
    let config = Config::new(4).with_batching(1, u64::MAX);
    let mut c = Cluster::new(&config, ClusterAuth::None, |_| KvService::default()).expect("valid");
    let window = 2 * pbft_core::DEFAULT_CHECKPOINT_INTERVAL as usize;
    let mut longest = 0;
    let mut deliveries = 0u64;
    // Bursts of 500 keep the pipeline full: the primary assigns up to the
    // high watermark and holds the rest back.
    for burst in 0..20u64 {
        for t in burst * 500 + 1..=(burst + 1) * 500 {
            c.submit(R0, req("c1", t, &format!("set k{}={t}", t % 100)));
        }
        while c.deliver_next() {
            deliveries += 1;
            if deliveries.is_multiple_of(32) {
                for replica in c.replicas() {
                    longest = longest.max(replica.log_len());
                    assert!(
                        replica.log_len() <= window,
                        "log holds {}",
                        replica.log_len()
                    );
                }
            }
        }
    }
    assert!(longest > window - 32, "the window did fill: {longest}");
    for replica in c.replicas() {
        assert_eq!(replica.last_executed(), Seq(10_000));
        assert_eq!(replica.stable_checkpoint().seq, Seq(9_984), "78 * 128");
        assert_eq!(replica.log_len(), 16, "only the numbers after it");
        assert_eq!(replica.service().len(), 100);
    }
}

#[test]
fn stable_checkpoints_agree_and_their_proofs_check() {
    let mut c = cluster_k(4);
    run(&mut c, 1, 10);
    let checker = c.replica(R3);
    for replica in c.replicas() {
        let stable = replica.stable_checkpoint();
        assert_eq!(stable.seq, Seq(8));
        assert_eq!(stable.digest, c.replica(R0).stable_checkpoint().digest);
        assert!(stable.proof.len() >= 3, "2f + 1 signed checkpoints");
        assert_eq!(
            stable.check(checker.quorums(), checker.authenticator()),
            Ok(())
        );
        assert_eq!(replica.watermarks(), (Seq(8), Seq(16)));
        assert_eq!(replica.log_len(), 2);
    }
}

#[test]
fn a_forged_or_padded_checkpoint_proof_is_rejected() {
    let mut c = cluster_k(4);
    run(&mut c, 1, 4);
    let checker = c.replica(R3);
    let good = c.replica(R0).stable_checkpoint().clone();

    let mut padded = good.clone();
    padded.proof.truncate(2);
    padded.proof.push(padded.proof[0].clone());
    assert!(matches!(
        padded.check(checker.quorums(), checker.authenticator()),
        Err(CertificateError::Duplicate { .. })
    ));

    let mut forged = good.clone();
    forged.proof[0] = c.replica(R1).sign(Message::Checkpoint(CheckpointVote {
        seq: good.seq,
        digest: good.digest,
        replica: R2,
    }));
    forged.proof.truncate(3);
    assert!(matches!(
        forged.check(checker.quorums(), checker.authenticator()),
        Err(CertificateError::BadSignature { signer: R2, .. })
    ));

    let mut short = good;
    short.proof.truncate(2);
    assert_eq!(
        short.check(checker.quorums(), checker.authenticator()),
        Err(CertificateError::TooFew { have: 2, need: 3 })
    );
}

#[test]
fn a_full_window_holds_requests_back_until_a_checkpoint_moves_it() {
    let mut c = cluster_k(4);
    // Eight numbers fit in the window (0, 8]; the rest wait at the primary.
    for t in 1..=30 {
        c.submit(R0, req("c1", t, &format!("set x={t}")));
    }
    let acks_now = acks(c.events(), R0).len();
    assert_eq!(
        acks_now, 8,
        "only the window is assigned before anything runs"
    );
    c.stabilize();
    let events = c.take_events();
    let seqs: Vec<u64> = acks(&events, R0).iter().map(|o| o.seq.0).collect();
    assert_eq!(
        seqs,
        (1..=30).collect::<Vec<_>>(),
        "every request acknowledged, in order"
    );
    for replica in c.replicas() {
        assert_eq!(replica.last_executed(), Seq(30));
        assert_eq!(replica.service().get("x"), Some("30"));
        let (low, high) = replica.watermarks();
        assert!(low <= Seq(30) && high.0 - low.0 == 8);
    }
}

#[test]
fn numbers_outside_the_window_are_refused() {
    let mut c = cluster_k(4);
    let d = Digest([1; 32]);
    let prepare = |seq| {
        Message::Prepare(Vote {
            view: View(0),
            seq: Seq(seq),
            digest: d,
            replica: R2,
        })
    };
    assert_eq!(
        deliver_one(&mut c, R2, R1, prepare(9)),
        [Rejection::OutsideWindow {
            seq: Seq(9),
            low: Seq(0),
            high: Seq(8)
        }]
    );
    assert!(deliver_one(&mut c, R2, R1, prepare(8)).is_empty());
    run(&mut c, 1, 4);
    assert_eq!(
        deliver_one(&mut c, R2, R1, prepare(3)),
        [Rejection::OutsideWindow {
            seq: Seq(3),
            low: Seq(4),
            high: Seq(12)
        }],
        "at or below the stable checkpoint"
    );
}

#[test]
fn checkpoint_messages_are_validated() {
    let mut c = cluster_k(4);
    let vote = |seq, digest, replica| {
        Message::Checkpoint(CheckpointVote {
            seq: Seq(seq),
            digest,
            replica,
        })
    };
    let (a, b) = (Digest([1; 32]), Digest([2; 32]));
    assert_eq!(
        deliver_one(&mut c, R2, R1, vote(3, a, R2)),
        [Rejection::NotACheckpoint { seq: Seq(3) }]
    );
    assert_eq!(
        deliver_one(&mut c, R2, R1, vote(4, a, R3)),
        [Rejection::SenderMismatch { claimed: R3 }]
    );
    assert!(deliver_one(&mut c, R2, R1, vote(4, a, R2)).is_empty());
    assert_eq!(
        deliver_one(&mut c, R2, R1, vote(4, a, R2)),
        [Rejection::DuplicateVote {
            phase: Phase::Checkpoint,
            seq: Seq(4)
        }]
    );
    assert_eq!(
        deliver_one(&mut c, R2, R1, vote(4, b, R2)),
        [Rejection::ConflictingVote {
            phase: Phase::Checkpoint,
            seq: Seq(4),
            first: a,
            second: b
        }]
    );
    let unsigned = Signed {
        message: vote(8, a, R3),
        signature: None,
    };
    c.inject_signed(R3, R1, unsigned);
    c.set_filter(|e| e.to == R1);
    c.stabilize();
    c.clear_filter();
    assert!(matches!(
        rejections(&c.take_events(), R1)[..],
        [(_, Rejection::Unauthentic(_))]
    ));
}

#[test]
fn f_replicas_lying_about_their_state_cannot_stop_or_fake_a_checkpoint() {
    let mut c = cluster_k(4);
    // R3 announces a false state digest for 4 to everyone, before anyone
    // has executed that far; its own honest checkpoint is dropped.
    let lie = Message::Checkpoint(CheckpointVote {
        seq: Seq(4),
        digest: Digest([0xee; 32]),
        replica: R3,
    });
    for to in [R0, R1, R2] {
        c.inject(R3, to, lie.clone());
    }
    c.set_filter(|e| !(e.from == R3 && matches!(e.signed.message, Message::Checkpoint(_))));
    run(&mut c, 1, 4);
    for id in [R0, R1, R2] {
        let stable = c.replica(id).stable_checkpoint();
        assert_eq!(stable.seq, Seq(4), "three honest votes are a quorum");
        assert_ne!(stable.digest, Digest([0xee; 32]));
    }
}

#[test]
fn status_of_a_collected_number_says_checkpointed() {
    let mut c = cluster_k(4);
    run(&mut c, 1, 5);
    let s = c.replica(R1).status(Seq(2));
    assert_eq!((s.phase, s.executed), (SlotPhase::Checkpointed, true));
    assert_eq!(c.replica(R1).status(Seq(5)).phase, SlotPhase::Committed);
    assert_eq!(c.replica(R1).status(Seq(6)).phase, SlotPhase::None);
}

#[test]
fn configurations_with_a_bad_window_are_refused() {
    for (k, l) in [(0, 0), (4, 2), (4, 6)] {
        let config = Config {
            checkpoint_interval: k,
            window: l,
            ..Config::new(4)
        };
        assert!(
            Cluster::new(&config, ClusterAuth::None, |_| KvService::default()).is_err(),
            "K = {k}, L = {l}"
        );
    }
}

#[test]
fn restarted_replicas_share_the_initial_checkpoint() {
    let a = cluster(4);
    let digests: Vec<Digest> = a
        .replicas()
        .iter()
        .map(|r| r.stable_checkpoint().digest)
        .collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]));
}
