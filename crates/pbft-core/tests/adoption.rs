//! A committed certificate adopted through state transfer must not let a
//! Byzantine primary make an honest replica accept a second pre-prepare for
//! a number (found by an independent review of the retransmission work).

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use common::*;
use pbft_core::{
    Batch, Cluster, CommittedCertificate, Digest, Event, FetchState, KvService, Message, Output,
    PrePrepare, ReplicaId, Seq, Signed, StateTransfer, View, Vote,
};

const TIMEOUT: u64 = pbft_core::DEFAULT_VIEW_CHANGE_TIMEOUT;

fn executed_at(events: &[Event], r: ReplicaId, seq: Seq) -> Option<Digest> {
    events.iter().find_map(|e| match &e.output {
        Output::Executed(x) if e.replica == r && x.seq == seq => Some(x.digest),
        _ => None,
    })
}

/// R1 is Byzantine (the primary of view 1); R0, R2, R3 are honest.
///
/// 1. View 0: batch `d` is pre-prepared and prepared at 1 everywhere, but
///    commits only reach R1, which thus holds a committed certificate
///    (view 0, 1, d) signed by R0, R2 and R3.
/// 2. View change to 1; O re-proposes `d` at 1. Commits still reach only R1.
/// 3. R1 sends R2 and R3 the genuine view-0 committed certificate: they
///    adopt it and execute `d` at 1.
/// 4. R1 sends a view-1 commit for 1, then pre-prepares a different batch
///    `X` at (view 1, 1). R2 and R3 must refuse it: they accepted `d` there
///    from the new view, and a committed certificate proves `d`.
/// 5. R0, still behind, asks R2 for what it lacks, and must execute `d` at
///    1, as R2 and R3 did. (Before the fix, adoption started the slot over,
///    R2 and R3 prepared and committed `X`, and R0 executed it.)
#[test]
fn an_adopted_certificate_keeps_a_byzantine_primary_from_reusing_its_number() {
    let mut c: Cluster<KvService> = cluster(4);
    let pp0: Rc<RefCell<Option<Signed>>> = Rc::default();
    let commits0: Rc<RefCell<Vec<Signed>>> = Rc::default();
    {
        let (pp0, commits0) = (Rc::clone(&pp0), Rc::clone(&commits0));
        c.set_filter(move |e| match &e.signed.message {
            Message::PrePrepare(pp) if pp.view == View(0) && e.to == R1 => {
                pp0.borrow_mut().get_or_insert(e.signed.clone());
                true
            }
            Message::Commit(v) => {
                let mut kept = commits0.borrow_mut();
                let new = !kept.iter().any(|s| s.message == e.signed.message);
                if e.to == R1 && v.view == View(0) && new {
                    kept.push(e.signed.clone());
                }
                e.to == R1
            }
            // No state transfer during the set-up.
            Message::State(_) => false,
            _ => true,
        });
    }
    let good = req("alice", 1, "set x=good");
    c.submit(R0, good);
    c.stabilize();
    for _ in 0..(4 * TIMEOUT) {
        c.tick_all();
        c.stabilize();
        if [R0, R2, R3]
            .iter()
            .all(|r| c.replica(*r).view() == View(1) && c.replica(*r).view_active())
        {
            break;
        }
    }
    for r in [R0, R2, R3] {
        assert_eq!(c.replica(r).view(), View(1));
        assert!(c.replica(r).view_active());
        assert_eq!(c.replica(r).last_executed(), Seq(0), "{r:?}");
    }
    c.clear_filter();
    c.take_in_flight();
    c.take_events();

    // 3. The genuine view-0 committed certificate for 1.
    let cert0 = CommittedCertificate {
        pre_prepare: pp0.borrow().clone().expect("captured pre-prepare"),
        commits: commits0.borrow().clone(),
    };
    let d = match &cert0.pre_prepare.message {
        Message::PrePrepare(pp) => pp.digest,
        _ => unreachable!(),
    };
    assert_eq!(cert0.commits.len(), 3);
    for to in [R2, R3] {
        let state = StateTransfer {
            checkpoint: c.replica(R1).stable_checkpoint().clone(),
            service: Arc::new(Vec::new()),
            clients: Arc::new(Vec::new()),
            committed: vec![cert0.clone()],
            replica: R1,
            manifest: None,
            chunk: None,
        };
        c.inject(R1, to, Message::State(state));
    }
    c.set_filter(|e| e.to != R0);
    c.stabilize();
    let events = c.take_events();
    assert_eq!(executed_at(&events, R2, Seq(1)), Some(d));
    assert_eq!(executed_at(&events, R3, Seq(1)), Some(d));

    // 4. Reset the slot with a view-1 commit, then equivocate.
    let x = PrePrepare::new(
        View(1),
        Seq(1),
        Arc::new(Batch::single(req("mallory", 1, "set x=evil"))),
    );
    assert_ne!(x.digest, d);
    for to in [R2, R3] {
        let vote = Vote {
            view: View(1),
            seq: Seq(1),
            digest: x.digest,
            replica: R1,
        };
        c.inject(R1, to, Message::Commit(vote));
        c.inject(R1, to, Message::PrePrepare(x.clone()));
    }
    c.stabilize(); // still nothing to R0
    c.take_events();

    // 5. R0 asks R2 for what it lacks (as its periodic status fetch does).
    c.clear_filter();
    c.take_in_flight();
    let fetch = FetchState::new(Seq(1), R0);
    c.inject(R0, R2, Message::FetchState(fetch));
    c.set_filter(|e| {
        (e.to == R2 && matches!(e.signed.message, Message::FetchState(_)))
            || (e.to == R0 && matches!(e.signed.message, Message::State(_)))
    });
    c.stabilize();
    let events = c.take_events();
    let r0 = executed_at(&events, R0, Seq(1));
    assert_eq!(
        r0,
        Some(d),
        "honest R0 executed a different batch at 1 than honest R2 and R3 (d = {d:?})"
    );
}

/// The primary equivocates: R3 accepts the null request at 1 while the
/// others commit a client's batch there. R3 stalls, fetches the committed
/// certificate, and executes the certified batch; its status for 1 then
/// reports that batch, not the pre-prepare it had accepted.
#[test]
fn status_reports_the_certified_batch_over_an_equivocated_pre_prepare() {
    let mut c: Cluster<KvService> = cluster(4);
    let null = PrePrepare::new(View(0), Seq(1), Arc::new(Batch::new(Vec::new())));
    c.inject(R0, R3, Message::PrePrepare(null.clone()));
    c.stabilize();
    c.set_filter(|e| !(e.to == R3 && matches!(e.signed.message, Message::PrePrepare(_))));
    c.submit(R0, req("alice", 1, "set x=1"));
    c.stabilize();
    let certified = c
        .replica(R1)
        .status(Seq(1))
        .digest
        .expect("committed at R1");
    assert_ne!(certified, null.digest);
    assert_eq!(c.replica(R3).status(Seq(1)).digest, Some(null.digest));
    for _ in 0..TIMEOUT {
        c.tick_all();
        c.stabilize();
    }
    let r3 = c.replica(R3).status(Seq(1));
    assert!(r3.executed);
    assert_eq!(r3.phase.to_string(), "committed");
    assert_eq!(r3.digest, Some(certified));
    assert_eq!(c.replica(R3).service().get("x"), Some("1"));
}
