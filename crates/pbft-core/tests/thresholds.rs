//! The certificate sizes are exact: one vote short never prepares or
//! commits, and the last vote needed does (§4.2, n = 4, f = 1).

mod common;

use common::*;
use pbft_core::{Message, ReplicaId, Seq, SlotPhase, Vote};

/// A 4-replica cluster where the primary has pre-prepared request 1 and
/// heard nothing back; returns the cluster and the batch digest.
fn isolated_primary() -> (pbft_core::Cluster<pbft_core::KvService>, pbft_core::Digest) {
    let mut c = cluster(4);
    c.submit(R0, req("c1", 1, "set x=1"));
    c.set_filter(|_| false);
    c.stabilize();
    c.clear_filter();
    let digest = c.replica(R0).status(Seq(1)).digest.expect("pre-prepared");
    (c, digest)
}

fn send(c: &mut pbft_core::Cluster<pbft_core::KvService>, m: Message, from: ReplicaId) {
    c.inject(from, R0, m);
    // Deliver only what reaches the primary; drop its own multicasts.
    c.set_filter(|e| e.to == R0);
    c.stabilize();
    c.clear_filter();
}

fn vote(replica: ReplicaId, digest: pbft_core::Digest) -> Vote {
    Vote {
        view: pbft_core::View(0),
        seq: Seq(1),
        digest,
        replica,
    }
}

#[test]
fn prepared_needs_exactly_2f_prepares_and_committed_exactly_2f_plus_1_commits() {
    let (mut c, d) = isolated_primary();
    let phase = |c: &pbft_core::Cluster<_>| c.replica(R0).status(Seq(1)).phase;
    assert_eq!(phase(&c), SlotPhase::PrePrepare);

    send(&mut c, Message::Prepare(vote(R1, d)), R1);
    assert_eq!(phase(&c), SlotPhase::PrePrepare, "2f - 1 prepares");
    send(&mut c, Message::Prepare(vote(R2, d)), R2);
    assert_eq!(phase(&c), SlotPhase::Prepared, "2f prepares");
    assert_eq!(
        c.replica(R0).status(Seq(1)).commits_received,
        1,
        "own commit"
    );

    send(&mut c, Message::Commit(vote(R1, d)), R1);
    assert_eq!(phase(&c), SlotPhase::Prepared, "2f commits, own included");
    assert!(!c.replica(R0).status(Seq(1)).executed);
    send(&mut c, Message::Commit(vote(R3, d)), R3);
    let s = c.replica(R0).status(Seq(1));
    assert_eq!(s.phase, SlotPhase::Committed, "2f + 1 commits");
    assert!(s.executed);
    assert_eq!((s.prepares_received, s.commits_received), (2, 3));
}

#[test]
fn commits_before_prepared_do_not_commit() {
    let (mut c, d) = isolated_primary();
    for r in [R1, R2, R3] {
        send(&mut c, Message::Commit(vote(r, d)), r);
    }
    let s = c.replica(R0).status(Seq(1));
    assert_eq!(
        s.phase,
        SlotPhase::PrePrepare,
        "commits alone are not enough"
    );
    assert_eq!(s.commits_received, 3, "but they are kept");
    send(&mut c, Message::Prepare(vote(R1, d)), R1);
    send(&mut c, Message::Prepare(vote(R2, d)), R2);
    let s = c.replica(R0).status(Seq(1));
    assert_eq!(
        s.phase,
        SlotPhase::Committed,
        "prepared, with 4 commits held"
    );
    assert!(s.executed);
}

#[test]
fn votes_before_the_pre_prepare_count_only_for_its_digest() {
    let mut c = cluster(4);
    c.submit(R0, req("c1", 1, "set x=1"));
    // R1 hears nothing from the network yet.
    c.set_filter(|e| e.to != R1);
    c.stabilize();
    let d = c.replica(R0).status(Seq(1)).digest.expect("pre-prepared");
    let other = pbft_core::Digest([5; 32]);
    let to_r1 = |c: &mut pbft_core::Cluster<pbft_core::KvService>, m: Message, from| {
        c.inject(from, R1, m);
        c.set_filter(|e| e.to == R1 && !matches!(e.signed.message, Message::PrePrepare(_)));
        c.stabilize();
    };
    // Early votes: R2's and R3's prepares, and R2's commit for another digest.
    to_r1(&mut c, Message::Prepare(vote(R2, d)), R2);
    to_r1(&mut c, Message::Prepare(vote(R3, d)), R3);
    to_r1(&mut c, Message::Commit(vote(R2, other)), R2);
    let s = c.replica(R1).status(Seq(1));
    assert_eq!(
        (s.phase, s.prepares_received),
        (SlotPhase::None, 2),
        "kept, not yet matched"
    );
    // The pre-prepare arrives: the two matching prepares count at once.
    let batch = std::sync::Arc::new(pbft_core::Batch::single(req("c1", 1, "set x=1")));
    let pp = pbft_core::PrePrepare::new(pbft_core::View(0), Seq(1), batch);
    assert_eq!(pp.digest, d);
    c.inject(R0, R1, Message::PrePrepare(pp));
    c.set_filter(|e| e.to == R1 && e.from == R0);
    c.stabilize();
    let s = c.replica(R1).status(Seq(1));
    assert_eq!(
        s.phase,
        SlotPhase::Prepared,
        "2f matching prepares were waiting"
    );
    assert_eq!(s.prepares_received, 3);
    assert_eq!(
        s.commits_received, 1,
        "its own; R2's commit was for another digest"
    );
}
