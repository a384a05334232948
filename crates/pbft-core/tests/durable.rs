//! Durable replicas: a replica that crashes with its disk starts again
//! from what it synced, keeps what it told clients and what it promised
//! its peers, and the disk stays bounded by its stable checkpoint.

mod common;

use common::*;
use std::sync::Arc;

use pbft_core::{
    Batch, Cluster, ClusterAuth, ClusterError, Config, Envelope, KvService, Message, Output,
    PrePrepare, Record, Replica, ReplicaId, RestoreError, Seq, Unauthenticated, View,
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
fn what_was_written_but_not_synced_is_lost_and_costs_nothing_promised() {
    // One replica alone commits on its own: each request is one step whose
    // records sync before its reply.
    let config = Config::new(1).with_checkpoint_interval(4);
    let mut c = Cluster::durable(&config, ClusterAuth::None, |_| KvService::default())
        .expect("valid cluster");
    c.submit(R0, req("c1", 1, "set x=1"));
    let synced = c.disk(R0).expect("durable").len();
    c.crash_with_disk(R0, KvService::default())
        .expect("restores");
    assert_eq!(c.replica(R0).service().get("x"), Some("1"));
    assert!(synced >= 2, "view and committed records: {synced}");
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
