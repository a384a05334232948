//! Client requests: refusal at intake, and at-most-once ordering and
//! execution of each `(client, timestamp)` (§4.1).

mod common;

use std::sync::Arc;

use common::*;
use pbft_core::{
    Batch, Cluster, ClusterAuth, Config, ExecResult, Message, PrePrepare, Refusal, Seq, Service,
    View,
};

/// A service whose every operation bumps a counter, so double execution
/// shows.
#[derive(Default)]
struct Counter(u64);

impl Service for Counter {
    fn check(&self, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn execute(&mut self, _: &str) -> ExecResult {
        self.0 += 1;
        ExecResult::Value(self.0.to_string())
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.to_be_bytes().to_vec()
    }
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let bytes = <[u8; 8]>::try_from(snapshot).map_err(|_| "8 bytes expected".to_string())?;
        self.0 = u64::from_be_bytes(bytes);
        Ok(())
    }
}

#[test]
fn a_retry_after_execution_gets_the_same_number_and_is_not_reordered() {
    let mut c = cluster(4);
    c.submit(R0, req("c1", 7, "set x=1"));
    c.stabilize();
    c.take_events();
    c.submit(R0, req("c1", 7, "set x=1"));
    assert_eq!(acks(c.events(), R0)[0].seq, Seq(1));
    assert_eq!(c.in_flight().count(), 0, "nothing new is proposed");
    // §4.1: the retry gets the executed request's reply again.
    let answered: Vec<_> = c
        .events()
        .iter()
        .filter_map(|e| match &e.output {
            pbft_core::Output::Answered { seq, result, .. } => Some((*seq, result.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(answered, [(Seq(1), ExecResult::Ok)]);
    // A backup knows the answer too.
    c.submit(R3, req("c1", 7, "set x=1"));
    assert_eq!(acks(c.events(), R3)[0].seq, Seq(1));
    c.stabilize();
    assert!(c.replicas().iter().all(|r| r.last_executed() == Seq(1)));
}

#[test]
fn a_retry_while_in_progress_gets_the_same_number() {
    let mut c = cluster(4);
    c.submit(R0, req("c1", 1, "set x=1"));
    c.submit(R0, req("c1", 1, "set x=1"));
    let seqs: Vec<Seq> = acks(c.events(), R0).iter().map(|a| a.seq).collect();
    assert_eq!(seqs, [Seq(1), Seq(1)]);
    c.stabilize();
    assert_eq!(
        c.replica(R2).status(Seq(2)).phase,
        pbft_core::SlotPhase::None
    );
}

#[test]
fn a_request_older_than_the_clients_latest_is_refused() {
    let mut c = cluster(4);
    c.submit(R0, req("c1", 2, "set x=2"));
    c.stabilize();
    c.take_events();
    c.submit(R1, req("c1", 1, "set x=1"));
    assert_eq!(refusals(c.events(), R1), [Refusal::Stale { latest: 2 }]);
    assert_eq!(c.in_flight().count(), 0);
}

#[test]
fn an_operation_outside_the_grammar_is_refused_at_intake() {
    let mut c = cluster(4);
    c.submit(R0, req("c1", 1, "increment x"));
    assert!(matches!(
        refusals(c.events(), R0)[..],
        [Refusal::InvalidOperation(_)]
    ));
    assert_eq!(c.in_flight().count(), 0, "nothing is proposed");
}

#[test]
fn a_request_ordered_twice_by_a_faulty_primary_executes_once() {
    let mut c = Cluster::new(&Config::new(4), ClusterAuth::Seeded(3), |_| {
        Counter::default()
    })
    .unwrap();
    let batch = Arc::new(Batch::single(req("c1", 1, "bump")));
    for seq in [1, 2] {
        for backup in [R1, R2, R3] {
            let pp = PrePrepare::new(View(0), Seq(seq), Arc::clone(&batch));
            c.inject(R0, backup, Message::PrePrepare(pp));
        }
    }
    c.stabilize();
    let events = c.take_events();
    for backup in [R1, R2, R3] {
        let runs = executions(&events, backup);
        assert_eq!(runs.len(), 2, "both numbers commit");
        // The second execution returns the first one's result.
        assert_eq!(runs[0].1, [ExecResult::Value("1".into())]);
        assert_eq!(runs[1].1, [ExecResult::Value("1".into())]);
        assert_eq!(c.replica(backup).service().0, 1, "executed once");
    }
}

#[test]
fn an_ordered_invalid_operation_executes_to_the_same_error_everywhere() {
    let mut c = cluster(4);
    let batch = Arc::new(Batch::single(req("c1", 1, "frobnicate")));
    for backup in [R1, R2, R3] {
        let pp = PrePrepare::new(View(0), Seq(1), Arc::clone(&batch));
        c.inject(R0, backup, Message::PrePrepare(pp));
    }
    c.stabilize();
    let results: Vec<_> = [R1, R2, R3]
        .iter()
        .map(|r| c.replica(*r).status(Seq(1)).results)
        .collect();
    assert!(matches!(&results[0], Some(r) if matches!(r[..], [ExecResult::Error(_)])));
    assert!(results.iter().all(|r| *r == results[0]));
}

/// Four replicas that take requests of at most 1000 bytes, and a request
/// over that limit.
fn small_requests_only() -> (Cluster<pbft_core::KvService>, pbft_core::Request) {
    let config = Config {
        max_request_bytes: 1000,
        ..Config::new(4)
    };
    let c = Cluster::new(&config, ClusterAuth::Seeded(5), |_| {
        pbft_core::KvService::default()
    })
    .expect("a valid configuration");
    let big = req("c1", 1, &format!("set x={}", "v".repeat(1000)));
    (c, big)
}

#[test]
fn a_request_over_the_size_limit_is_refused_at_intake_and_never_relayed() {
    let (mut c, big) = small_requests_only();
    let size = big.size();
    for at in [R0, R1] {
        c.submit(at, big.clone());
        assert_eq!(
            refusals(c.events(), at),
            [Refusal::TooLarge { size, limit: 1000 }]
        );
        c.take_events();
    }
    assert_eq!(c.in_flight().count(), 0, "neither proposed nor relayed");
    // One that fits goes through.
    c.submit(R1, req("c1", 2, "set x=1"));
    c.stabilize();
    assert!(c.replicas().iter().all(|r| r.last_executed() == Seq(1)));
}

#[test]
fn a_relayed_or_pre_prepared_request_over_the_limit_is_rejected() {
    let (mut c, big) = small_requests_only();
    let size = big.size();
    let too_large = pbft_core::Rejection::RequestTooLarge { size, limit: 1000 };
    let forward = c.replica(R1).sign(Message::Forward(big.clone()));
    assert_eq!(
        deliver_only(&mut c, R1, R0, forward),
        std::slice::from_ref(&too_large)
    );
    let pp = PrePrepare::new(View(0), Seq(1), Arc::new(Batch::single(big)));
    let pp = c.replica(R0).sign(Message::PrePrepare(pp));
    assert_eq!(deliver_only(&mut c, R0, R1, pp), [too_large]);
    c.stabilize();
    assert!(c.replicas().iter().all(|r| r.last_executed() == Seq(0)));
}
