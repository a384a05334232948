//! Four durable `pbft-node serve --data-dir` replicas on loopback TCP,
//! every one killed with SIGKILL at once under load and started again:
//! every write a client had acknowledged reads back, and new requests
//! commit; and one backup restarted from its directory catches up and is
//! needed.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::{Cluster, NODES};
use serde_json::json;

#[test]
fn every_replica_killed_at_once_under_load_keeps_every_acknowledged_write() {
    let mut cluster = Cluster::start_durable("sigkill");
    let clients = ["c1", "c2"].map(|name| cluster.client(name));
    let stop = AtomicBool::new(false);
    // Each client writes key k-1, k-2, k-3, ... of its own (each the value
    // of its number) and remembers the last that f + 1 replicas
    // acknowledged.
    let outcomes: Vec<(pbft_client::Client, usize, u64)> = thread::scope(|scope| {
        let stop = &stop;
        let writers: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(k, mut client)| {
                scope.spawn(move || {
                    let mut acked = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let n = acked + 1;
                        match client.write(format!("{k}-{n}").as_str(), n) {
                            Ok(()) => acked = n,
                            Err(_) => break,
                        }
                    }
                    (client, k, acked)
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(1500));
        // A power cut: every replica at once, mid-load. The writers start
        // nothing new; the writes in flight finish against the restarted
        // cluster (or fail).
        stop.store(true, Ordering::Relaxed);
        for i in 0..NODES.len() {
            cluster.kill(i);
        }
        thread::sleep(Duration::from_millis(200));
        for i in 0..NODES.len() {
            cluster.spawn(i, None);
        }
        writers
            .into_iter()
            .map(|w| w.join().expect("a writer"))
            .collect()
    });
    // Each client reads its own key back (a client key is used by one
    // client at a time: its timestamps are its own).
    let mut last = None;
    for (mut reader, k, acked) in outcomes {
        assert!(acked > 10, "client {k}: only {acked} writes before the cut");
        // The first, one in the middle and the last acknowledged write.
        for n in [1, acked / 2, acked] {
            let key = format!("{k}-{n}");
            let value = reader
                .read(key.as_str())
                .unwrap_or_else(|e| panic!("{key}: {e}\n{}", cluster.logs()));
            assert_eq!(value, json!(n), "{key}");
        }
        last = Some(reader);
    }
    let mut reader = last.expect("two clients");
    reader
        .write("after", 1)
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(reader.read("after").expect("read"), json!(1));
    // Every replica started again from its directory, in a later view.
    for (i, node) in NODES.iter().enumerate() {
        let log = cluster.log(i);
        assert!(log.contains("restored from"), "{node}: {log}");
    }
}

#[test]
fn a_backup_restarted_from_its_directory_catches_up_and_is_needed() {
    let mut cluster = Cluster::start_durable("one-backup");
    let mut client = cluster.client("c1");
    client.write("x", 1).expect("first write");
    // n3 dies, misses some writes, and starts again from its directory:
    // in a later view than the others, it follows what they commit.
    cluster.kill(2);
    for value in 2..=5 {
        client
            .write("x", value)
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    }
    cluster.spawn(2, None);
    let target = cluster.executed(1).max(cluster.executed(3));
    let started = std::time::Instant::now();
    while cluster.executed(2) < target {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "n3 never caught up to #{target}\n{}",
            cluster.logs()
        );
        client.write("y", common::value_of_time()).expect("a write");
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        cluster.log(2).contains("restored from"),
        "{}",
        cluster.log(2)
    );
    // With n2 dead too, the cluster needs n3.
    cluster.kill(1);
    client
        .cas("x", 5, 6)
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(client.read("x").expect("read"), json!(6));
}
