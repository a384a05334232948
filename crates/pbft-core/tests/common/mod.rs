//! Helpers shared by the core's integration tests.
#![allow(dead_code)]

use pbft_core::{
    Cluster, Event, ExecResult, KvService, Ordered, Output, Refusal, Rejection, ReplicaId, Request,
    Seq, Signed,
};

pub const R0: ReplicaId = ReplicaId(0);
pub const R1: ReplicaId = ReplicaId(1);
pub const R2: ReplicaId = ReplicaId(2);
pub const R3: ReplicaId = ReplicaId(3);

/// A cluster whose replicas sign and verify every message, as a
/// deployment's do.
pub fn cluster(n: usize) -> Cluster<KvService> {
    Cluster::kv_signed(n, 42).expect("valid cluster size")
}

pub fn req(client: &str, timestamp: u64, op: &str) -> Request {
    Request::new(client, Some(timestamp), op)
}

/// The acknowledgements replica `at` produced.
pub fn acks(events: &[Event], at: ReplicaId) -> Vec<Ordered> {
    events
        .iter()
        .filter(|e| e.replica == at)
        .filter_map(|e| match &e.output {
            Output::Ordered(o) => Some(o.clone()),
            _ => None,
        })
        .collect()
}

/// The refusals replica `at` produced.
pub fn refusals(events: &[Event], at: ReplicaId) -> Vec<Refusal> {
    events
        .iter()
        .filter(|e| e.replica == at)
        .filter_map(|e| match &e.output {
            Output::Refused { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// The rejections replica `at` recorded, with the sender.
pub fn rejections(events: &[Event], at: ReplicaId) -> Vec<(ReplicaId, Rejection)> {
    events
        .iter()
        .filter(|e| e.replica == at)
        .filter_map(|e| match &e.output {
            // Every run has votes beyond a quorum, dropped as unneeded.
            Output::Rejected {
                reason: Rejection::Unneeded { .. },
                ..
            } => None,
            Output::Rejected { from, reason, .. } => Some((*from, reason.clone())),
            _ => None,
        })
        .collect()
}

/// Every (seq, results) replica `at` executed, in order.
pub fn executions(events: &[Event], at: ReplicaId) -> Vec<(Seq, Vec<ExecResult>)> {
    events
        .iter()
        .filter(|e| e.replica == at)
        .filter_map(|e| match &e.output {
            Output::Executed(x) => Some((x.seq, x.results.clone())),
            _ => None,
        })
        .collect()
}

/// Puts `signed` on the network from `from`, delivers only what reaches
/// `to` until the network is quiet, and returns what `to` rejected.
pub fn deliver_only(
    c: &mut Cluster<KvService>,
    from: ReplicaId,
    to: ReplicaId,
    signed: Signed,
) -> Vec<Rejection> {
    rejections(&deliver_alone(c, from, to, signed), to)
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

/// Puts `signed` on the network from `from`, delivers only what reaches
/// `to` until the network is quiet, and returns the events meanwhile.
pub fn deliver_alone(
    c: &mut Cluster<KvService>,
    from: ReplicaId,
    to: ReplicaId,
    signed: Signed,
) -> Vec<Event> {
    c.take_events();
    c.inject_signed(from, to, signed);
    c.set_filter(move |e| e.to == to);
    c.stabilize();
    c.clear_filter();
    c.take_events()
}
