//! View changes and new views name batches by digest (§4.4): a replica
//! that lacks a batch the new view re-issues gets it from the new primary,
//! or from its peers through state transfer, checked against the digest.

mod common;

use common::*;
use pbft_core::{Message, Output, Rejection, ReplicaId, Seq, View};

/// The primary's pre-prepare for the first request reaches every backup
/// but `lacking`, and no commit of view 0 arrives: the number prepares
/// without executing, and the backups move to view 1. State transfer
/// works only if `state` says so.
fn prepared_then_view_change(
    lacking: ReplicaId,
    state: bool,
) -> pbft_core::Cluster<pbft_core::KvService> {
    let mut c = cluster(4);
    c.set_filter(move |e| match &e.signed.message {
        Message::PrePrepare(pp) => !(pp.view == View(0) && e.to == lacking),
        Message::Commit(v) => v.view != View(0),
        Message::State(_) => state,
        _ => true,
    });
    c.submit(R0, req("c1", 1, "set x=1"));
    // The client asks the replica that lacks the batch too, so that its
    // timer runs and it joins the view change with the others.
    c.submit(lacking, req("c1", 1, "set x=1"));
    c
}

/// Ticks and delivers until every replica executed the request.
fn run_until_executed(c: &mut pbft_core::Cluster<pbft_core::KvService>) {
    for _ in 0..100 {
        if c.replicas().iter().all(|r| r.last_executed() == Seq(1)) {
            return;
        }
        c.tick_all();
        c.stabilize();
    }
}

#[test]
fn a_view_change_carries_no_batch() {
    let mut c = cluster(4);
    c.set_filter(|e| !matches!(e.signed.message, Message::Commit(_)));
    c.submit(R0, req("c1", 1, "set x=1"));
    c.stabilize();
    let mut carried = 0;
    for _ in 0..30 {
        c.tick_all();
        for e in c.in_flight() {
            if let Message::ViewChange(vc) = &e.signed.message {
                for cert in &vc.prepared {
                    let pp = cert.pre_prepare().expect("a pre-prepare");
                    assert!(pp.batch.is_none(), "named by digest only");
                    carried += 1;
                }
            }
        }
        c.stabilize();
    }
    assert!(carried > 0, "view changes carried prepared certificates");
}

#[test]
fn a_backup_that_lacks_a_batch_gets_it_from_the_new_primary() {
    // No state transfer: the batch can only come from the new primary.
    let mut c = prepared_then_view_change(R3, false);
    // It comes right behind the new view, not with a later resend: the
    // backup executes as soon as it installs the view.
    for _ in 0..100 {
        c.tick_all();
        c.stabilize();
        if c.replica(R3).view() == View(1) && c.replica(R3).view_active() {
            break;
        }
    }
    assert!(c.replica(R3).view_active(), "the new view installed");
    assert_eq!(c.replica(R3).last_executed(), Seq(1), "at once");
    run_until_executed(&mut c);
    for r in [R0, R1, R2, R3] {
        let replica = c.replica(r);
        assert_eq!(replica.view(), View(1), "{r}");
        assert_eq!(replica.last_executed(), Seq(1), "{r}");
        assert_eq!(replica.service().get("x"), Some("1"), "{r}");
    }
}

#[test]
fn a_new_primary_that_lacks_a_batch_fetches_it_from_its_peers() {
    let mut c = prepared_then_view_change(R1, true);
    run_until_executed(&mut c);
    // The new primary, not knowing the batch at 1 holds the request its
    // client gave it, may order it again at 2; it executes once.
    let executed = c.replica(R1).last_executed();
    for r in [R0, R1, R2, R3] {
        let replica = c.replica(r);
        assert_eq!(replica.view(), View(1), "{r}");
        assert!(replica.last_executed() >= Seq(1), "{r}");
        assert_eq!(replica.service().get("x"), Some("1"), "{r}");
    }
    // And the view goes on.
    c.clear_filter();
    c.submit(R1, req("c1", 2, "set x=2"));
    for _ in 0..50 {
        c.tick_all();
        c.stabilize();
    }
    for r in [R0, R1, R2, R3] {
        let replica = c.replica(r);
        assert!(replica.last_executed() > executed, "{r}");
        assert_eq!(replica.service().get("x"), Some("2"), "{r}");
    }
}

#[test]
fn a_pre_prepare_without_its_batch_is_rejected_in_the_normal_case() {
    let mut c = cluster(4);
    let batch = std::sync::Arc::new(pbft_core::Batch::single(req("c1", 1, "set x=1")));
    let pp = pbft_core::PrePrepare::new(View(0), Seq(1), batch).without_batch();
    let signed = c.replica(R0).sign(Message::PrePrepare(pp));
    assert_eq!(
        deliver_only(&mut c, R0, R1, signed),
        [Rejection::MissingBatch { seq: Seq(1) }]
    );
    let executed = c
        .events()
        .iter()
        .any(|e| matches!(e.output, Output::Executed(_)));
    assert!(!executed);
}

/// Only R2 prepares the first request in view 0 (the others accept the
/// pre-prepare, with its batch, but see no prepares), and R2's view change
/// is the one that carries the number into view 1, by digest. Then R2
/// falls silent. The new primary and the other backups never prepared
/// the batch, but they accepted it: they must still hold it, or the number
/// commits in view 1 and never executes anywhere.
#[test]
fn a_batch_accepted_but_never_prepared_outlives_the_view_change() {
    let mut c = cluster(4);
    c.set_filter(|e| match &e.signed.message {
        Message::Prepare(_) => e.to == R2,
        Message::Commit(_) => false,
        _ => true,
    });
    for r in [R0, R1, R2, R3] {
        c.submit(r, req("c1", 1, "set x=1"));
    }
    c.stabilize();
    let prepared: Vec<bool> = [R0, R1, R2, R3]
        .iter()
        .map(|&r| c.replica(r).prepared_certificate(Seq(1)).is_some())
        .collect();
    assert_eq!(prepared, [false, false, true, false], "only R2 prepared");
    // No vote of view 0 arrives any more, R2 reaches others only with its
    // view change, and R0's view change never reaches the new primary: the
    // new view must rest on R2's.
    c.set_filter(|e| match &e.signed.message {
        Message::Prepare(v) | Message::Commit(v) if v.view == View(0) => false,
        Message::ViewChange(vc) if vc.replica == R0 => e.to != R1,
        Message::ViewChange(_) => e.to != R2,
        _ => e.from != R2 && e.to != R2,
    });
    for _ in 0..100 {
        c.tick_all();
        c.stabilize();
        if [R0, R1, R3]
            .iter()
            .all(|&r| c.replica(r).last_executed() == Seq(1))
        {
            break;
        }
    }
    for r in [R0, R1, R3] {
        let replica = c.replica(r);
        assert_eq!(replica.view(), View(1), "{r}");
        assert_eq!(replica.last_executed(), Seq(1), "{r}");
        assert_eq!(replica.service().get("x"), Some("1"), "{r}");
    }
}

/// As above, but a view between gives the number another batch before the
/// view that re-issues the first one by digest; the one replica that
/// prepared the first batch then loses its memory. Every other replica
/// accepted both batches, and must still hold the first.
#[test]
fn a_batch_outlives_another_accepted_at_its_number_in_a_later_view() {
    let mut c = cluster(4);
    c.set_filter(|e| match &e.signed.message {
        // View 0: only R2 prepares; views 1 and 2 prepare nothing.
        Message::Prepare(v) | Message::Commit(v) if v.view < View(3) => {
            matches!(e.signed.message, Message::Prepare(_)) && v.view == View(0) && e.to == R2
        }
        // View 1 rests on view changes without R2's prepared number, and
        // view 3 on R2's.
        Message::ViewChange(vc) if vc.new_view == View(1) => e.from != R2,
        Message::ViewChange(vc) if vc.new_view == View(3) => e.from != R0,
        Message::NewView(nv) => nv.view != View(2),
        _ => true,
    });
    c.submit(R0, req("c1", 1, "set a=1"));
    c.stabilize();
    assert!(c.replica(R2).prepared_certificate(Seq(1)).is_some());
    // View 1's primary gives number 1 to another client's request.
    let mut displaced = false;
    for _ in 0..2000 {
        if c.replicas()
            .iter()
            .all(|r| r.view() == View(1) && r.view_active())
        {
            break;
        }
        c.tick_all();
        loop {
            if !displaced && c.replica(R1).view() == View(1) && !c.replica(R1).view_active() {
                c.submit(R1, req("c2", 1, "set b=1"));
                displaced = true;
            }
            if !c.deliver_next() {
                break;
            }
        }
    }
    assert!(displaced, "view 1 began");
    let mut restarted = false;
    for _ in 0..4000 {
        c.tick_all();
        loop {
            if !restarted && c.replica(R2).view() >= View(3) {
                c.restart(R2, pbft_core::KvService::default())
                    .expect("restarts");
                restarted = true;
            }
            if !c.deliver_next() {
                break;
            }
        }
        if restarted
            && c.replicas()
                .iter()
                .all(|r| r.service().get("a") == Some("1"))
        {
            break;
        }
    }
    assert!(restarted, "R2 reached view 3");
    for r in [R0, R1, R3] {
        let replica = c.replica(r);
        assert!(replica.last_executed() >= Seq(1), "{r} executed");
        assert_eq!(replica.service().get("a"), Some("1"), "{r}");
    }
}
