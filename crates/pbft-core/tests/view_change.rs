//! View changes (§4.4): a faulty primary is replaced, requests it held up
//! are ordered in the new view, and no two honest replicas ever execute
//! different batches at one number.

mod common;

use std::sync::Arc;

use common::*;
use pbft_core::{
    Batch, Cluster, Digest, KvService, Message, NewView, NewViewError, PrePrepare, Rejection,
    ReplicaId, Request, Seq, Signed, SlotPhase, View, ViewChange, ViewChangeError,
};

const TIMEOUT: u64 = pbft_core::DEFAULT_VIEW_CHANGE_TIMEOUT;

/// Ticks every replica `n` times, delivering everything after each tick.
fn tick(c: &mut Cluster<KvService>, n: u64) {
    for _ in 0..n {
        c.tick_all();
        c.stabilize();
    }
}

/// Drops everything replica `r` sends: it is silent.
fn silence(c: &mut Cluster<KvService>, silent: &'static [ReplicaId]) {
    c.set_filter(move |e| !silent.contains(&e.from));
}

/// What each honest replica executed, as (seq, batch digest), in order.
fn executed(
    c: &Cluster<KvService>,
    honest: &[ReplicaId],
    events: &[pbft_core::Event],
) -> Vec<Vec<(Seq, Digest)>> {
    let _ = c;
    honest
        .iter()
        .map(|r| {
            events
                .iter()
                .filter(|e| e.replica == *r)
                .filter_map(|e| match &e.output {
                    pbft_core::Output::Executed(x) => Some((x.seq, x.digest)),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// The client hands its request to every backup, as a client does when the
/// primary does not answer.
fn submit_to_backups(c: &mut Cluster<KvService>, request: &Request) {
    for r in [R1, R2, R3] {
        c.submit(r, request.clone());
    }
}

#[test]
fn a_silent_primary_is_replaced_and_the_request_commits_in_view_1() {
    let mut c = cluster(4);
    silence(&mut c, &[R0]);
    let request = req("c1", 1, "set x=1");
    submit_to_backups(&mut c, &request);
    c.stabilize();
    tick(&mut c, TIMEOUT - 1);
    assert_eq!(
        c.replica(R1).view(),
        View(0),
        "no view change before the timeout"
    );
    tick(&mut c, 1);
    let events = c.take_events();
    for r in [R1, R2, R3] {
        let replica = c.replica(r);
        assert_eq!((replica.view(), replica.view_active()), (View(1), true));
        assert_eq!(replica.last_executed(), Seq(1));
        assert_eq!(replica.service().get("x"), Some("1"));
        let status = replica.status(Seq(1));
        assert_eq!(
            (status.view, status.phase),
            (Some(View(1)), SlotPhase::Committed)
        );
        // Every backup the client asked answers with the new view's number.
        let acked = acks(&events, r);
        assert!(
            acked
                .iter()
                .any(|o| o.request == request && o.view == View(1) && o.seq == Seq(1)),
            "{r}: {acked:?}"
        );
    }
}

#[test]
fn an_equivocating_primary_cannot_split_the_honest_replicas() {
    let mut c = cluster(4);
    silence(&mut c, &[R0]);
    let a = req("c1", 1, "set x=a");
    let b = req("c2", 1, "set x=b");
    c.submit(R1, a.clone());
    c.submit(R2, b.clone());
    c.submit(R3, b.clone());
    c.stabilize();
    // R0 sends batch A to R1 and batch B to R2 and R3 for number 1.
    let pp = |r: &Request| {
        Message::PrePrepare(PrePrepare::new(
            View(0),
            Seq(1),
            Arc::new(Batch::single(r.clone())),
        ))
    };
    c.inject(R0, R1, pp(&a));
    c.inject(R0, R2, pp(&b));
    c.inject(R0, R3, pp(&b));
    // Only these pre-prepares get out of R0; it sends nothing else.
    c.set_filter(|e| e.from != R0 || matches!(e.signed.message, Message::PrePrepare(_)));
    c.stabilize();
    silence(&mut c, &[R0]);
    assert_eq!(
        c.replica(R2).status(Seq(1)).phase,
        SlotPhase::Prepared,
        "B prepared at R2"
    );
    assert_eq!(c.replica(R1).status(Seq(1)).phase, SlotPhase::PrePrepare);
    tick(&mut c, 3 * TIMEOUT);
    let events = c.take_events();
    let runs = executed(&c, &[R1, R2, R3], &events);
    assert_eq!(runs[0], runs[1], "R1 and R2 executed the same batches");
    assert_eq!(runs[1], runs[2], "R2 and R3 executed the same batches");
    let b_digest = Batch::single(b).digest();
    assert_eq!(
        runs[0].first(),
        Some(&(Seq(1), b_digest)),
        "the prepared batch B keeps number 1"
    );
    for r in [R1, R2, R3] {
        let replica = c.replica(r);
        assert_eq!(replica.view(), View(1));
        assert_eq!(replica.last_executed(), Seq(2), "A is ordered after it");
        assert_eq!(replica.service().get("x"), Some("a"));
    }
}

#[test]
fn f_plus_1_view_changes_pull_a_replica_along() {
    let mut c = cluster(4);
    silence(&mut c, &[R0]);
    // Only R1 and R2 hold the request, so only their timers run.
    let request = req("c1", 1, "set x=1");
    c.submit(R1, request.clone());
    c.submit(R2, request);
    c.stabilize();
    tick(&mut c, TIMEOUT);
    let r3 = c.replica(R3);
    assert_eq!(
        (r3.view(), r3.view_active()),
        (View(1), true),
        "R3 joined without a timer"
    );
    assert_eq!(r3.last_executed(), Seq(1));
}

#[test]
fn each_view_change_that_fails_doubles_the_timeout() {
    let mut c = cluster(4);
    // The primary of view 0 is silent, and the primaries of views 1 and 2
    // never send their new views. A quorum of view changes arrives for
    // each view, so the timer runs (§4.5.2): after T, then 2T, then 4T.
    c.set_filter(|e| {
        e.from != R0
            && !(matches!(e.signed.message, Message::NewView(_)) && [R1, R2].contains(&e.from))
    });
    submit_to_backups(&mut c, &req("c1", 1, "set x=1"));
    c.stabilize();
    let mut elapsed = 0;
    for (view, wait) in [(1, TIMEOUT), (2, TIMEOUT), (3, 2 * TIMEOUT)] {
        tick(&mut c, wait - 1);
        elapsed += wait;
        assert_eq!(
            c.replica(R3).view(),
            View(view - 1),
            "before tick {elapsed}"
        );
        tick(&mut c, 1);
        assert_eq!(c.replica(R3).view(), View(view), "at tick {elapsed}");
    }
    // R3 is the primary of view 3: it installs, the request executes, and
    // the timeout is back to its base.
    assert_eq!(c.replica(R3).view_change_timeout(), TIMEOUT);
    for r in [R1, R2, R3] {
        let replica = c.replica(r);
        assert_eq!((replica.view(), replica.view_active()), (View(3), true));
        assert_eq!(replica.last_executed(), Seq(1), "{r}");
    }
}

#[test]
fn a_replica_that_moved_on_alone_waits_for_the_others() {
    let mut c = cluster(4);
    // Only R3 holds the request, and the primary ignores it: R3 alone
    // asks for view 1. No quorum of view changes for view 1 arrives, so
    // its timer does not run, and it does not race through later views.
    let sent = std::rc::Rc::new(std::cell::Cell::new(0));
    let count = sent.clone();
    c.set_filter(move |e| {
        if e.from == R3 && e.to == R0 && matches!(e.signed.message, Message::ViewChange(_)) {
            count.set(count.get() + 1);
        }
        !(e.from == R3 && matches!(e.signed.message, Message::Forward(_)))
    });
    c.submit(R3, req("c1", 1, "set x=1"));
    c.stabilize();
    tick(&mut c, 20 * TIMEOUT);
    let r3 = c.replica(R3);
    assert_eq!((r3.view(), r3.view_active()), (View(1), false));
    assert_eq!(r3.view_change_deadline(), None);
    // It sends its view change again, each time waiting twice as long:
    // after T/2, then T, 2T, 4T and 8T more, within 20T of the first.
    assert_eq!(sent.get(), 6, "the first and five resends");
    for r in [R0, R1, R2] {
        assert_eq!(c.replica(r).view(), View(0), "{r} stays in view 0");
    }
}

#[test]
fn a_backup_that_missed_the_new_view_gets_it_again() {
    let mut c = cluster(4);
    // R0 is silent, and the first new view for view 1 never reaches R3.
    let mut dropped = false;
    c.set_filter(move |e| {
        if e.from == R0 {
            return false;
        }
        if !dropped && e.to == R3 && matches!(e.signed.message, Message::NewView(_)) {
            dropped = true;
            return false;
        }
        true
    });
    submit_to_backups(&mut c, &req("c1", 1, "set x=1"));
    c.stabilize();
    tick(&mut c, TIMEOUT);
    assert_eq!(
        (c.replica(R3).view(), c.replica(R3).view_active()),
        (View(1), false),
        "R3 waits for the new view"
    );
    // R3 sends its view change again; the new primary answers with the
    // new view, well before R3's timer would give up on view 1.
    tick(&mut c, TIMEOUT);
    let r3 = c.replica(R3);
    assert_eq!((r3.view(), r3.view_active()), (View(1), true));
    assert_eq!(r3.last_executed(), Seq(1));
    assert_eq!(r3.service().get("x"), Some("1"));
}

#[test]
fn a_replica_left_in_an_old_view_catches_up_to_the_installed_one() {
    let mut c = cluster(4);
    // Phase 1: R3 is cut off. The primary of view 0 ignores the backups'
    // requests and the primary of view 1 never sends its new view, so the
    // others end up in view 2.
    c.set_filter(|e| {
        e.from != R3
            && e.to != R3
            && !(e.from == R0 && matches!(e.signed.message, Message::PrePrepare(_)))
            && !(e.from == R1 && matches!(e.signed.message, Message::NewView(_)))
    });
    c.submit(R1, req("c1", 1, "set x=1"));
    c.submit(R2, req("c1", 1, "set x=1"));
    c.stabilize();
    tick(&mut c, 3 * TIMEOUT);
    for r in [R0, R1, R2] {
        let replica = c.replica(r);
        assert_eq!((replica.view(), replica.view_active()), (View(2), true));
        assert_eq!(replica.last_executed(), Seq(1), "{r}");
    }
    assert_eq!(c.replica(R3).view(), View(0));
    // Phase 2: the network heals. A client asks R3, which times out in
    // view 0 and asks for view 1; the primary of view 2 answers with its
    // new view, which R3 checks and installs.
    c.clear_filter();
    c.submit(R3, req("c2", 1, "set y=2"));
    c.stabilize();
    tick(&mut c, 4 * TIMEOUT);
    let r3 = c.replica(R3);
    assert_eq!((r3.view(), r3.view_active()), (View(2), true));
    for r in [R0, R1, R2, R3] {
        let replica = c.replica(r);
        assert_eq!(replica.service().get("y"), Some("2"), "{r}");
    }
}

#[test]
fn a_failed_view_change_is_followed_by_one_that_installs() {
    let mut c = cluster(4);
    // The primary of view 1 never sends its new view.
    c.set_filter(|e| {
        e.from != R0 && !(e.from == R1 && matches!(e.signed.message, Message::NewView(_)))
    });
    submit_to_backups(&mut c, &req("c1", 1, "set x=1"));
    c.stabilize();
    tick(&mut c, 2 * TIMEOUT);
    for r in [R2, R3] {
        let replica = c.replica(r);
        assert_eq!(
            (replica.view(), replica.view_active()),
            (View(2), true),
            "{r}"
        );
        assert_eq!(replica.last_executed(), Seq(1));
    }
}

#[test]
fn numbers_prepared_in_the_old_view_survive_and_gaps_get_null_requests() {
    let mut c = cluster(4);
    // Two requests commit normally; the third is pre-prepared and prepared
    // nowhere but at R0, whose messages then stop.
    for t in 1..=2 {
        c.submit(R0, req("c1", t, &format!("set k=v{t}")));
        c.stabilize();
    }
    // Number 3 prepares at the backups, but no commit gets through.
    c.submit(R0, req("c1", 3, "set k=v3"));
    c.set_filter(|e| !matches!(e.signed.message, Message::Commit(_)));
    c.stabilize();
    assert_eq!(c.replica(R1).status(Seq(3)).phase, SlotPhase::Prepared);
    silence(&mut c, &[R0]);
    submit_to_backups(&mut c, &req("c2", 1, "set j=1"));
    c.stabilize();
    tick(&mut c, TIMEOUT);
    for r in [R1, R2, R3] {
        let replica = c.replica(r);
        assert_eq!(replica.view(), View(1));
        assert_eq!(
            replica.service().get("k"),
            Some("v3"),
            "number 3 kept its batch"
        );
        assert_eq!(replica.service().get("j"), Some("1"));
        assert_eq!(replica.last_executed(), Seq(4));
        assert_eq!(
            replica.status(Seq(3)).view,
            Some(View(1)),
            "re-proposed in view 1"
        );
    }
}

/// Runs a silent-primary view change and returns the new view R1 sent, as
/// it appeared on the network, plus the cluster (nothing delivered to R3).
fn captured_new_view() -> (Cluster<KvService>, Signed) {
    let mut c = cluster(4);
    let captured = std::rc::Rc::new(std::cell::RefCell::new(None));
    let keep = std::rc::Rc::clone(&captured);
    c.set_filter(move |e| {
        if matches!(e.signed.message, Message::NewView(_)) && e.to == R3 {
            *keep.borrow_mut() = Some(e.signed.clone());
            return false;
        }
        e.from != R0
    });
    submit_to_backups(&mut c, &req("c1", 1, "set x=1"));
    c.stabilize();
    tick(&mut c, TIMEOUT);
    let nv = captured.take().expect("R1 sent a new view to R3");
    c.clear_filter();
    c.take_events();
    (c, nv)
}

fn deliver_new_view(c: &mut Cluster<KvService>, nv: NewView) -> Vec<Rejection> {
    let signed = c.replica(R1).sign(Message::NewView(nv));
    c.inject_signed(R1, R3, signed);
    c.set_filter(|e| e.to == R3 && matches!(e.signed.message, Message::NewView(_)));
    c.stabilize();
    c.clear_filter();
    rejections(&c.take_events(), R3)
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

fn new_view_of(signed: &Signed) -> NewView {
    match &signed.message {
        Message::NewView(nv) => nv.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_new_view_with_the_wrong_pre_prepares_is_rejected() {
    let (mut c, signed) = captured_new_view();
    let mut nv = new_view_of(&signed);
    assert_eq!(nv.pre_prepares.len(), 0, "nothing prepared: O is empty");
    // The primary slips in a batch nobody prepared.
    let pp = PrePrepare::new(
        View(1),
        Seq(1),
        Arc::new(Batch::single(req("evil", 1, "set x=evil"))),
    );
    nv.pre_prepares
        .push(c.replica(R1).sign(Message::PrePrepare(pp)));
    assert_eq!(
        deliver_new_view(&mut c, nv),
        [Rejection::InvalidNewView(NewViewError::WrongPrePrepares)]
    );
    assert!(!c.replica(R3).view_active() || c.replica(R3).view() == View(0));
}

#[test]
fn a_new_view_padded_or_forged_is_rejected() {
    // Each forgery goes to a replica of its own: after one invalid new view
    // the sender's next are dropped unchecked for a timeout (below).
    let (_, signed) = captured_new_view();
    let good = new_view_of(&signed);

    let mut padded = good.clone();
    padded.view_changes.truncate(2);
    padded.view_changes.push(padded.view_changes[0].clone());
    let (mut c, _) = captured_new_view();
    assert!(matches!(
        deliver_new_view(&mut c, padded)[..],
        [Rejection::InvalidNewView(NewViewError::Duplicate { .. })]
    ));
    // Even the genuine new view is now dropped unchecked, for a timeout.
    assert_eq!(
        deliver_new_view(&mut c, good.clone()),
        [Rejection::ViewChangeThrottled]
    );

    let mut short = good.clone();
    short.view_changes.truncate(2);
    let (mut c, _) = captured_new_view();
    assert_eq!(
        deliver_new_view(&mut c, short),
        [Rejection::InvalidNewView(NewViewError::TooFew {
            have: 2,
            need: 3
        })]
    );

    // A view change in R3's own name that R3 never sent, signed by R1.
    let (mut c, _) = captured_new_view();
    let mut forged = good.clone();
    let vc = ViewChange {
        new_view: View(1),
        checkpoint: c.replica(R1).stable_checkpoint().clone(),
        prepared: Vec::new(),
        replica: R0,
    };
    let at = forged
        .view_changes
        .iter()
        .position(|s| matches!(&s.message, Message::ViewChange(v) if v.replica != R1))
        .expect("another replica's view change");
    forged.view_changes[at] = c.replica(R1).sign(Message::ViewChange(vc));
    assert!(matches!(
        deliver_new_view(&mut c, forged)[..],
        [Rejection::InvalidNewView(NewViewError::Unauthentic {
            replica: R0,
            ..
        })]
    ));

    // The genuine one installs.
    let (mut c, _) = captured_new_view();
    assert!(deliver_new_view(&mut c, good).is_empty());
    assert_eq!(
        (c.replica(R3).view(), c.replica(R3).view_active()),
        (View(1), true)
    );
}

#[test]
fn a_view_change_with_a_forged_certificate_is_rejected() {
    let mut c = cluster(4);
    c.submit(R0, req("c1", 1, "set x=1"));
    c.stabilize();
    let mut cert = c
        .replica(R2)
        .prepared_certificate(Seq(1))
        .expect("prepared");
    // R2 claims a batch was prepared that never was: it swaps the batch.
    let forged_pp = PrePrepare::new(
        View(0),
        Seq(1),
        Arc::new(Batch::single(req("c1", 1, "set x=2"))),
    );
    cert.pre_prepare = c.replica(R2).sign(Message::PrePrepare(forged_pp));
    let vc = ViewChange {
        new_view: View(1),
        checkpoint: c.replica(R2).stable_checkpoint().clone(),
        prepared: vec![cert],
        replica: R2,
    };
    c.inject(R2, R3, Message::ViewChange(vc));
    c.set_filter(|e| e.to == R3);
    c.stabilize();
    let got: Vec<Rejection> = rejections(&c.take_events(), R3)
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert!(
        matches!(
            &got[..],
            [Rejection::InvalidViewChange(ViewChangeError::Prepared {
                seq: Seq(1),
                ..
            })]
        ),
        "{got:?}"
    );
}

#[test]
fn a_new_primary_orders_held_requests_only_after_the_new_view() {
    // Checkpoints every 2 numbers. R1 never hears the others' checkpoint
    // votes, so its low watermark stays at 0 after #2 executes everywhere.
    let config = pbft_core::Config::new(4).with_checkpoint_interval(2);
    let mut c = Cluster::new(&config, pbft_core::ClusterAuth::None, |_| {
        KvService::default()
    })
    .expect("valid config");
    c.set_filter(|e| !(e.to == R1 && matches!(e.signed.message, Message::Checkpoint(_))));
    for t in 1..=2 {
        c.submit(R0, req("c1", t, &format!("set x={t}")));
        c.stabilize();
    }
    assert_eq!(c.replica(R1).last_executed(), Seq(2));
    assert_eq!(c.replica(R1).stable_checkpoint().seq, Seq(0));
    assert_eq!(c.replica(R2).stable_checkpoint().seq, Seq(2));
    // R0 falls silent, and R1, the next primary, hears no view change yet.
    c.set_filter(|e| {
        e.from != R0 && !(e.to == R1 && matches!(e.signed.message, Message::ViewChange(_)))
    });
    submit_to_backups(&mut c, &req("c2", 1, "set y=1"));
    c.stabilize();
    tick(&mut c, TIMEOUT);
    assert_eq!(
        (c.replica(R1).view(), c.replica(R1).view_active()),
        (View(1), false)
    );
    // A request reaches R1 while it waits for the view changes: it holds it.
    let held = req("c3", 1, "set z=1");
    c.submit(R1, held.clone());
    c.stabilize();
    c.take_events();
    // The view changes arrive (resent). Installing the new view adopts
    // checkpoint #2 and moves R1's window; only then may R1 order what it
    // holds, after the numbers the new view re-issues.
    c.set_filter(|e| e.from != R0);
    tick(&mut c, TIMEOUT);
    let events = c.take_events();
    for r in [R1, R2, R3] {
        let replica = c.replica(r);
        assert_eq!((replica.view(), replica.view_active()), (View(1), true));
        assert_eq!(replica.service().get("z"), Some("1"), "{r}");
        assert_eq!(replica.service().get("y"), Some("1"), "{r}");
        let outside: Vec<_> = rejections(&events, r)
            .into_iter()
            .filter(|(_, why)| matches!(why, Rejection::OutsideWindow { .. }))
            .collect();
        assert!(outside.is_empty(), "{r} rejected {outside:?}");
    }
    let acked = acks(&events, R1);
    assert!(
        acked
            .iter()
            .any(|o| o.request == held && o.view == View(1) && o.seq > Seq(2)),
        "{acked:?}"
    );
}

#[test]
fn after_an_invalid_view_change_a_peer_waits_a_timeout_before_another_is_checked() {
    let mut c = cluster(4);
    c.submit(R0, req("c1", 1, "set x=1"));
    c.stabilize();
    let genuine = c
        .replica(R2)
        .prepared_certificate(Seq(1))
        .expect("prepared");
    let view_change = |prepared| ViewChange {
        new_view: View(1),
        checkpoint: c.replica(R2).stable_checkpoint().clone(),
        prepared: vec![prepared],
        replica: R2,
    };
    let mut forged = genuine.clone();
    forged.pre_prepare = c.replica(R2).sign(Message::PrePrepare(PrePrepare::new(
        View(0),
        Seq(1),
        Arc::new(Batch::single(req("c1", 1, "set x=2"))),
    )));
    let (bad, good) = (view_change(forged), view_change(genuine));
    c.set_filter(|e| e.to == R3);
    let send = |c: &mut Cluster<KvService>, vc: &ViewChange| -> Vec<Rejection> {
        c.inject(R2, R3, Message::ViewChange(vc.clone()));
        c.stabilize();
        rejections(&c.take_events(), R3)
            .into_iter()
            .map(|(_, r)| r)
            .collect()
    };
    assert!(matches!(
        &send(&mut c, &bad)[..],
        [Rejection::InvalidViewChange(_)]
    ));
    // Within a timeout, even a valid one goes unchecked.
    assert_eq!(send(&mut c, &good), [Rejection::ViewChangeThrottled]);
    for _ in 0..TIMEOUT {
        c.tick(R3);
    }
    c.stabilize();
    c.take_events();
    assert_eq!(send(&mut c, &good), []);
    assert!(c.replica(R3).view_changes().any(|vc| vc.replica == R2));
}
