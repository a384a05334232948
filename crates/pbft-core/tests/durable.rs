//! Durable replicas: a replica that crashes with its disk starts again
//! from what it synced, keeps what it told clients and what it promised
//! its peers, and the disk stays bounded by its stable checkpoint.

mod common;

use common::*;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use pbft_core::{
    Batch, Cluster, ClusterAuth, ClusterError, Config, Ed25519Auth, Envelope, KvService, Message,
    Output, PrePrepare, Record, Replica, ReplicaId, RestoreError, Seq, Unauthenticated, View,
};

fn durable(n: usize, k: u64) -> Cluster<KvService> {
    let config = Config::new(n).with_checkpoint_interval(k);
    Cluster::durable(&config, ClusterAuth::Seeded(42), |_| KvService::default())
        .expect("valid cluster")
}

fn crash_all(c: &mut Cluster<KvService>) {
    for r in 0..c.len() as u32 {
        c.crash_with_disk(ReplicaId(r), KvService::default())
            .expect("restores");
    }
}

fn tick(c: &mut Cluster<KvService>, n: u64) {
    for _ in 0..n {
        c.tick_all();
        c.stabilize();
    }
}

#[test]
fn every_replica_crashes_with_its_disk_and_nothing_executed_is_lost() {
    let mut c = durable(4, 4);
    for i in 0..10 {
        c.submit(R0, req(&format!("c{i}"), 1, &format!("set k{i}={i}")));
        c.stabilize();
    }
    for replica in c.replicas() {
        assert_eq!(replica.last_executed(), Seq(10));
        assert_eq!(replica.stable_checkpoint().seq, Seq(8));
    }
    crash_all(&mut c);
    // From its disk alone, before any message: the stable checkpoint's
    // state, and what committed above it executed again.
    for replica in c.replicas() {
        assert_eq!(replica.last_executed(), Seq(10), "r{}", replica.id().0);
    }
    c.stabilize();
    tick(&mut c, 5);
    for replica in c.replicas() {
        for i in 0..10 {
            let value = i.to_string();
            assert_eq!(
                replica.service().get(&format!("k{i}")),
                Some(value.as_str())
            );
        }
        // Restored from disk: not in view 0, where each had voted.
        assert!(replica.view() > View(0), "{:?}", replica.view());
    }
    // The cluster goes on: a new request commits everywhere.
    c.take_events();
    let primary = c.replicas()[0].primary();
    c.submit(primary, req("late", 1, "set late=yes"));
    c.stabilize();
    tick(&mut c, 3);
    for replica in c.replicas() {
        assert_eq!(
            replica.service().get("late"),
            Some("yes"),
            "r{}",
            replica.id().0
        );
        assert_eq!(replica.last_executed(), Seq(11));
    }
}

#[test]
fn a_restored_replica_never_votes_again_in_a_view_it_recorded() {
    let mut c = durable(4, 128);
    c.submit(R0, req("c1", 1, "set x=1"));
    c.stabilize();
    c.crash_with_disk(R2, KvService::default())
        .expect("restores");
    c.take_in_flight();
    // The primary of view 0 proposes the next number. Before the crash R2
    // would have prepared it; after, it may have voted for anything in
    // view 0 that its disk does not show, so it takes no part in view 0.
    let batch = Arc::new(Batch::single(req("c2", 1, "set y=2")));
    let pp = PrePrepare::new(View(0), Seq(2), batch);
    let signed = c.replica(R0).sign(Message::PrePrepare(pp));
    c.deliver(Envelope {
        from: R0,
        to: R2,
        signed,
    });
    assert!(c.replica(R2).view() >= View(1));
    let votes: Vec<String> = c
        .in_flight()
        .filter(|e| e.from == R2)
        .filter(|e| matches!(e.signed.message, Message::Prepare(_) | Message::Commit(_)))
        .map(|e| format!("{:?}", e.signed.message))
        .collect();
    assert!(votes.is_empty(), "{votes:?}");
}

#[test]
fn a_prepared_certificate_survives_the_crash_into_the_view_change() {
    let mut c = durable(4, 128);
    // Commits never arrive: every replica prepares #1, none commits it.
    c.set_filter(|e| !matches!(e.signed.message, Message::Commit(_)));
    c.submit(R0, req("c1", 1, "set x=1"));
    c.stabilize();
    assert_eq!(c.replica(R1).last_executed(), Seq(0));
    c.clear_filter();
    c.set_filter(|_| false);
    c.crash_with_disk(R1, KvService::default())
        .expect("restores");
    // R1's view change, sent on restore, carries #1's certificate.
    let own = c
        .replica(R1)
        .view_changes()
        .find(|vc| vc.replica == R1)
        .expect("R1 changes views")
        .clone();
    let seqs: Vec<Seq> = own
        .prepared
        .iter()
        .filter_map(|cert| cert.pre_prepare())
        .map(|pp| pp.seq)
        .collect();
    assert_eq!(seqs, [Seq(1)]);
    // And so does the view change a second restart sends, one view later.
    let first_view = c.replica(R1).view();
    c.crash_with_disk(R1, KvService::default())
        .expect("restores");
    assert_eq!(c.replica(R1).view(), first_view.next());
    let again = c
        .replica(R1)
        .view_changes()
        .find(|vc| vc.replica == R1)
        .expect("R1 changes views");
    assert_eq!(again.prepared.len(), 1);
    // With the network back, the others join and #1 executes everywhere.
    c.clear_filter();
    tick(&mut c, 40);
    for replica in c.replicas() {
        assert_eq!(replica.service().get("x"), Some("1"), "r{}", replica.id().0);
    }
}

#[test]
fn the_disk_keeps_one_base_and_what_came_after_it() {
    let mut c = durable(4, 4);
    for i in 0..40 {
        c.submit(R0, req(&format!("c{i}"), 1, "set k=v"));
        c.stabilize();
    }
    for r in 0..4 {
        let disk = c.disk(ReplicaId(r)).expect("durable");
        assert!(
            matches!(disk[0], Record::Base(_)),
            "r{r}: {:?}",
            disk[0].kind()
        );
        let bases = disk.iter().filter(|r| matches!(r, Record::Base(_))).count();
        assert_eq!(bases, 1, "r{r}");
        // A base, then at most a window's records: a checkpoint interval
        // of numbers, each prepared and committed.
        assert!(disk.len() <= 1 + 2 * 4 + 1, "r{r}: {} records", disk.len());
        // One sync per step that wrote, at most: never one per record.
        assert!(c.syncs(ReplicaId(r)) <= c.delivered() + 40, "r{r}");
    }
}

#[test]
fn what_was_written_but_not_synced_is_lost_and_nothing_depended_on_it() {
    // One replica alone commits on its own: one request is one step,
    // whose records come first, then the execution (the reply).
    let config = Config::new(1).with_checkpoint_interval(4);
    let single = || {
        Cluster::durable(&config, ClusterAuth::None, |_| KvService::default())
            .expect("valid cluster")
    };
    let request = || pbft_core::Input::Request(req("c1", 1, "set x=1"));
    let mut probe = single();
    let total = probe
        .crash_in_step(R0, request(), usize::MAX)
        .expect("durable");
    for carried in 0..=total {
        let mut c = single();
        c.crash_in_step(R0, request(), carried).expect("durable");
        let answered = c
            .take_events()
            .iter()
            .any(|e| matches!(e.output, Output::Executed(_)));
        c.crash_with_disk(R0, KvService::default())
            .expect("restores");
        let kept = c.replica(R0).service().get("x") == Some("1");
        // Records written but not synced when the crash came are lost
        // (the request is then as if never received); once the reply went
        // out, they were synced and the write stays. The committed
        // record is synced just before the reply, so the write stays
        // exactly when the reply went out.
        assert_eq!(kept, answered, "carried {carried} of {total}");
    }
}

#[test]
fn a_base_whose_state_does_not_match_its_digest_is_refused() {
    let mut c = durable(4, 4);
    for i in 0..5 {
        c.submit(R0, req(&format!("c{i}"), 1, "set k=v"));
        c.stabilize();
    }
    let mut records = c.disk(R1).expect("durable").to_vec();
    let Record::Base(base) = &mut records[0] else {
        panic!("a base first");
    };
    let mut state = (*base.service).clone();
    state.push(b'!');
    base.service = Arc::new(state);
    let config = Config::new(4).with_checkpoint_interval(4);
    let mut out = Vec::new();
    let refused = Replica::restore(
        &config,
        R1,
        KvService::default(),
        Unauthenticated,
        records,
        &mut out,
    );
    assert!(
        matches!(refused, Err(RestoreError::DigestMismatch { seq: Seq(4) })),
        "{:?}",
        refused.err()
    );
}

#[test]
fn only_a_durable_cluster_crashes_with_disks() {
    let mut c = cluster(4);
    assert_eq!(
        c.crash_with_disk(R1, KvService::default()),
        Err(ClusterError::NotDurable)
    );
    // Nor does a replica built with `Replica::new` emit records.
    c.submit(R0, req("c1", 1, "set x=1"));
    c.stabilize();
    assert!(!c
        .take_events()
        .iter()
        .any(|e| matches!(e.output, Output::Persist(_))));
}

#[test]
fn a_base_keeps_what_committed_and_prepared_above_its_checkpoint() {
    // Checkpoint votes wait until #5 and #6 have committed: the base of
    // checkpoint 4 then holds their certificates, and the records before
    // it are gone.
    let mut c = durable(4, 4);
    let held: Rc<RefCell<Vec<Envelope>>> = Rc::default();
    let sink = Rc::clone(&held);
    c.set_filter(move |e| {
        if matches!(e.signed.message, Message::Checkpoint(_)) {
            sink.borrow_mut().push(e.clone());
            return false;
        }
        true
    });
    for i in 0..6 {
        c.submit(R0, req(&format!("c{i}"), 1, &format!("set k{i}={i}")));
        c.stabilize();
    }
    c.clear_filter();
    for e in held.borrow_mut().drain(..) {
        c.deliver(e);
    }
    c.stabilize();
    for r in 0..4 {
        let replica = c.replica(ReplicaId(r));
        assert_eq!(replica.last_executed(), Seq(6));
        assert_eq!(replica.stable_checkpoint().seq, Seq(4));
        let disk = c.disk(ReplicaId(r)).expect("durable");
        assert!(matches!(disk[0], Record::Base(_)), "r{r}");
    }
    c.set_filter(|_| false);
    crash_all(&mut c);
    for r in 0..4 {
        let replica = c.replica(ReplicaId(r));
        assert_eq!(
            replica.last_executed(),
            Seq(6),
            "r{r}: committed certs above the base"
        );
        let own = replica
            .view_changes()
            .find(|vc| vc.replica == ReplicaId(r))
            .expect("changes views");
        let seqs: Vec<Seq> = own
            .prepared
            .iter()
            .filter_map(|cert| cert.pre_prepare())
            .map(|pp| pp.seq)
            .collect();
        assert_eq!(
            seqs,
            [Seq(5), Seq(6)],
            "r{r}: prepared certs above the base"
        );
    }
}

#[test]
fn a_base_keeps_the_view() {
    // After a view change, one checkpoint later, the disk holds a base
    // and nothing of the view records before it: the base must carry the
    // view.
    let mut c = durable(4, 4);
    c.submit(R0, req("first", 1, "set k=v"));
    c.stabilize();
    crash_all(&mut c);
    tick(&mut c, 10);
    let view = c.replica(R0).view();
    assert!(view >= View(1));
    assert!(c
        .replicas()
        .iter()
        .all(|r| r.view_active() && r.view() == view));
    let primary = c.replica(R0).primary();
    for i in 0..3 {
        c.submit(primary, req(&format!("c{i}"), 1, "set k=v"));
        c.stabilize();
    }
    for r in 0..4 {
        let disk = c.disk(ReplicaId(r)).expect("durable");
        assert!(matches!(disk[0], Record::Base(_)), "r{r}");
        assert!(
            !disk.iter().any(|rec| matches!(rec, Record::View(_))),
            "r{r}: the view records went with the base: {:?}",
            disk.iter().map(Record::kind).collect::<Vec<_>>()
        );
    }
    crash_all(&mut c);
    for r in c.replicas() {
        assert!(
            r.view() > view,
            "r{}: {:?} after {:?}",
            r.id().0,
            r.view(),
            view
        );
    }
}

/// Four replicas, R1 held one prepare short of prepared #1: the prepare it
/// lacks, and the cluster.
fn one_prepare_short() -> (Cluster<KvService>, Envelope) {
    let mut c = durable(4, 128);
    let held: Rc<RefCell<Vec<Envelope>>> = Rc::default();
    let sink = Rc::clone(&held);
    c.set_filter(move |e| {
        let to_r1 = e.to == R1 && matches!(e.signed.message, Message::Prepare(_));
        if to_r1 {
            sink.borrow_mut().push(e.clone());
        }
        !to_r1
    });
    c.submit(R0, req("c1", 1, "set x=1"));
    c.stabilize();
    c.clear_filter();
    c.take_in_flight();
    let prepare = held.borrow_mut().remove(0);
    (c, prepare)
}

#[test]
fn a_crash_anywhere_in_a_step_never_leaves_a_commit_sent_without_its_record() {
    // The step that prepares #1 at R1 sends R1's commit. Crash R1 after
    // each prefix of that step's outputs: whenever the commit went out,
    // the restored R1 still carries #1's prepared certificate.
    let (mut probe, prepare) = one_prepare_short();
    let input = |e: &Envelope| pbft_core::Input::Message {
        from: e.from,
        signed: e.signed.clone(),
    };
    let total = probe
        .crash_in_step(R1, input(&prepare), 0)
        .expect("durable");
    assert!(total >= 2, "a record and the commit: {total} outputs");
    let mut sent_commit = 0;
    for carried in 0..=total {
        let (mut c, prepare) = one_prepare_short();
        c.crash_in_step(R1, input(&prepare), carried)
            .expect("durable");
        let commit_out = c
            .take_in_flight()
            .iter()
            .any(|e| e.from == R1 && matches!(e.signed.message, Message::Commit(_)));
        c.crash_with_disk(R1, KvService::default())
            .expect("restores");
        let own = c
            .replica(R1)
            .view_changes()
            .find(|vc| vc.replica == R1)
            .expect("R1 changes views")
            .clone();
        if commit_out {
            sent_commit += 1;
            assert_eq!(own.prepared.len(), 1, "carried {carried} of {total}");
        }
    }
    assert!(sent_commit > 0, "some prefix carries the commit out");
}

#[test]
fn a_disk_written_under_other_keys_or_a_larger_window_is_refused() {
    let mut c = durable(4, 128);
    for i in 0..6 {
        c.submit(R0, req(&format!("c{i}"), 1, "set k=v"));
        c.stabilize();
    }
    let records = c.disk(R1).expect("durable").to_vec();
    let restore = |config: &Config, keys: Ed25519Auth| {
        let mut out = Vec::new();
        Replica::restore(
            config,
            R1,
            KvService::default(),
            keys,
            records.clone(),
            &mut out,
        )
        .err()
    };
    let keys = |seed| Ed25519Auth::from_seed(seed, 4, R1).expect("keys");
    // The same keys and window: it starts.
    let config = Config::new(4).with_checkpoint_interval(128);
    assert_eq!(restore(&config, keys(42)), None);
    // Other keys: the certificates do not check.
    assert!(
        matches!(
            restore(&config, keys(43)),
            Some(RestoreError::Certificate {
                kind: "prepared",
                ..
            })
        ),
        "{:?}",
        restore(&config, keys(43))
    );
    // A window of 4: #5 and #6 are beyond it.
    let small = Config::new(4).with_checkpoint_interval(2);
    assert_eq!(
        restore(&small, keys(42)),
        Some(RestoreError::OutsideWindow {
            seq: Seq(5),
            high: Seq(4)
        })
    );
}
