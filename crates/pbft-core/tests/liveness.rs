//! Liveness under subtler faults: replicas that executed a batch in
//! different views still agree on checkpoints, retried requests leave no
//! stale wait behind, a primary cannot starve one request by ordering
//! others, and a replica restored by state transfer can still help change
//! views.

mod common;

use common::*;
use pbft_core::{Cluster, ClusterAuth, Config, ExecResult, KvService, Message, Output, Seq, View};

const TIMEOUT: u64 = pbft_core::DEFAULT_VIEW_CHANGE_TIMEOUT;

fn cluster_k4() -> Cluster<KvService> {
    let config = Config::new(4).with_checkpoint_interval(4);
    Cluster::new(&config, ClusterAuth::Seeded(21), |_| KvService::default()).expect("valid")
}

fn tick(c: &mut Cluster<KvService>, n: u64) {
    for _ in 0..n {
        c.tick_all();
        c.stabilize();
    }
}

#[test]
fn a_batch_executed_in_two_views_still_gives_one_checkpoint_digest() {
    let mut c = cluster_k4();
    // Number 1 prepares everywhere, but only R0 and R1 see the commits.
    c.set_filter(|e| {
        !(matches!(e.signed.message, Message::Commit(_)) && (e.to == R2 || e.to == R3))
    });
    c.submit(R0, req("c1", 1, "set x=1"));
    c.stabilize();
    assert_eq!(c.replica(R1).last_executed(), Seq(1));
    assert_eq!(c.replica(R2).last_executed(), Seq(0));
    // R0 goes silent; R2 and R3 execute number 1 in view 1.
    c.set_filter(|e| e.from != R0);
    for r in [R1, R2, R3] {
        c.submit(r, req("c2", 1, "set y=1"));
    }
    c.stabilize();
    tick(&mut c, TIMEOUT + 2);
    assert_eq!(c.replica(R2).view(), View(1));
    for t in 3..=4 {
        c.submit(R1, req("c3", t, &format!("set z={t}")));
        c.stabilize();
    }
    for r in [R1, R2, R3] {
        let stable = c.replica(r).stable_checkpoint();
        assert_eq!(stable.seq, Seq(4), "{r}: the checkpoint at 4 became stable");
        assert_eq!(stable.digest, c.replica(R1).stable_checkpoint().digest);
    }
}

#[test]
fn a_retried_request_leaves_no_stale_wait_behind() {
    let mut c = cluster(4);
    let request = req("c1", 1, "set x=1");
    // The client retries at the same backup before anything is delivered.
    c.submit(R1, request.clone());
    c.submit(R1, request);
    c.stabilize();
    assert_eq!(c.replica(R1).last_executed(), Seq(1));
    tick(&mut c, 3 * TIMEOUT);
    assert_eq!(c.replica(R1).view(), View(0), "no spurious view change");
    assert!(c.replica(R1).view_active());
}

#[test]
fn a_primary_cannot_starve_one_request_by_ordering_others() {
    let mut c = cluster(4);
    // R0 never sees the victim's request: forwards to it are lost.
    c.set_filter(|e| !(e.to == R0 && matches!(e.signed.message, Message::Forward(_))));
    for r in [R1, R2, R3] {
        c.submit(r, req("victim", 1, "set v=1"));
    }
    c.stabilize();
    // Meanwhile R0 keeps ordering other clients' requests, so something
    // executes on every tick.
    let mut view_changed_at = None;
    for t in 1..=3 * TIMEOUT {
        c.submit(R0, req("busy", t, &format!("set b={t}")));
        c.stabilize();
        c.tick_all();
        c.stabilize();
        if view_changed_at.is_none() && c.replica(R1).view() > View(0) {
            view_changed_at = Some(t);
        }
    }
    let at = view_changed_at.expect("the starved request forced a view change");
    assert!(
        at <= TIMEOUT + 1,
        "within one timeout of the wait: tick {at}"
    );
    for r in [R1, R2, R3] {
        assert_eq!(c.replica(r).service().get("v"), Some("1"), "{r}");
    }
}

#[test]
fn a_replica_restored_by_state_transfer_can_still_change_views() {
    let mut c = cluster_k4();
    c.set_filter(|e| e.to != R3);
    for t in 1..=6 {
        c.submit(R0, req("c1", t, &format!("set x={t}")));
        c.stabilize();
    }
    c.clear_filter();
    // R3 catches up from the others' checkpoint at 4 plus 5 and 6.
    tick(&mut c, 2);
    for t in 7..=8 {
        c.submit(R0, req("c1", t, &format!("set x={t}")));
        c.stabilize();
        tick(&mut c, 1);
    }
    assert_eq!(c.replica(R3).last_executed(), Seq(8));
    // The primary falls silent; the view change needs R3's view change.
    c.set_filter(|e| e.from != R0);
    for r in [R1, R2, R3] {
        c.submit(r, req("c2", 1, "set y=1"));
    }
    c.stabilize();
    tick(&mut c, 2 * TIMEOUT);
    for r in [R1, R2, R3] {
        let replica = c.replica(r);
        assert_eq!(
            (replica.view(), replica.view_active()),
            (View(1), true),
            "{r}"
        );
        assert_eq!(replica.service().get("y"), Some("1"));
    }
}

/// A request a client gave a backup, which the others execute without it,
/// is held back by that backup once it leads the next view: as many
/// numbers as it may have in flight are not executed there (§5.1). The
/// checkpoint it then restores settles the request, and the client waiting
/// at it must get its answer: the restored state executed the request, so
/// this replica never will.
#[test]
fn a_new_primary_answers_a_held_request_its_restored_state_executed() {
    let config = Config::new(4)
        .with_checkpoint_interval(1)
        .with_batching(1, 1);
    let mut c =
        Cluster::new(&config, ClusterAuth::Seeded(7), |_| KvService::default()).expect("valid");
    let request = req("c1", 1, "set x=1");
    // R1 relays its client's request to R0 but hears nothing back: the
    // others execute it at 1, and 1 is their stable checkpoint.
    c.set_filter(|e| e.to != R1);
    c.submit(R1, request.clone());
    c.stabilize();
    assert_eq!(c.replica(R2).stable_checkpoint().seq, Seq(1));
    assert_eq!(c.replica(R1).last_executed(), Seq(0));
    // R0 falls silent. R1 hears of view 0 nothing more: it learns of
    // number 1 only as the primary of view 1, from the view changes, and
    // restores its state.
    c.set_filter(|e| {
        e.from != R0
            && (e.to != R1
                || match &e.signed.message {
                    Message::ViewChange(_) | Message::NewView(_) | Message::State(_) => true,
                    Message::Prepare(vote) | Message::Commit(vote) => vote.view == View(1),
                    _ => false,
                })
    });
    for r in [R1, R2, R3] {
        c.submit(r, req("c2", 1, "set y=1"));
    }
    c.stabilize();
    c.take_events();
    tick(&mut c, 2 * TIMEOUT);
    let events = c.take_events();
    let r1 = c.replica(R1);
    assert_eq!((r1.view(), r1.view_active()), (View(1), true));
    assert_eq!(r1.service().get("y"), Some("1"), "view 1 orders c2");
    answered_from_restored_state(&events, &request);
}

/// A client that retries at a backup that has the request's pre-prepare
/// is told its number there. If that backup then restores a checkpoint
/// that executed the request instead of executing it itself, the client
/// waiting there must still get its answer.
#[test]
fn a_retry_acknowledged_from_the_log_is_answered_after_a_restore() {
    let config = Config::new(4).with_checkpoint_interval(1);
    let mut c =
        Cluster::new(&config, ClusterAuth::Seeded(7), |_| KvService::default()).expect("valid");
    let request = req("c1", 1, "set x=1");
    // R1 gets the pre-prepare for number 1 and nothing after it.
    c.set_filter(|e| e.to != R1 || matches!(e.signed.message, Message::PrePrepare(_)));
    c.submit(R0, request.clone());
    c.stabilize();
    assert_eq!(c.replica(R2).stable_checkpoint().seq, Seq(1));
    assert_eq!(c.replica(R1).last_executed(), Seq(0));
    c.take_events();
    c.submit(R1, request.clone());
    assert_eq!(
        acks(c.events(), R1)
            .iter()
            .map(|a| a.seq)
            .collect::<Vec<_>>(),
        [Seq(1)]
    );
    c.clear_filter();
    tick(&mut c, TIMEOUT);
    let events = c.take_events();
    assert_eq!(c.replica(R1).last_executed(), Seq(1));
    answered_from_restored_state(&events, &request);
}

/// Checks that in `events` R1 restored number 1 and, without executing
/// `request` itself, answered its client with the result number 1 had.
fn answered_from_restored_state(events: &[pbft_core::Event], request: &pbft_core::Request) {
    assert!(
        events
            .iter()
            .any(|e| e.replica == R1 && matches!(e.output, Output::Restored { seq: Seq(1), .. })),
        "R1 restores number 1"
    );
    let answers: Vec<_> = events
        .iter()
        .filter(|e| e.replica == R1)
        .filter_map(|e| match &e.output {
            Output::Answered {
                request: answered,
                seq,
                result,
            } if answered == request => Some((*seq, result.clone())),
            Output::Executed(x) if x.batch.requests().contains(request) => {
                panic!("R1 executes c1's request at {}", x.seq)
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        answers,
        vec![(Seq(1), ExecResult::Ok)],
        "c1's client, waiting at R1, gets its answer"
    );
}
