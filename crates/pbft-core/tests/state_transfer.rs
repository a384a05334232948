//! State transfer: a replica that fell behind, or restarted with empty
//! memory, catches up from its peers without executing anything out of
//! order, and refuses state that does not match what a quorum signed.

mod common;

use common::*;
use pbft_core::{
    Cluster, ClusterAuth, Config, KvService, Message, Output, Rejection, ReplicaId, Seq, Signed,
    StateError, StateTransfer,
};

fn cluster_k4() -> Cluster<KvService> {
    let config = Config::new(4).with_checkpoint_interval(4);
    Cluster::new(&config, ClusterAuth::Seeded(11), |_| KvService::default()).expect("valid")
}

/// Submits requests `from..=to` to the primary, one at a time, ticking
/// between them so that timers and state requests run.
fn run(c: &mut Cluster<KvService>, from: u64, to: u64) {
    for t in from..=to {
        c.submit(R0, req("c1", t, &format!("set k{}={t}", t % 3)));
        c.stabilize();
        c.tick_all();
        c.stabilize();
    }
}

/// What replica `r` did, in order: restored checkpoints and executed
/// numbers.
fn progress(events: &[pbft_core::Event], r: ReplicaId) -> Vec<(&'static str, u64)> {
    events
        .iter()
        .filter(|e| e.replica == r)
        .filter_map(|e| match &e.output {
            Output::Restored { seq, .. } => Some(("restored", seq.0)),
            Output::Executed(x) => Some(("executed", x.seq.0)),
            _ => None,
        })
        .collect()
}

fn assert_in_step(c: &Cluster<KvService>, r: ReplicaId) {
    let (a, b) = (c.replica(R0), c.replica(r));
    assert_eq!(b.last_executed(), a.last_executed(), "{r} executed as far");
    assert_eq!(b.service(), a.service(), "{r} has the same state");
    assert_eq!(b.stable_checkpoint().digest, a.stable_checkpoint().digest);
}

#[test]
fn a_cut_off_replica_catches_up_from_a_checkpoint_beyond_its_window() {
    let mut c = cluster_k4();
    c.set_filter(|e| e.to != R3);
    run(&mut c, 1, 12);
    assert_eq!(c.replica(R3).last_executed(), Seq(0));
    assert_eq!(
        c.replica(R0).stable_checkpoint().seq,
        Seq(12),
        "the others moved on"
    );
    c.clear_filter();
    c.take_events();
    run(&mut c, 13, 20);
    let events = c.take_events();
    assert_in_step(&c, R3);
    let steps = progress(&events, R3);
    assert_eq!(steps.first().map(|s| s.0), Some("restored"), "{steps:?}");
    // After the restore, execution goes on strictly in order.
    let mut last = 0;
    for (what, seq) in steps {
        if what == "executed" {
            assert_eq!(seq, last + 1, "in order");
        }
        last = seq;
    }
}

#[test]
fn a_replica_that_missed_commits_in_its_window_catches_up() {
    let mut c = cluster_k4();
    // R3 never hears a commit for number 3, so it cannot execute 3 or
    // anything after it by itself.
    c.set_filter(|e| {
        !(e.to == R3 && matches!(&e.signed.message, Message::Commit(v) if v.seq == Seq(3)))
    });
    run(&mut c, 1, 10);
    let events = c.take_events();
    let steps = progress(&events, R3);
    assert_eq!(&steps[..2], [("executed", 1), ("executed", 2)]);
    assert_eq!(
        steps[2].0, "restored",
        "number 3 came with the state: {steps:?}"
    );
    assert_in_step(&c, R3);
}

#[test]
fn a_replica_restarted_with_empty_memory_catches_up() {
    let mut c = cluster_k4();
    run(&mut c, 1, 10);
    c.restart(R2, KvService::default()).expect("member");
    assert_eq!(c.replica(R2).last_executed(), Seq(0));
    run(&mut c, 11, 20);
    assert_in_step(&c, R2);
    assert_eq!(c.replica(R2).service().get("k1"), Some("19"));
}

/// A genuine state message from R1 to R3 after R3 was cut off, and the
/// cluster with R3 not yet restored.
fn genuine_state() -> (Cluster<KvService>, StateTransfer) {
    let mut c = cluster_k4();
    c.set_filter(|e| e.to != R3);
    run(&mut c, 1, 8);
    let captured = std::rc::Rc::new(std::cell::RefCell::new(None));
    let keep = std::rc::Rc::clone(&captured);
    c.set_filter(move |e| {
        if let Message::State(st) = &e.signed.message {
            keep.borrow_mut().get_or_insert(st.clone());
            return false;
        }
        true
    });
    run(&mut c, 9, 16);
    let state = captured.take().expect("a peer answered with state");
    c.clear_filter();
    c.take_events();
    (c, state)
}

fn offer(c: &mut Cluster<KvService>, state: StateTransfer) -> Vec<Rejection> {
    let from = state.replica;
    let signed: Signed = c.replica(from).sign(Message::State(state));
    c.inject_signed(from, R3, signed);
    c.set_filter(|e| e.to == R3 && matches!(e.signed.message, Message::State(_)));
    c.stabilize();
    c.clear_filter();
    rejections(&c.take_events(), R3)
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

#[test]
fn state_that_does_not_match_its_proof_is_refused() {
    let (mut c, good) = genuine_state();
    assert!(good.checkpoint.seq > Seq(0));

    let mut altered = good.clone();
    let mut service = (*altered.service).clone();
    service.push(0);
    altered.service = std::sync::Arc::new(service);
    assert_eq!(
        offer(&mut c, altered),
        [Rejection::InvalidState(StateError::DigestMismatch)]
    );

    let mut unproven = good.clone();
    unproven.checkpoint.proof.truncate(2);
    assert!(matches!(
        offer(&mut c, unproven)[..],
        [Rejection::InvalidState(StateError::Proof(_))]
    ));

    assert!(offer(&mut c, good.clone()).is_empty());
    assert_eq!(c.replica(R3).last_executed(), good.checkpoint.seq);
    assert!(matches!(
        offer(&mut c, good)[..],
        [Rejection::InvalidState(StateError::Stale { .. })]
    ));
}

#[test]
fn a_replica_that_missed_one_number_fetches_its_committed_certificate() {
    // No checkpoint comes to the rescue here: the interval is the default.
    let mut c = cluster(4);
    // R3 misses every prepare and commit for number 1, so it can never
    // commit it, while number 2 commits at R3 as usual.
    c.set_filter(|e| {
        let vote = match &e.signed.message {
            Message::Prepare(vote) | Message::Commit(vote) => Some(vote),
            _ => None,
        };
        !(e.to == R3 && vote.is_some_and(|v| v.seq == Seq(1)))
    });
    c.submit(R0, req("c1", 1, "set x=1"));
    c.stabilize();
    c.clear_filter();
    c.take_events();
    // Once number 2 commits at R3, the gap at 1 shows: it asks its peers
    // there and then, checks the certificates they send, and executes
    // both numbers in order, with no tick.
    c.submit(R0, req("c2", 1, "set y=2"));
    c.stabilize();
    let events = c.take_events();
    assert_eq!(
        progress(&events, R3),
        vec![("executed", 1), ("executed", 2)]
    );
    assert_eq!(c.replica(R3).service().get("x"), Some("1"));
    assert_eq!(c.replica(R3).service().get("y"), Some("2"));
    assert_eq!(c.replica(R3).view(), pbft_core::View(0), "no view change");
}

#[test]
fn a_number_committed_before_a_view_change_can_still_be_fetched_after_it() {
    const TIMEOUT: u64 = pbft_core::DEFAULT_VIEW_CHANGE_TIMEOUT;
    let mut c = cluster(4);
    let missed_by_r3 = |e: &pbft_core::Envelope| {
        let vote = match &e.signed.message {
            Message::Prepare(vote) | Message::Commit(vote) => Some(vote),
            _ => None,
        };
        e.to == R3 && vote.is_some_and(|v| v.seq == Seq(1))
    };
    // R3 misses the votes for number 1 and cannot ask for them yet.
    c.set_filter(move |e| {
        !missed_by_r3(e)
            && !matches!(
                e.signed.message,
                Message::FetchState(_) | Message::Forward(_) | Message::NewView(_)
            )
    });
    c.submit(R0, req("c1", 1, "set x=1"));
    c.stabilize();
    assert_eq!(c.replica(R1).last_executed(), Seq(1));
    assert_eq!(c.replica(R3).last_executed(), Seq(0));
    // A request the primary never sees makes R1 and R2 change views; the
    // new view never arrives, so every slot has started over.
    c.submit(R1, req("c2", 1, "set y=2"));
    c.submit(R2, req("c2", 1, "set y=2"));
    for _ in 0..2 * TIMEOUT {
        c.tick_all();
        c.stabilize();
    }
    let r1 = c.replica(R1);
    assert!(r1.view() > pbft_core::View(0) && !r1.view_active());
    // Now R3 may ask: the others still hold number 1's committed
    // certificate from view 0, and R3 executes it.
    c.set_filter(|e| !matches!(e.signed.message, Message::NewView(_)));
    for _ in 0..2 * TIMEOUT {
        c.tick_all();
        c.stabilize();
    }
    assert_eq!(c.replica(R3).last_executed(), Seq(1));
    assert_eq!(c.replica(R3).service().get("x"), Some("1"));
}

#[test]
fn a_stalled_primary_sends_its_pre_prepare_again() {
    let mut c = cluster(4);
    // The first pre-prepare reaches only R1: no quorum can prepare it, and
    // no backup holds the client's request, so no view change comes.
    let mut dropped = 0;
    c.set_filter(move |e| {
        let lost = matches!(e.signed.message, Message::PrePrepare(_)) && e.to != R1 && dropped < 2;
        if lost {
            dropped += 1;
        }
        !lost
    });
    c.submit(R0, req("c1", 1, "set x=1"));
    c.stabilize();
    assert_eq!(c.replica(R0).last_executed(), Seq(0));
    for _ in 0..pbft_core::DEFAULT_VIEW_CHANGE_TIMEOUT {
        c.tick_all();
        c.stabilize();
    }
    for r in [R0, R1, R2, R3] {
        assert_eq!(c.replica(r).last_executed(), Seq(1), "{r}");
        assert_eq!(c.replica(r).view(), pbft_core::View(0), "{r}");
    }
}

#[test]
fn a_wait_for_a_request_executed_inside_a_restored_checkpoint_ends() {
    let config = Config::new(4).with_checkpoint_interval(4);
    let mut c =
        Cluster::new(&config, ClusterAuth::Seeded(11), |_| KvService::default()).expect("valid");
    c.set_filter(|e| e.to != R3);
    c.submit(R3, req("bob", 1, "set b=1"));
    c.stabilize();
    // The others execute bob's request and move three checkpoints on,
    // without a tick.
    for t in 1..=12 {
        c.submit(R0, req("c1", t, &format!("set k={t}")));
        c.stabilize();
    }
    assert_eq!(c.replica(R0).stable_checkpoint().seq, Seq(12));
    c.clear_filter();
    for t in 13..=20 {
        c.submit(R0, req("c1", t, &format!("set k={t}")));
        c.stabilize();
        c.tick_all();
        c.stabilize();
    }
    assert_eq!(
        c.replica(R3).last_executed(),
        c.replica(R0).last_executed(),
        "R3 caught up"
    );
    for _ in 0..(3 * pbft_core::DEFAULT_VIEW_CHANGE_TIMEOUT) {
        c.tick_all();
        c.stabilize();
    }
    let (r0, r3) = (c.replica(R0), c.replica(R3));
    assert_eq!(
        (r3.view(), r3.view_active()),
        (r0.view(), true),
        "R3 timed out on a request executed long ago (deadline {:?})",
        r3.view_change_deadline()
    );
}

#[test]
fn a_replica_cut_off_for_long_asks_at_once_when_it_learns_it_is_behind() {
    const T: u64 = pbft_core::DEFAULT_VIEW_CHANGE_TIMEOUT;
    let mut c = cluster_k4();
    // R3 hears nothing for 50 timeouts. Its requests for state go
    // unanswered, so it asks less and less often: by now every 16.
    c.set_filter(|e| e.to != R3);
    run(&mut c, 1, 12);
    for _ in 0..50 * T {
        c.tick_all();
        c.stabilize();
    }
    assert_eq!(c.replica(R3).last_executed(), Seq(0));
    // The network heals. The checkpoints the others announce show R3 it is
    // behind: that is news, and it asks now rather than when its backed-off
    // wait ends.
    c.clear_filter();
    run(&mut c, 13, 20);
    for _ in 0..T {
        c.tick_all();
        c.stabilize();
    }
    assert_in_step(&c, R3);
}

#[test]
fn a_small_state_is_served_again_within_a_timeout_but_not_without_end() {
    // A replica that fell just behind a stable checkpoint twice in one
    // timeout gets the small state both times; a peer asking without end
    // gets the status reports' budget a tick, no more.
    let mut c = cluster_k4();
    run(&mut c, 1, 6);
    assert_eq!(c.replica(R0).stable_checkpoint().seq, Seq(4));
    let answers = |c: &mut Cluster<KvService>, asks: usize| {
        c.take_events();
        c.take_in_flight();
        for _ in 0..asks {
            c.inject(
                R3,
                R0,
                Message::FetchState(pbft_core::FetchState::new(Seq(1), R3)),
            );
        }
        for envelope in c.take_in_flight() {
            c.deliver(envelope);
        }
        let states = c
            .take_in_flight()
            .into_iter()
            .filter(|e| e.from == R0 && e.to == R3)
            .filter(|e| matches!(e.signed.message, Message::State(_)))
            .count();
        let refused = c
            .take_events()
            .iter()
            .filter(|e| e.replica == R0)
            .filter(|e| {
                matches!(
                    &e.output,
                    Output::Rejected {
                        reason: Rejection::TooFrequent,
                        ..
                    }
                )
            })
            .count();
        (states, refused)
    };
    let budget = pbft_core::ANSWERS_PER_TICK as usize;
    assert_eq!(answers(&mut c, 1), (1, 0), "the first ask");
    c.tick(R0);
    assert_eq!(
        answers(&mut c, 1),
        (1, 0),
        "a tick later, well within a timeout"
    );
    c.tick(R0);
    assert_eq!(answers(&mut c, 10), (budget, 10 - budget), "a flood");
}
