//! The normal case (§4.2) on the in-process cluster: one request goes
//! through pre-prepare, prepare and commit, and every replica executes it.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::*;
use pbft_core::{
    Cluster, ClusterAuth, Config, ExecResult, KvService, ReplicaId, Request, Seq, SlotPhase, View,
};

#[test]
fn a_request_at_the_primary_commits_everywhere_with_the_seed_counts() {
    let mut c = cluster(4);
    c.submit(R0, req("c1", 1, "set x=42"));
    let ack = &acks(c.events(), R0)[0];
    assert_eq!((ack.view, ack.seq), (View(0), Seq(1)));

    c.stabilize();
    for replica in c.replicas() {
        let s = replica.status(Seq(1));
        assert_eq!(s.phase, SlotPhase::Committed, "at {}", replica.id());
        assert_eq!(s.view, Some(View(0)));
        // The primary sends no prepare: three backups prepare.
        assert_eq!(s.prepares_received, 3);
        assert_eq!(s.commits_received, 4);
        assert!(s.executed);
        assert_eq!(s.results, Some(vec![ExecResult::Ok]));
        assert_eq!(replica.service().get("x"), Some("42"));
    }
}

#[test]
fn every_cluster_size_from_one_to_ten_commits() {
    for n in 1..=10 {
        let mut c = cluster(n);
        c.submit(R0, req("c1", 1, "set k=v"));
        c.submit(R0, req("c1", 2, "get k"));
        c.stabilize();
        let quorum = c.replica(R0).quorums().quorum();
        for replica in c.replicas() {
            assert_eq!(replica.last_executed(), Seq(2), "n={n} at {}", replica.id());
            let s = replica.status(Seq(2));
            assert_eq!(s.prepares_received, n - 1, "n={n}: every backup prepares");
            assert_eq!(s.commits_received, n, "n={n}");
            assert!(s.commits_received >= quorum);
            assert_eq!(s.results, Some(vec![ExecResult::Value("v".into())]));
        }
    }
}

#[test]
fn a_request_at_a_backup_is_forwarded_and_acknowledged_with_its_number() {
    let mut c = cluster(4);
    c.submit(R2, req("c1", 1, "set a=1"));
    assert!(
        acks(c.events(), R2).is_empty(),
        "no number before a pre-prepare"
    );
    c.stabilize();
    let events = c.take_events();
    let ack = acks(&events, R2);
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].seq, Seq(1));
    assert!(
        acks(&events, R0).is_empty(),
        "the primary did not hear from the client"
    );
    assert_eq!(c.replica(R2).status(Seq(1)).phase, SlotPhase::Committed);
}

#[test]
fn execution_follows_sequence_order_across_many_requests() {
    let mut c = cluster(4);
    for i in 1..=20 {
        c.submit(
            ReplicaId(i % 4),
            req("c", u64::from(i), &format!("set k={i}")),
        );
        c.stabilize();
    }
    let events = c.take_events();
    for r in 0..4 {
        let seqs: Vec<u64> = executions(&events, ReplicaId(r))
            .iter()
            .map(|(s, _)| s.0)
            .collect();
        assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
        assert_eq!(c.replica(ReplicaId(r)).service().get("k"), Some("20"));
    }
}

#[test]
fn a_committed_number_waits_for_the_gap_before_it() {
    // Batches of one, so that the second request takes a number of its
    // own while the first is in flight.
    let config = Config::new(4).with_batching(1, 4);
    let mut c =
        Cluster::new(&config, ClusterAuth::Seeded(42), |_| KvService::default()).expect("valid");
    // The network holds back everything about number 1.
    let held = Rc::new(RefCell::new(Vec::new()));
    let holder = Rc::clone(&held);
    c.set_filter(move |e| {
        let hold = message_seq(&e.signed.message) == Some(Seq(1));
        if hold {
            holder.borrow_mut().push(e.clone());
        }
        !hold
    });
    c.submit(R0, req("c1", 1, "set x=1"));
    c.submit(R0, req("c1", 2, "set x=2"));
    c.stabilize();
    for replica in c.replicas() {
        assert_eq!(replica.status(Seq(2)).phase, SlotPhase::Committed);
        assert!(!replica.status(Seq(2)).executed, "2 must wait for 1");
        assert_eq!(replica.last_executed(), Seq(0));
    }

    // The held messages arrive late; both numbers execute, 1 before 2.
    c.clear_filter();
    for e in held.take() {
        c.inject_signed(e.from, e.to, e.signed);
    }
    c.stabilize();
    let events = c.take_events();
    for r in 0..4 {
        let seqs: Vec<Seq> = executions(&events, ReplicaId(r))
            .iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(seqs, [Seq(1), Seq(2)]);
        assert_eq!(c.replica(ReplicaId(r)).service().get("x"), Some("2"));
    }
}

fn message_seq(message: &pbft_core::Message) -> Option<Seq> {
    match message {
        pbft_core::Message::PrePrepare(pp) => Some(pp.seq),
        pbft_core::Message::Prepare(v) | pbft_core::Message::Commit(v) => Some(v.seq),
        pbft_core::Message::Checkpoint(c) => Some(c.seq),
        _ => None,
    }
}

#[test]
fn status_of_an_unknown_number_says_none() {
    let c = cluster(4);
    let s = c.replica(R1).status(Seq(7));
    assert_eq!(s.phase, SlotPhase::None);
    assert_eq!(
        (s.prepares_received, s.commits_received, s.executed),
        (0, 0, false)
    );
    assert_eq!(s.view, None);
}

#[test]
fn untimestamped_identical_requests_are_distinct() {
    let mut c = cluster(4);
    let r = Request::new("c1", None, "set x=1");
    c.submit(R0, r.clone());
    c.submit(R0, r);
    c.stabilize();
    let seqs: Vec<Seq> = acks(c.events(), R0).iter().map(|a| a.seq).collect();
    assert_eq!(seqs, [Seq(1), Seq(2)]);
    assert_eq!(c.replica(R3).last_executed(), Seq(2));
}
