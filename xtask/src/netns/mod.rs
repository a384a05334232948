//! `cargo xtask netns`: four hosts in network namespaces, one `pbft-node
//! serve` replica each, on a bridge; two clients of the client library in
//! the calling namespace. The primary is cut off, then joined again, while
//! the clients run; every operation must complete, the history must be
//! linearizable, the clients must have moved to a new view, and the old
//! primary must catch up after the heal.
//!
//! Making namespaces needs root and `ip` (iproute2). Where they cannot be
//! made the run says so and is skipped, unless `PBFT_REQUIRE_NETNS` is
//! set (CI sets it), when that is a failure.

mod hosts;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use pbft_client::{Answer, Client, ClientError, Operation, Timing};
use serde_json::{json, Value};

use crate::children::KillOnDrop;
use crate::scenario::clients::Op;
use crate::scenario::linearizable;
use hosts::Hosts;

/// `cargo xtask netns` arguments.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Seconds of load before the partition, during it, and after the heal.
    #[arg(long, default_value_t = PHASE_SECS)]
    phase_secs: u64,
}

const PHASE_SECS: u64 = 3;

impl Default for Args {
    fn default() -> Args {
        Args {
            phase_secs: PHASE_SECS,
        }
    }
}

const NODES: [&str; 4] = ["n1", "n2", "n3", "n4"];
const CLIENTS: [&str; 2] = ["c1", "c2"];
const PORT: u16 = 7000;

/// Runs the partition test; `node` is the pbft-node binary.
pub fn main(args: &Args, node: &Path) -> Result<(), String> {
    // A tag of this run for the names it makes, and its subnet.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tag = (std::process::id() ^ nanos) % 100_000;
    let hosts = match Hosts::make(NODES.len(), &tag.to_string(), (tag % 250) as u8) {
        Ok(hosts) => hosts,
        Err(why) if std::env::var_os("PBFT_REQUIRE_NETNS").is_some() => {
            return Err(format!(
                "netns: cannot make network namespaces, and PBFT_REQUIRE_NETNS is set: {why}"
            ))
        }
        // Only a machine that cannot make namespaces at all is skipped;
        // any other failure is one.
        Err(why) if hosts::unavailable(&why) => {
            eprintln!("xtask netns: SKIPPED, network namespaces cannot be made here: {why}");
            return Ok(());
        }
        Err(why) => return Err(format!("netns: {why}")),
    };
    let dir = std::env::temp_dir().join(format!("pbft-netns-{tag}"));
    let _ = fs::remove_dir_all(&dir);
    let result = run(args, node, &hosts, &dir);
    if result.is_ok() {
        let _ = fs::remove_dir_all(&dir);
    } else {
        eprintln!("xtask netns: replica logs are in {}", dir.display());
    }
    result
}

fn run(args: &Args, node: &Path, hosts: &Hosts, dir: &Path) -> Result<(), String> {
    let addresses: Vec<String> = (0..hosts.len())
        .map(|i| format!("{}:{PORT}", hosts.address(i)))
        .collect();
    let names = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    pbft_node::deploy::write(&names(&NODES), &addresses, &names(&CLIENTS), dir)?;
    let mut replicas = KillOnDrop(Vec::new());
    for (i, name) in NODES.iter().enumerate() {
        let log = fs::File::create(dir.join(format!("{name}.log")))
            .map_err(|e| format!("cannot create a log: {e}"))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &hosts.namespace(i)])
            .arg(node)
            .arg("serve")
            .arg("--cluster")
            .arg(dir.join("cluster.toml"))
            .arg("--keys")
            .arg(dir.join(format!("{name}.keys.json")))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        replicas.0.push(child);
    }
    let phase = Duration::from_secs(args.phase_secs);
    let load = Load::start(dir, phase)?;
    eprintln!("xtask netns: four hosts up; load for {phase:?}, then n1 (the primary) is cut off");
    thread::sleep(phase);
    hosts.cut(0)?;
    let cut = Instant::now();
    thread::sleep(phase);
    eprintln!("xtask netns: n1 joins again");
    hosts.heal(0)?;
    let healed = Instant::now();
    thread::sleep(phase);
    let (ops, views) = load.finish()?;
    check_history(&ops, cut, healed)?;
    if views.iter().all(|v| *v == 0) {
        return Err("netns: the clients never moved past view 0".into());
    }
    // The old primary catches up with the others once it is back.
    let executed = |n: &str| {
        let log = fs::read_to_string(dir.join(format!("{n}.log"))).unwrap_or_default();
        pbft_node::replica_node::highest_executed(&log)
    };
    let caught_up = wait_for(Duration::from_secs(20), || {
        let others = NODES[1..].iter().map(|n| executed(n)).max().unwrap_or(0);
        executed(NODES[0]) >= others.max(1)
    });
    if !caught_up {
        return Err("netns: n1 did not catch up after the heal".into());
    }
    eprintln!(
        "xtask netns: {} operations, all answered and linearizable; clients ended in views \
         {views:?}; n1 caught up",
        ops.len()
    );
    Ok(())
}

/// Checks the clients' history: every operation answered, and answered
/// with a result (a value, or a key that does not exist, or a cas whose
/// value was another), some of them while the primary was cut off and
/// some after the heal, and all of them linearizable.
fn check_history(ops: &[Op], cut: Instant, healed: Instant) -> Result<(), String> {
    for op in ops {
        let Some((_, reply)) = &op.completed else {
            return Err(format!("netns: {} of {} got no answer", op.body, op.client));
        };
        let definite = match (op.body["type"].as_str(), reply["type"].as_str()) {
            (_, Some("read_ok" | "write_ok" | "cas_ok")) => true,
            (Some("read"), Some("error")) => reply["code"] == 20,
            (Some("cas"), Some("error")) => reply["code"] == 20 || reply["code"] == 22,
            _ => false,
        };
        if !definite {
            return Err(format!(
                "netns: {} of {} was answered {reply}",
                op.body, op.client
            ));
        }
    }
    let during = ops
        .iter()
        .filter(|op| op.invoked >= cut && op.completed.as_ref().is_some_and(|c| c.0 < healed))
        .count();
    let after = ops.iter().filter(|op| op.invoked >= healed).count();
    if during == 0 || after == 0 {
        return Err(format!(
            "netns: {during} operations completed while n1 was cut off and {after} began \
             after the heal; both must be some"
        ));
    }
    let (checked, keys) = linearizable::check(ops).map_err(|e| format!("netns: {e}"))?;
    if checked != ops.len() {
        return Err(format!(
            "netns: the checker took {checked} of {} operations",
            ops.len()
        ));
    }
    eprintln!("xtask netns: {checked} operations on {keys} keys, {during} during the cut");
    Ok(())
}

/// The clients' threads and what they record; they stop, and are joined,
/// when the load is finished or dropped.
struct Load {
    stop: Arc<AtomicBool>,
    history: Arc<Mutex<Vec<Op>>>,
    views: Arc<Mutex<Vec<u64>>>,
    workers: Vec<thread::JoinHandle<()>>,
}

impl Load {
    /// One closed-loop client thread per client of the deployment in
    /// `dir`, for three phases of `phase`.
    fn start(dir: &Path, phase: Duration) -> Result<Load, String> {
        let mut load = Load {
            stop: Arc::new(AtomicBool::new(false)),
            history: Arc::new(Mutex::new(Vec::new())),
            views: Arc::new(Mutex::new(Vec::new())),
            workers: Vec::new(),
        };
        // Enough keys that no key gets more operations than the checker
        // takes (63), at one operation per PAUSE per client.
        let per_client = 3 * phase.as_millis() as u64 / PAUSE.as_millis() as u64 + 1;
        let keys = (CLIENTS.len() as u64 * per_client).div_ceil(60).max(1);
        for (k, name) in CLIENTS.iter().enumerate() {
            let client = Client::open(
                &dir.join("cluster.toml"),
                &dir.join(format!("{name}.client-key.json")),
                0,
            )
            .map_err(|e| e.to_string())?
            .with_timing(Timing {
                retry: Duration::from_millis(500),
                deadline: Duration::from_secs(20),
            });
            let (stop, history, views) =
                (load.stop.clone(), load.history.clone(), load.views.clone());
            let name = name.to_string();
            load.workers.push(thread::spawn(move || {
                run_client(client, &name, k as u64, keys, &stop, &history, &views)
            }));
        }
        Ok(load)
    }

    /// Stops the clients; what they recorded.
    fn finish(mut self) -> Result<(Vec<Op>, Vec<u64>), String> {
        self.stop_and_join()?;
        let ops = std::mem::take(&mut *self.history.lock().map_err(|_| "poisoned")?);
        let views = self.views.lock().map_err(|_| "poisoned")?.clone();
        Ok((ops, views))
    }

    fn stop_and_join(&mut self) -> Result<(), String> {
        self.stop.store(true, Ordering::Relaxed);
        let mut panicked = false;
        for worker in self.workers.drain(..) {
            panicked |= worker.join().is_err();
        }
        if panicked {
            return Err("a client thread panicked".into());
        }
        Ok(())
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// The pause after each operation of a client.
const PAUSE: Duration = Duration::from_millis(60);

/// One client's closed loop of reads, writes and compare-and-sets, with a
/// pause after each, on `keys` keys in turn until `stop`, recorded in
/// `history`; its last view goes to `views`.
fn run_client(
    mut client: Client,
    name: &str,
    seed: u64,
    keys: u64,
    stop: &AtomicBool,
    history: &Mutex<Vec<Op>>,
    views: &Mutex<Vec<u64>>,
) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut issued = 0;
    while !stop.load(Ordering::Relaxed) {
        let key = json!(format!("k{}", issued % keys));
        issued += 1;
        let operation = match rng.usize(0..3) {
            0 => Operation::Read { key },
            1 => Operation::Write {
                key,
                value: json!(rng.u8(0..5)),
            },
            _ => Operation::Cas {
                key,
                from: json!(rng.u8(0..5)),
                to: json!(rng.u8(0..5)),
            },
        };
        let body = request_body(&operation);
        let invoked = Instant::now();
        let result = client.invoke(operation);
        let completed = reply_body(&body, result).map(|reply| (Instant::now(), reply));
        let op = Op::recorded(name, client.last_timestamp(), body, invoked, completed);
        if let Ok(mut history) = history.lock() {
            history.push(op);
        }
        thread::sleep(PAUSE);
    }
    if let Ok(mut views) = views.lock() {
        views.push(client.view());
    }
}

/// The lin-kv body the checker reads an operation from.
fn request_body(operation: &Operation) -> Value {
    match operation {
        Operation::Read { key } => json!({"type": "read", "key": key}),
        Operation::Write { key, value } => json!({"type": "write", "key": key, "value": value}),
        Operation::Cas { key, from, to } => {
            json!({"type": "cas", "key": key, "from": from, "to": to})
        }
    }
}

/// The reply body the checker reads an outcome from; `None` when the
/// outcome is unknown.
fn reply_body(body: &Value, result: Result<Answer, ClientError>) -> Option<Value> {
    match result {
        Ok(Answer::Value(value)) => Some(json!({"type": "read_ok", "value": value})),
        Ok(_) => {
            let kind = format!("{}_ok", body["type"].as_str().unwrap_or("write"));
            Some(json!({ "type": kind }))
        }
        Err(ClientError::Refused { code, .. }) => Some(json!({"type": "error", "code": code})),
        Err(_) => None,
    }
}

/// Whether `done` held within `limit`, asked every 100 ms.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    done()
}
