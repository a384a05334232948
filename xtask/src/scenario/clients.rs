//! The scenario's clients: what they send, when, and what they get back.
//!
//! Two workloads:
//! - *writes*: `writes` clients each write their own key once (lin-kv),
//!   and `requests` clients each send one seed-protocol `pbft_request`,
//!   answered at pre-prepare;
//! - *mixed*: `clients` clients each run `ops` random reads, writes and
//!   compare-and-sets on a few shared keys (lin-kv), one at a time, so the
//!   history can be checked for linearizability.
//!
//! A client that gets no answer within `retry_ms` sends the same operation,
//! with the same `msg_id`, to every node, as a PBFT client does; the
//! replicas execute it at most once.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::spec::Workload;

/// One operation a client issued.
#[derive(Clone, Debug)]
pub struct Op {
    /// The client's id.
    pub client: String,
    /// Its `msg_id`, increasing per client.
    pub msg_id: u64,
    /// The request body.
    pub body: Value,
    /// When it was first sent.
    pub invoked: Instant,
    /// When it was answered, with the answer's body.
    pub completed: Option<(Instant, Value)>,
    last_sent: Instant,
}

impl Op {
    /// An operation issued by another harness than these clients: its
    /// body, when it was invoked and, if it was answered, when and with
    /// what reply body.
    pub fn recorded(
        client: &str,
        msg_id: u64,
        body: Value,
        invoked: Instant,
        completed: Option<(Instant, Value)>,
    ) -> Op {
        Op {
            client: client.to_string(),
            msg_id,
            body,
            invoked,
            completed,
            last_sent: invoked,
        }
    }

    /// A completed operation, for the checker's tests.
    #[cfg(test)]
    pub fn completed_for_test(
        client: &str,
        body: Value,
        invoked: Instant,
        completed: Instant,
        reply: Value,
    ) -> Op {
        Op {
            client: client.to_string(),
            msg_id: 1,
            body,
            invoked,
            completed: Some((completed, reply)),
            last_sent: invoked,
        }
    }
}

/// The clients of one run.
pub struct Clients {
    workload: Workload,
    start: Instant,
    nodes: usize,
    rng: fastrand::Rng,
    /// Every operation issued, in order of issue.
    pub ops: Vec<Op>,
    /// Per mixed client: how many operations it has issued.
    issued: Vec<u64>,
    /// Writes and seed-protocol requests issued so far.
    writes_issued: u64,
    requests_issued: u64,
}

/// A line to send and the nodes to send it to.
pub type Sends = Vec<(usize, String)>;

impl Clients {
    /// The clients of `workload` against `nodes` nodes.
    pub fn new(workload: &Workload, nodes: usize, seed: u64, start: Instant) -> Clients {
        Clients {
            workload: workload.clone(),
            start,
            nodes,
            rng: fastrand::Rng::with_seed(seed ^ 0x5eed),
            ops: Vec::new(),
            issued: vec![0; workload.clients as usize],
            writes_issued: 0,
            requests_issued: 0,
        }
    }

    /// How many operations the run will issue in all.
    pub fn total(&self) -> u64 {
        u64::from(self.workload.clients) * self.workload.ops
            + self.workload.writes
            + self.workload.requests
    }

    /// Whether every operation was issued and answered.
    pub fn done(&self) -> bool {
        self.ops.len() as u64 == self.total() && self.ops.iter().all(|op| op.completed.is_some())
    }

    /// When the last operation could be issued at the earliest.
    pub fn schedule_ms(&self) -> u64 {
        let simple = self.workload.writes + self.workload.requests;
        simple.max(self.workload.ops) * self.workload.interval_ms
    }

    /// New operations and retries due at `now`.
    pub fn due(&mut self, now: Instant, ids: &[String]) -> Sends {
        let mut sends = Vec::new();
        let elapsed = now.duration_since(self.start).as_millis() as u64;
        let simple = self.workload.writes + self.workload.requests;
        loop {
            let issued = self.writes_issued + self.requests_issued;
            if issued >= simple || elapsed < issued * self.workload.interval_ms {
                break;
            }
            // Writes and seed-protocol requests alternate while both last.
            let request = self.requests_issued < self.workload.requests
                && (self.writes_issued >= self.workload.writes || issued % 2 == 1);
            if request {
                self.requests_issued += 1;
                let r = self.requests_issued;
                let body = json!({"type": "pbft_request", "msg_id": 1, "timestamp": 1,
                                  "operation": format!("set r{r}={r}")});
                self.issue(format!("p{r}"), 1, body, now, ids, &mut sends);
            } else {
                self.writes_issued += 1;
                let w = self.writes_issued;
                let body = json!({"type": "write", "msg_id": w, "key": w, "value": w});
                self.issue(format!("c{w}"), w, body, now, ids, &mut sends);
            }
        }
        {
            for k in 0..self.workload.clients as usize {
                let name = format!("m{k}");
                // A client's latest operation is the only one it may be
                // waiting for; it also paces itself, one per interval.
                let latest = self.ops.iter().rev().find(|op| op.client == name);
                let busy = latest.is_some_and(|op| op.completed.is_none());
                let pace = Duration::from_millis(self.workload.interval_ms);
                let resting = latest.is_some_and(|op| now.duration_since(op.invoked) < pace);
                if busy || resting || self.issued[k] >= self.workload.ops {
                    continue;
                }
                self.issued[k] += 1;
                let body = self.random_op(self.issued[k]);
                self.issue(format!("m{k}"), self.issued[k], body, now, ids, &mut sends);
            }
        }
        let retry = Duration::from_millis(self.workload.retry_ms);
        for op in self.ops.iter_mut().filter(|op| op.completed.is_none()) {
            if now.duration_since(op.last_sent) >= retry {
                op.last_sent = now;
                for (i, id) in ids.iter().enumerate() {
                    sends.push((i, line(&op.client, id, &op.body)));
                }
            }
        }
        sends
    }

    fn issue(
        &mut self,
        client: String,
        msg_id: u64,
        body: Value,
        now: Instant,
        ids: &[String],
        sends: &mut Sends,
    ) {
        let n = self.ops.len();
        let targets: Vec<usize> = match self.workload.to.as_str() {
            "round-robin" => vec![n % self.nodes],
            "all" => (0..self.nodes).collect(),
            node => ids.iter().position(|id| id == node).into_iter().collect(),
        };
        for to in targets {
            sends.push((to, line(&client, &ids[to], &body)));
        }
        self.ops.push(Op {
            client,
            msg_id,
            body,
            invoked: now,
            completed: None,
            last_sent: now,
        });
    }

    fn random_op(&mut self, msg_id: u64) -> Value {
        let key = self.rng.u32(0..self.workload.keys.max(1));
        match self.rng.u8(0..10) {
            0..=3 => json!({"type": "read", "msg_id": msg_id, "key": key}),
            4..=6 => {
                json!({"type": "write", "msg_id": msg_id, "key": key, "value": self.rng.u8(0..5)})
            }
            _ => json!({"type": "cas", "msg_id": msg_id, "key": key,
                        "from": self.rng.u8(0..5), "to": self.rng.u8(0..5)}),
        }
    }

    /// Takes an answer addressed to a client; returns whether it was one.
    pub fn on_reply(&mut self, message: &Value, now: Instant) -> bool {
        let client = message["dest"].as_str().unwrap_or_default();
        let in_reply_to = message["body"]["in_reply_to"].as_u64();
        let Some(op) = self
            .ops
            .iter_mut()
            .find(|op| op.client == client && Some(op.msg_id) == in_reply_to)
        else {
            return false;
        };
        if op.completed.is_none() {
            op.completed = Some((now, message["body"].clone()));
        }
        true
    }
}

fn line(client: &str, dest: &str, body: &Value) -> String {
    json!({"src": client, "dest": dest, "body": body}).to_string()
}
