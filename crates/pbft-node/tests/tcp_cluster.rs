//! Four `pbft-node serve` processes on loopback TCP, used through the
//! client library: writes and reads; the primary killed and the client
//! served in a new view; a backup killed, restarted, caught up and needed;
//! and Byzantine replicas that cannot make the client accept a wrong
//! result.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{value_of_time, Cluster};
use pbft_client::ClientError;
use serde_json::json;

#[test]
fn the_client_is_served_through_a_primary_crash_and_a_backup_restart() {
    let mut cluster = Cluster::start("crashes", &[]);
    let mut client = cluster.client("c1");
    client.write("x", 1).expect("first write");
    assert_eq!(client.read("x").expect("read"), json!(1));
    assert_eq!(client.view(), 0);

    // The primary of view 0 dies: the client's next operations succeed in
    // a new view, and the client learns it.
    cluster.kill(0);
    client
        .write("x", 2)
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert!(client.view() >= 1, "view {}", client.view());
    assert_eq!(client.read("x").expect("read"), json!(2));

    // It comes back; then a backup dies and misses some operations.
    cluster.spawn(0, None);
    cluster.kill(2);
    for value in 3..=6 {
        client
            .write("x", value)
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    }
    cluster.spawn(2, None);
    let target = cluster.executed(1).max(cluster.executed(3));
    let started = Instant::now();
    while cluster.executed(2) < target {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "n3 never caught up to #{target}\n{}",
            cluster.logs()
        );
        // Traffic drives the catch-up, as a live cluster has.
        client.write("y", value_of_time()).expect("a write");
        thread::sleep(Duration::from_millis(50));
    }

    // With n2 dead too, the cluster needs n3: it is a working replica
    // again, and the state it caught up on is the cluster's.
    cluster.kill(1);
    client
        .cas("x", 6, 7)
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(client.read("x").expect("read"), json!(7));
}

#[test]
fn a_primary_that_lies_to_clients_cannot_make_the_client_accept_a_wrong_result() {
    // The primary of view 0 answers first, and wrongly: forged values,
    // successes as failures and failures as successes.
    let cluster = Cluster::start("wrong-results", &[(0, "wrong-results")]);
    let mut client = cluster.client("c1");
    client.write("k", 10).expect("write");
    assert_eq!(client.read("k").expect("read"), json!(10));
    client.cas("k", 10, 11).expect("a cas that holds");
    assert!(
        matches!(
            client.cas("k", 10, 12),
            Err(ClientError::Refused { code: 22, .. })
        ),
        "a cas that does not hold fails"
    );
    assert!(
        matches!(
            client.read("missing"),
            Err(ClientError::Refused { code: 20, .. })
        ),
        "a missing key is missing"
    );
    assert_eq!(client.read("k").expect("read"), json!(11));
}

#[test]
fn an_equivocating_primary_cannot_make_the_client_accept_a_wrong_result() {
    let cluster = Cluster::start("equivocate", &[(0, "equivocate")]);
    let mut client = cluster.client("c2");
    for value in 0..5 {
        client
            .write("e", value)
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        assert_eq!(client.read("e").expect("read"), json!(value));
    }
}
