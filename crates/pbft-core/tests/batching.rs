//! Batching and pipelining (§5.1): an idle primary proposes a request at
//! once, alone; with `k` numbers in flight the next waits for `k /
//! max_in_flight` of a full batch, or for the next tick; requests that
//! arrive while `max_in_flight` numbers are in flight go out together as
//! soon as one executes; and batching never changes what a client sees.

mod common;

use std::collections::BTreeMap;

use common::*;
use pbft_core::{
    Cluster, ClusterAuth, Config, ConfigError, ExecResult, KvService, Message, Output, ReplicaId,
    Request, Seq, MAX_BATCH,
};

fn cluster_with(config: &Config) -> Cluster<KvService> {
    Cluster::new(config, ClusterAuth::Seeded(5), |_| KvService::default()).expect("valid")
}

/// The batch sizes R0 executed, in order.
fn batch_sizes(c: &Cluster<KvService>) -> Vec<usize> {
    c.events()
        .iter()
        .filter(|e| e.replica == R0)
        .filter_map(|e| match &e.output {
            Output::Executed(x) => Some(x.batch.requests().len()),
            _ => None,
        })
        .collect()
}

#[test]
fn an_idle_primary_proposes_a_request_at_once_alone() {
    let mut c = cluster(4);
    c.submit(R0, req("c1", 1, "set x=1"));
    // Before anything is delivered: acknowledged, and its pre-prepare out.
    let acked: Vec<u64> = acks(c.events(), R0).iter().map(|o| o.seq.0).collect();
    assert_eq!(acked, vec![1]);
    let proposed: Vec<usize> = c
        .in_flight()
        .filter_map(|e| match &e.signed.message {
            Message::PrePrepare(pp) => pp.batch.as_ref().map(|batch| batch.len()),
            _ => None,
        })
        .collect();
    assert_eq!(proposed, vec![1, 1, 1], "one request, to each backup");
    c.stabilize();
    assert_eq!(batch_sizes(&c), vec![1]);
}

#[test]
fn requests_arriving_while_the_pipeline_is_full_go_out_together() {
    let mut c = cluster_with(&Config::new(4).with_batching(10, 2));
    for t in 1..=30 {
        c.submit(R0, req(&format!("c{t}"), 1, &format!("set k{t}={t}")));
    }
    let numbers: Vec<u64> = acks(c.events(), R0).iter().map(|o| o.seq.0).collect();
    assert_eq!(
        numbers,
        [1, 2, 2, 2, 2, 2],
        "one alone, then five together once half a batch is held; the rest wait"
    );
    c.stabilize();
    // The first goes alone. With one number in flight, the second waits
    // for half a batch (five). Each execution then makes room for one
    // more number, which takes every request waiting, up to ten, as long
    // as there are five; the last four go once nothing is in flight.
    assert_eq!(batch_sizes(&c), vec![1, 5, 10, 10, 4]);
    let events = c.take_events();
    assert_eq!(acks(&events, R0).len(), 30, "every client acknowledged");
    for replica in c.replicas() {
        assert_eq!(replica.last_executed(), Seq(5));
        assert_eq!(replica.service().len(), 30);
    }
}

#[test]
fn a_tick_proposes_what_waits_behind_a_stuck_number() {
    let mut c = cluster_with(&Config::new(4).with_batching(10, 2));
    c.submit(R0, req("c1", 1, "set a=1"));
    // Its messages are lost: the number stays in flight.
    let _lost = c.take_in_flight();
    c.submit(R0, req("c2", 1, "set b=2"));
    let numbers: Vec<u64> = acks(c.events(), R0).iter().map(|o| o.seq.0).collect();
    assert_eq!(numbers, [1], "one request is not half a batch: it waits");
    c.tick(R0);
    let numbers: Vec<u64> = acks(c.events(), R0).iter().map(|o| o.seq.0).collect();
    assert_eq!(numbers, [1, 2], "the tick proposes it whatever its size");
}

/// Runs `requests`, all submitted before anything is delivered, and
/// returns each request's result and the number of sequence numbers used.
fn results(config: &Config, requests: &[Request]) -> (BTreeMap<String, ExecResult>, u64) {
    let mut c = cluster_with(config);
    for request in requests {
        c.submit(R0, request.clone());
    }
    c.stabilize();
    let mut results = BTreeMap::new();
    for event in c.take_events().into_iter().filter(|e| e.replica == R0) {
        if let Output::Executed(x) = event.output {
            for (request, result) in x.batch.requests().iter().zip(x.results) {
                let key = format!("{}/{:?}", request.client.as_str(), request.timestamp);
                results.insert(key, result);
            }
        }
    }
    (results, c.replica(ReplicaId(0)).last_executed().0)
}

#[test]
fn batching_does_not_change_what_clients_see() {
    // Reads, writes and compare-and-sets on a few keys, from clients that
    // each send several requests: the results depend on the order.
    let requests: Vec<Request> = (0..120u64)
        .map(|i| {
            let client = format!("c{}", i % 7);
            let key = format!("k{}", i % 3);
            let op = match i % 4 {
                0 => format!("set {key}={i}"),
                1 => format!("get {key}"),
                2 => format!("cas {key} {}:{} {}", (i - 2).to_string().len(), i - 2, i),
                _ => format!("set {key}=v{i}"),
            };
            Request::new(&client, Some(i / 7 + 1), &op)
        })
        .collect();
    let (batched, numbers) = results(&Config::new(4).with_batching(16, 2), &requests);
    let (alone, one_each) = results(&Config::new(4).with_batching(1, u64::MAX), &requests);
    assert_eq!(one_each, 120);
    assert!(numbers < 20, "batched into {numbers} numbers");
    assert_eq!(batched.len(), 120);
    assert_eq!(batched, alone);
}

#[test]
fn batch_settings_are_checked() {
    for (batch, in_flight) in [(0, 4), (MAX_BATCH + 1, 4), (8, 0)] {
        let config = Config::new(4).with_batching(batch, in_flight);
        assert_eq!(
            config.validate(ReplicaId(0)),
            Err(ConfigError::BadBatching {
                max_batch: batch,
                max_in_flight: in_flight,
            })
        );
    }
    assert_eq!(
        Config::new(4)
            .with_batching(MAX_BATCH, 1)
            .validate(ReplicaId(0)),
        Ok(())
    );
}
