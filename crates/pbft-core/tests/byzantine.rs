//! Faulty primaries, faulty backups and a faulty network. Each test plays
//! one fault and asserts on outcomes: honest replicas agree on every
//! executed (number, digest), the requests execute, and the faulty
//! replica's messages are refused for the reason that matches what it did.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use pbft_core::{
    Batch, Cluster, Digest, Event, KvService, Message, NetworkFaults, Output, PrePrepare,
    Rejection, ReplicaId, Request, Seq, View,
};

const TIMEOUT: u64 = pbft_core::DEFAULT_VIEW_CHANGE_TIMEOUT;

fn tick(c: &mut Cluster<KvService>, n: u64) {
    for _ in 0..n {
        c.tick_all();
        c.stabilize();
    }
}

/// Asserts that no two of `honest` executed different batches at one
/// number, and returns how many replicas executed each number.
fn assert_agreement(events: &[Event], honest: &[ReplicaId]) -> BTreeMap<Seq, usize> {
    let mut chosen: BTreeMap<Seq, Digest> = BTreeMap::new();
    let mut count = BTreeMap::new();
    for e in events.iter().filter(|e| honest.contains(&e.replica)) {
        if let Output::Executed(x) = &e.output {
            let first = *chosen.entry(x.seq).or_insert(x.digest);
            assert_eq!(
                first, x.digest,
                "{} executed another batch at {}",
                e.replica, x.seq
            );
            *count.entry(x.seq).or_insert(0) += 1;
        }
    }
    count
}

fn rejected_by(events: &[Event], at: ReplicaId, from: ReplicaId) -> Vec<Rejection> {
    rejections(events, at)
        .into_iter()
        .filter(|(f, _)| *f == from)
        .map(|(_, r)| r)
        .collect()
}

fn pre_prepare(seq: u64, request: &Request) -> Message {
    Message::PrePrepare(PrePrepare::new(
        View(0),
        Seq(seq),
        Arc::new(Batch::single(request.clone())),
    ))
}

#[test]
fn a_primary_that_skips_a_number_is_replaced_and_the_gap_filled() {
    let mut c = cluster(4);
    // R0 assigns number 2 and never number 1; it says nothing else.
    c.set_filter(|e| {
        e.from != R0 || matches!(&e.signed.message, Message::PrePrepare(pp) if pp.seq == Seq(2))
    });
    let request = req("c1", 1, "set x=1");
    for r in [R1, R2, R3] {
        c.inject(R0, r, pre_prepare(2, &request));
        c.submit(r, request.clone());
    }
    c.stabilize();
    for r in [R1, R2, R3] {
        assert_eq!(
            c.replica(r).last_executed(),
            Seq(0),
            "2 cannot run before 1"
        );
    }
    c.set_filter(|e| e.from != R0);
    tick(&mut c, 2 * TIMEOUT);
    let events = c.take_events();
    let executed = assert_agreement(&events, &[R1, R2, R3]);
    for r in [R1, R2, R3] {
        let replica = c.replica(r);
        assert_eq!(replica.view(), View(1));
        assert_eq!(replica.service().get("x"), Some("1"));
        // Number 1 became the null request; the request kept number 2.
        assert_eq!(replica.status(Seq(1)).view, Some(View(1)));
        assert_eq!(replica.last_executed(), Seq(2));
    }
    assert_eq!(executed.get(&Seq(1)), Some(&3));
}

#[test]
fn a_primary_that_reuses_a_number_or_exceeds_the_window_is_refused() {
    let mut c = cluster(4);
    c.set_filter(|e| e.from != R0 || matches!(e.signed.message, Message::PrePrepare(_)));
    let (a, b) = (req("c1", 1, "set x=a"), req("c2", 1, "set x=b"));
    c.inject(R0, R1, pre_prepare(1, &a));
    c.inject(R0, R1, pre_prepare(1, &b));
    c.inject(R0, R1, pre_prepare(257, &a));
    c.stabilize();
    let events = c.take_events();
    let got = rejected_by(&events, R1, R0);
    assert!(
        matches!(
            got[..],
            [
                Rejection::ConflictingPrePrepare { seq: Seq(1), .. },
                Rejection::OutsideWindow {
                    seq: Seq(257),
                    low: Seq(0),
                    high: Seq(256)
                }
            ]
        ),
        "{got:?}"
    );
}

#[test]
fn a_backup_voting_twice_or_for_another_replica_counts_for_nothing_extra() {
    let mut c = cluster(4);
    // R3 is faulty. Before any honest vote reaches R1, R3 sends a prepare
    // for another digest, then one for the real digest, then a commit in
    // R2's name. Everything else R3 would send is dropped.
    let held = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let hold = std::rc::Rc::clone(&held);
    c.set_filter(move |e| {
        if e.to == R1 && e.from != R3 {
            hold.borrow_mut().push(e.clone());
            return false;
        }
        e.from != R3
    });
    c.submit(R0, req("c1", 1, "set x=1"));
    c.stabilize();
    let d = c.replica(R0).status(Seq(1)).digest.expect("pre-prepared");
    let other = Digest([7; 32]);
    let vote = |digest, replica| pbft_core::Vote {
        view: View(0),
        seq: Seq(1),
        digest,
        replica,
    };
    c.take_events();
    c.inject(R3, R1, Message::Prepare(vote(other, R3)));
    c.inject(R3, R1, Message::Prepare(vote(d, R3)));
    c.inject(R3, R1, Message::Commit(vote(d, R2)));
    c.set_filter(|e| e.to == R1 && e.from == R3);
    c.stabilize();
    let events = c.take_events();
    assert_eq!(
        rejected_by(&events, R1, R3),
        [
            Rejection::ConflictingVote {
                phase: pbft_core::Phase::Prepare,
                seq: Seq(1),
                first: other,
                second: d
            },
            Rejection::SenderMismatch { claimed: R2 },
        ]
    );
    let s = c.replica(R1).status(Seq(1));
    // R3's first prepare stands, for a digest that can never match.
    assert_eq!((s.prepares_received, s.commits_received), (1, 0));
    // The honest traffic arrives; R3's conflicting prepare does not help,
    // yet R0, R1 and R2 commit without R3.
    c.set_filter(|e| e.from != R3);
    for e in held.take() {
        c.inject_signed(e.from, e.to, e.signed);
    }
    c.submit(R0, req("c1", 2, "set x=2"));
    c.stabilize();
    for r in [R0, R1, R2] {
        assert_eq!(c.replica(r).last_executed(), Seq(2), "{r}");
    }
    let s = c.replica(R1).status(Seq(1));
    assert_eq!(
        s.prepares_received, 2,
        "its own and R2's; R3's counts for nothing"
    );
}

#[test]
fn a_crashed_backup_does_not_stop_the_others() {
    let mut c = cluster(4);
    c.set_filter(|e| e.from != R3 && e.to != R3);
    for t in 1..=5 {
        c.submit(R0, req("c1", t, &format!("set x={t}")));
        c.stabilize();
    }
    let events = c.take_events();
    let executed = assert_agreement(&events, &[R0, R1, R2]);
    assert_eq!(executed.len(), 5);
    assert!(executed.values().all(|n| *n == 3));
    assert_eq!(c.replica(R3).last_executed(), Seq(0));
}

#[test]
fn lost_duplicated_and_reordered_messages_delay_but_never_split() {
    for seed in 1..=4u64 {
        let mut c = cluster(4);
        c.set_faults(Some(NetworkFaults {
            drop_per_mille: 150,
            duplicate_per_mille: 150,
            reorder: true,
            seed,
        }));
        let requests: Vec<Request> = (1..=12)
            // Twelve clients, one request each: a client's timestamps order
            // its own requests, so concurrent ones come from distinct clients.
            .map(|t| req(&format!("c{t}"), 1, &format!("set k{t}={t}")))
            .collect();
        let mut events = Vec::new();
        for (i, request) in requests.iter().enumerate() {
            // The client hands each request to one replica, round robin.
            c.submit(ReplicaId(i as u32 % 4), request.clone());
            tick(&mut c, 2);
            events.extend(c.take_events());
        }
        tick(&mut c, 20);
        events.extend(c.take_events());
        // Delivery resumes: every request executes on at least a quorum.
        // A client whose request has not executed sends it to every
        // replica (§4.1), as a PBFT client does: the one replica it first
        // asked may have moved on to a view the others never join.
        c.set_faults(None);
        let holders = |c: &Cluster<KvService>, t: usize| {
            let key = format!("k{t}");
            c.replicas()
                .iter()
                .filter(|r| r.service().get(&key).is_some())
                .count()
        };
        for _ in 0..40 {
            tick(&mut c, 10);
            events.extend(c.take_events());
            for (i, request) in requests.iter().enumerate() {
                if holders(&c, i + 1) < 3 {
                    for r in [R0, R1, R2, R3] {
                        c.submit(r, request.clone());
                    }
                }
            }
            if (1..=12).all(|t| holders(&c, t) >= 3) {
                break;
            }
        }
        assert_agreement(&events, &[R0, R1, R2, R3]);
        for t in 1..=12 {
            let holders = holders(&c, t);
            assert!(
                holders >= 3,
                "seed {seed}: request {t} executed on {holders} replicas"
            );
        }
    }
}
