//! Runs one scenario: starts the replicas, plays the workload and the
//! faults, routes every line, then checks the outcome.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::clients::{Clients, Op};
use super::processes::Processes;
use super::spec::{FaultKind, Scenario};

/// What a run produced, for the checks and the report.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Every client operation, answered or not.
    pub ops: Vec<Op>,
    /// How many operations the workload meant to issue.
    pub planned: u64,
    /// Replica-to-replica messages routed (delivered or not).
    pub messages: u64,
    /// When the last fault healed, in milliseconds since the start, if
    /// one did.
    pub last_heal_ms: Option<u64>,
    /// How long the run took.
    pub elapsed_ms: u64,
    /// Per node: `status` replies for numbers 1, 2, ... (live nodes only).
    pub statuses: BTreeMap<String, Vec<Value>>,
    /// Per node: every (number, digest) it logged executing, over the run.
    pub executed: BTreeMap<String, Vec<(u64, String)>>,
}

/// How the links from `from` to `to` (`None`: every node) misbehave.
struct LinkRule {
    from: Option<usize>,
    to: Option<usize>,
    drop: f64,
    duplicate: f64,
    max_delay_ms: u64,
}

impl LinkRule {
    fn covers(&self, from: usize, to: usize) -> bool {
        self.from.is_none_or(|f| f == from) && self.to.is_none_or(|t| t == to)
    }
}

/// The network between the processes, with the faults in force.
struct Network {
    groups: Option<Vec<Vec<usize>>>,
    /// Link rules in force; the last one matching a link applies.
    lossy: Vec<LinkRule>,
    rng: fastrand::Rng,
    delayed: BinaryHeap<Reverse<(Instant, u64, usize, String)>>,
    order: u64,
}

impl Network {
    fn connected(&self, a: usize, b: usize) -> bool {
        match &self.groups {
            None => true,
            Some(groups) => groups.iter().any(|g| g.contains(&a) && g.contains(&b)),
        }
    }
}

/// Runs `scenario` with the node binary at `binary`; `flags(i)` gives
/// node `i`'s command line.
pub fn run(
    scenario: &Scenario,
    binary: &Path,
    flags: impl Fn(usize) -> Vec<String>,
) -> Result<Outcome, String> {
    let ids = scenario.node_ids();
    let n = ids.len();
    let mut procs = Processes::start(binary, (0..n).map(&flags).collect())?;
    let start = Instant::now();
    let index = |name: &str| ids.iter().position(|id| id == name);
    let mut net = Network {
        groups: None,
        lossy: Vec::new(),
        rng: fastrand::Rng::with_seed(scenario.seed),
        delayed: BinaryHeap::new(),
        order: 0,
    };
    let mut outcome = Outcome::default();
    let mut replies: Vec<Value> = Vec::new();
    let init = |procs: &mut Processes, i: usize| {
        let body = json!({"type": "init", "msg_id": 1, "node_id": ids[i], "node_ids": ids});
        procs.write(
            i,
            &json!({"src": "c0", "dest": ids[i], "body": body}).to_string(),
        );
    };
    for i in 0..n {
        init(&mut procs, i);
    }

    let mut faults = scenario.faults.clone();
    faults.sort_by_key(|f| f.at_ms);
    let last_fault_ms = faults.last().map_or(0, |f| f.at_ms);
    let mut next_fault = 0;
    let mut clients = Clients::new(&scenario.workload, n, scenario.seed, start);
    outcome.planned = clients.total();
    let at = |ms: u64| start + Duration::from_millis(ms);
    let deadline = at(last_fault_ms.max(clients.schedule_ms()) + scenario.settle_ms);

    loop {
        let now = Instant::now();
        // Faults that are due.
        while next_fault < faults.len() && now >= at(faults[next_fault].at_ms) {
            let fault = &faults[next_fault];
            match &fault.kind {
                FaultKind::Kill { node } => procs.kill(index(node).unwrap_or(0)),
                FaultKind::Restart { node } => {
                    let i = index(node).unwrap_or(0);
                    procs.restart(i)?;
                    init(&mut procs, i);
                }
                FaultKind::Partition { groups } => {
                    net.groups = Some(
                        groups
                            .iter()
                            .map(|g| g.iter().filter_map(|node| index(node)).collect())
                            .collect(),
                    );
                }
                FaultKind::Heal => net.groups = None,
                FaultKind::Network {
                    from,
                    to,
                    drop,
                    duplicate,
                    max_delay_ms,
                } => net.lossy.push(LinkRule {
                    from: index(from),
                    to: index(to),
                    drop: *drop,
                    duplicate: *duplicate,
                    max_delay_ms: *max_delay_ms,
                }),
                FaultKind::NetworkOk => net.lossy.clear(),
            }
            if fault.kind.heals() {
                outcome.last_heal_ms = Some(fault.at_ms);
            }
            next_fault += 1;
        }
        // Client operations and retries that are due.
        for (to, line) in clients.due(now, &ids) {
            procs.write(to, &line);
        }
        // Delayed messages that are due.
        while let Some(Reverse((when, _, to, _))) = net.delayed.peek() {
            if *when > now {
                break;
            }
            let (to, line) = (
                *to,
                net.delayed.pop().map(|Reverse(d)| d.3).unwrap_or_default(),
            );
            procs.write(to, &line);
        }
        if (clients.done() && next_fault == faults.len()) || now >= deadline {
            break;
        }
        // One printed line, routed.
        let Ok((from, generation, line)) = procs.lines.recv_timeout(Duration::from_millis(5))
        else {
            continue;
        };
        if generation != procs.generation(from) {
            continue; // the output of a killed process
        }
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            return Err(format!(
                "{} printed a line that is not JSON: {line}",
                ids[from]
            ));
        };
        let dest = message["dest"].as_str().unwrap_or_default();
        if let Some(to) = index(dest) {
            outcome.messages += 1;
            route(&mut net, &mut procs, from, to, line);
        } else if !clients.on_reply(&message, now) {
            replies.push(message);
        }
    }
    outcome.ops = std::mem::take(&mut clients.ops);
    net.groups = None;
    net.lossy.clear();
    outcome.statuses = collect_statuses(&mut procs, &mut net, &ids)?;
    outcome.elapsed_ms = start.elapsed().as_millis() as u64;
    // Give the log readers a moment, then take what they saw.
    std::thread::sleep(Duration::from_millis(100));
    for (i, seq, digest) in procs.executed.try_iter() {
        outcome
            .executed
            .entry(ids[i].clone())
            .or_default()
            .push((seq, digest));
    }
    Ok(outcome)
}

/// Delivers a line from node `from` to node `to` through the faults in
/// force.
fn route(net: &mut Network, procs: &mut Processes, from: usize, to: usize, line: String) {
    if !net.connected(from, to) {
        return;
    }
    let rule = net
        .lossy
        .iter()
        .rev()
        .find(|rule| rule.covers(from, to))
        .map(|rule| (rule.drop, rule.duplicate, rule.max_delay_ms));
    let Some((drop, duplicate, max_delay_ms)) = rule else {
        procs.write(to, &line);
        return;
    };
    if net.rng.f64() < drop {
        return;
    }
    let copies = if net.rng.f64() < duplicate { 2 } else { 1 };
    for _ in 0..copies {
        let delay = Duration::from_millis(net.rng.u64(0..=max_delay_ms));
        net.order += 1;
        net.delayed.push(Reverse((
            Instant::now() + delay,
            net.order,
            to,
            line.clone(),
        )));
    }
}

/// Asks every live node for the status of numbers 1, 2, ... until it
/// reports eight empty numbers in a row, routing peer traffic meanwhile.
fn collect_statuses(
    procs: &mut Processes,
    net: &mut Network,
    ids: &[String],
) -> Result<BTreeMap<String, Vec<Value>>, String> {
    // Let the cluster settle first: messages in flight arrive, and a
    // replica that fell behind has time to fetch state (it asks at most
    // once per view-change timeout).
    let quiet = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < quiet {
        if let Ok((from, generation, line)) = procs.lines.recv_timeout(Duration::from_millis(5)) {
            if generation == procs.generation(from) {
                deliver_to_node(procs, net, ids, from, line);
            }
        }
        while let Some(Reverse((_, _, to, line))) = net.delayed.pop() {
            procs.write(to, &line);
        }
    }
    let mut statuses = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        if !procs.alive(i) {
            continue;
        }
        let mut seen = Vec::new();
        let mut empty_run = 0;
        let mut seq = 0u64;
        while empty_run < 8 && seq < 100_000 {
            seq += 1;
            let body = json!({"type": "pbft_status", "msg_id": seq, "sequence_number": seq});
            procs.write(
                i,
                &json!({"src": "checker", "dest": id, "body": body}).to_string(),
            );
            let status = loop {
                let Ok((from, generation, line)) = procs.lines.recv_timeout(Duration::from_secs(5))
                else {
                    return Err(format!("{id} did not answer a status query"));
                };
                if generation != procs.generation(from) {
                    continue;
                }
                let Ok(message) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if message["dest"] == "checker" && message["body"]["in_reply_to"] == seq {
                    break message["body"].clone();
                }
                deliver_to_node(procs, net, ids, from, line);
            };
            empty_run = if status["phase"] == "none" {
                empty_run + 1
            } else {
                0
            };
            seen.push(status);
        }
        seen.truncate(seen.len().saturating_sub(empty_run));
        statuses.insert(id.clone(), seen);
    }
    Ok(statuses)
}

fn deliver_to_node(
    procs: &mut Processes,
    net: &mut Network,
    ids: &[String],
    from: usize,
    line: String,
) {
    let Ok(message) = serde_json::from_str::<Value>(&line) else {
        return;
    };
    let dest = message["dest"].as_str().unwrap_or_default();
    if let Some(to) = ids.iter().position(|id| id == dest) {
        route(net, procs, from, to, line);
    }
}
