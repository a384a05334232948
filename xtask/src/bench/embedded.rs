//! Drives the in-process cluster (`Cluster::kv(4)`: unauthenticated, the
//! default key-value service) with closed-loop clients, and measures it.
//!
//! Each client has one request outstanding at a time, as in the paper's
//! client (§4.1), and submits it to the primary of view 0. A request is
//! complete when `f + 1` replicas have executed it: the point at which a
//! PBFT client holds `f + 1` matching replies. Its latency is the wall
//! time from `submit` to the delivery that produced the `(f + 1)`-th
//! [`Output::Executed`] holding it; the client then submits its next
//! request at once. With one client that is the unbatched run, with many
//! the loaded one.
//!
//! The network is FIFO: every message in flight is taken off the cluster
//! (`take_in_flight`), passed through a [`Carrier`] (nothing, or the JSON
//! codec for embedded-wire) and delivered, and so on until every request
//! has completed.

use std::time::{Duration, Instant};

use pbft_core::{Cluster, Envelope, KvService, Output, ReplicaId, Request};

use super::latency::Histogram;

/// Carries a message from one replica to another.
pub trait Carrier {
    /// The envelope as the recipient gets it.
    fn carry(&mut self, envelope: Envelope) -> Result<Envelope, String>;
}

/// Passes messages as they are: no serialization.
pub struct InMemory;

impl Carrier for InMemory {
    fn carry(&mut self, envelope: Envelope) -> Result<Envelope, String> {
        Ok(envelope)
    }
}

/// What a run measured.
#[derive(Debug)]
pub struct Outcome {
    /// Requests completed.
    pub completed: u64,
    /// From the first submit to the last completion.
    pub elapsed: Duration,
    /// Per-request latencies.
    pub latency: Histogram,
    /// Replica-to-replica messages delivered.
    pub messages: u64,
    /// Requests the primary refused (overloaded) and that were submitted
    /// again.
    pub refused: u64,
}

/// One client's request in flight.
struct Outstanding {
    timestamp: u64,
    submitted: Instant,
    executions: usize,
}

/// The run in progress.
struct Run {
    cluster: Cluster<KvService>,
    clients: Vec<Option<Outstanding>>,
    names: Vec<String>,
    /// Executions that complete a request: `f + 1`.
    needed: usize,
    requests: u64,
    submitted: u64,
    retry: Vec<usize>,
    outcome: Outcome,
}

/// The primary of view 0, where clients submit.
const PRIMARY: ReplicaId = ReplicaId(0);

/// Pushes `requests` requests through a fresh 4-replica cluster from
/// `clients` closed-loop clients, carrying every message with `carrier`.
/// `progress` is called with the number completed after each completion.
pub fn run(
    clients: usize,
    requests: u64,
    carrier: &mut dyn Carrier,
    progress: &mut dyn FnMut(u64),
) -> Result<Outcome, String> {
    let cluster = Cluster::kv(4).map_err(|e| e.to_string())?;
    let needed = cluster.replica(PRIMARY).quorums().f() + 1;
    let clients = clients.max(1);
    let mut run = Run {
        cluster,
        clients: (0..clients).map(|_| None).collect(),
        names: (0..clients).map(|c| format!("c{c}")).collect(),
        needed,
        requests,
        submitted: 0,
        retry: Vec::new(),
        outcome: Outcome {
            completed: 0,
            elapsed: Duration::ZERO,
            latency: Histogram::default(),
            messages: 0,
            refused: 0,
        },
    };
    let start = Instant::now();
    for client in 0..clients {
        run.submit_next(client, 1);
    }
    while run.outcome.completed < requests {
        let in_flight = run.cluster.take_in_flight();
        if in_flight.is_empty() {
            // Quiet: only refused requests can still be waiting.
            if run.retry.is_empty() {
                return Err(format!(
                    "the cluster went quiet with {} of {requests} requests complete",
                    run.outcome.completed
                ));
            }
            for client in std::mem::take(&mut run.retry) {
                run.resubmit(client);
            }
            continue;
        }
        for envelope in in_flight {
            let envelope = carrier.carry(envelope)?;
            run.cluster.deliver(envelope);
            run.outcome.messages += 1;
            if !run.cluster.events().is_empty() {
                run.handle_events(progress);
            }
        }
    }
    run.outcome.elapsed = start.elapsed();
    Ok(run.outcome)
}

impl Run {
    /// Submits `client`'s request number `timestamp`, if the run needs
    /// more requests.
    fn submit_next(&mut self, client: usize, timestamp: u64) {
        if self.submitted >= self.requests {
            return;
        }
        self.submitted += 1;
        self.clients[client] = Some(Outstanding {
            timestamp,
            submitted: Instant::now(),
            executions: 0,
        });
        self.send(client, timestamp);
    }

    /// Submits `client`'s outstanding request again after a refusal.
    fn resubmit(&mut self, client: usize) {
        if let Some(timestamp) = self.clients[client].as_ref().map(|o| o.timestamp) {
            self.send(client, timestamp);
        }
    }

    fn send(&mut self, client: usize, timestamp: u64) {
        // One key per client, so the service's state stays bounded.
        let operation = format!("set k{client}={timestamp}");
        let request = Request::new(&self.names[client], Some(timestamp), &operation);
        self.cluster.submit(PRIMARY, request);
    }

    fn handle_events(&mut self, progress: &mut dyn FnMut(u64)) {
        for event in self.cluster.take_events() {
            match event.output {
                Output::Executed(executed) => {
                    for request in executed.batch.requests() {
                        self.executed(request, progress);
                    }
                }
                Output::Refused { request, .. } => {
                    if let Some(client) = client_index(&request) {
                        self.outcome.refused += 1;
                        self.retry.push(client);
                    }
                }
                _ => {}
            }
        }
    }

    /// One replica executed `request`.
    fn executed(&mut self, request: &Request, progress: &mut dyn FnMut(u64)) {
        let Some(client) = client_index(request) else {
            return;
        };
        let Some(outstanding) = self.clients.get_mut(client).and_then(Option::as_mut) else {
            return;
        };
        if Some(outstanding.timestamp) != request.timestamp {
            return; // a later execution of a request already complete
        }
        outstanding.executions += 1;
        if outstanding.executions < self.needed {
            return;
        }
        let timestamp = outstanding.timestamp;
        self.outcome.latency.record(outstanding.submitted.elapsed());
        self.clients[client] = None;
        self.outcome.completed += 1;
        progress(self.outcome.completed);
        self.submit_next(client, timestamp + 1);
    }
}

/// The client number in a request's client name, `c<number>`.
fn client_index(request: &Request) -> Option<usize> {
    request.client.as_str().strip_prefix('c')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_completes_every_request() {
        let outcome = run(1, 20, &mut InMemory, &mut |_| {}).unwrap();
        assert_eq!(outcome.completed, 20);
        assert_eq!(outcome.latency.len(), 20);
        assert!(outcome.messages >= 20 * 20, "{}", outcome.messages);
    }

    #[test]
    fn many_clients_complete_every_request() {
        let mut last = 0;
        let outcome = run(50, 300, &mut InMemory, &mut |done| last = done).unwrap();
        assert_eq!((outcome.completed, last), (300, 300));
        assert_eq!(outcome.refused, 0);
    }
}
