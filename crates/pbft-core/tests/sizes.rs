//! Nothing a client or a faulty peer can send makes a message outgrow the
//! transport: requests and batches are bounded in bytes, so every
//! pre-prepare fits the node's 16 MiB line.

mod common;

use common::*;
use pbft_core::{Cluster, ClusterAuth, Config, Envelope, KvService, Message, Seq, View};

/// The node's transport reads lines of at most 16 MiB: a larger message
/// never arrives.
const LINE: usize = 16 << 20;

fn fits(envelope: &Envelope) -> bool {
    envelope.signed.message.payload_size() < LINE
}

fn cluster_with(config: Config) -> Cluster<KvService> {
    Cluster::new(&config, ClusterAuth::Seeded(7), |_| KvService::default()).expect("valid config")
}

/// Ticks and delivers until every replica in `at` has executed `seq`, or
/// `rounds` rounds pass.
fn run_until_executed(
    c: &mut Cluster<KvService>,
    at: &[pbft_core::ReplicaId],
    seq: Seq,
    rounds: usize,
) {
    for _ in 0..rounds {
        if at.iter().all(|r| c.replica(*r).last_executed() >= seq) {
            return;
        }
        c.tick_all();
        c.stabilize();
    }
}

#[test]
fn a_relay_flood_of_large_requests_does_not_depose_an_honest_primary() {
    let config = Config {
        view_change_timeout: 20,
        ..Config::new(4)
    };
    let mut c = cluster_with(config);
    c.set_filter(fits);
    // A faulty backup relays 300 requests of 70 KB: 256 of them would make
    // a pre-prepare of 18 MB.
    let value = "v".repeat(70_000);
    for t in 0..300u64 {
        let flood = req("flood", t + 1, &format!("set k{t}={value}"));
        c.inject(R3, R0, Message::Forward(flood));
    }
    c.stabilize();
    // Honest clients go on, at every honest backup.
    for t in 1..=3u64 {
        let request = req("c1", t, &format!("set x={t}"));
        for backup in [R1, R2] {
            c.submit(backup, request.clone());
        }
        let executed = c.replica(R1).last_executed().next();
        run_until_executed(&mut c, &[R0, R1, R2], executed, 60);
    }
    for r in [R0, R1, R2] {
        let replica = c.replica(r);
        assert_eq!(replica.view(), View(0), "{r} kept the honest primary");
        assert_eq!(replica.service().get("x"), Some("3"), "{r} executed on");
        assert_eq!(replica.service().get("k299").map(str::len), Some(70_000));
    }
}

#[test]
fn ten_large_values_then_a_view_change_leave_every_replica_executing() {
    let config = Config {
        view_change_timeout: 10,
        max_request_bytes: 2 << 20,
        ..Config::new(4)
    };
    let mut c = cluster_with(config);
    c.set_filter(fits);
    // Ten values of 1.8 MB: a view change carrying their batches would
    // take 18 MB.
    let value = "v".repeat(1_800_000);
    for t in 1..=10u64 {
        c.submit(R0, req("c1", t, &format!("set k{t}={value}")));
        c.stabilize();
    }
    assert!(c.replicas().iter().all(|r| r.last_executed() == Seq(10)));
    // The primary falls silent; the backups suspect it.
    c.set_filter(|e| fits(e) && e.from != R0 && e.to != R0);
    let request = req("c2", 1, "set x=1");
    for backup in [R1, R2, R3] {
        c.submit(backup, request.clone());
    }
    run_until_executed(&mut c, &[R1, R2, R3], Seq(11), 100);
    for r in [R1, R2, R3] {
        let replica = c.replica(r);
        assert_eq!(replica.view(), View(1), "{r} moved to the next view");
        assert_eq!(replica.service().get("x"), Some("1"), "{r} executed on");
    }
    // The old primary comes back and executes new requests too.
    c.set_filter(fits);
    let request = req("c2", 2, "set x=2");
    for r in [R0, R1, R2, R3] {
        c.submit(r, request.clone());
    }
    run_until_executed(&mut c, &[R0, R1, R2, R3], Seq(12), 100);
    for r in [R0, R1, R2, R3] {
        assert_eq!(c.replica(r).service().get("x"), Some("2"), "{r}");
    }
}
