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
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use pbft_client::{Answer, Client, ClientError, Operation, Timing};
use serde_json::{json, Value};

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
    let tag = (std::process::id() % 100_000).to_string();
    let third = (std::process::id() % 250) as u8;
    let hosts = match Hosts::make(NODES.len(), &tag, third) {
        Ok(hosts) => hosts,
        Err(why) if std::env::var_os("PBFT_REQUIRE_NETNS").is_some() => {
            return Err(format!(
                "netns: cannot make network namespaces, and PBFT_REQUIRE_NETNS is set: {why}"
            ))
        }
        Err(why) => {
            eprintln!("xtask netns: SKIPPED, network namespaces cannot be made here: {why}");
            return Ok(());
        }
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
    let output = Command::new(node)
        .args(["keygen", "--node-ids", &NODES.join(",")])
        .args(["--addresses", &addresses.join(","), "--clients"])
        .arg(CLIENTS.join(","))
        .arg("--out")
        .arg(dir)
        .output()
        .map_err(|e| format!("cannot run keygen: {e}"))?;
    if !output.status.success() {
        return Err(format!("keygen failed: {output:?}"));
    }
    let mut replicas = Replicas {
        children: Vec::new(),
    };
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
        replicas.children.push(child);
    }
    let phase = Duration::from_secs(args.phase_secs);
    let stop = Arc::new(AtomicBool::new(false));
    let history = Arc::new(Mutex::new(Vec::new()));
    let views = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = CLIENTS
        .iter()
        .enumerate()
        .map(|(k, name)| {
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
            let (stop, history, views) = (stop.clone(), history.clone(), views.clone());
            let name = name.to_string();
            Ok(thread::spawn(move || {
                load(client, &name, k as u64, &stop, &history, &views)
            }))
        })
        .collect::<Result<_, String>>()?;
    eprintln!("xtask netns: four hosts up; load for {phase:?}, then n1 (the primary) is cut off");
    thread::sleep(phase);
    hosts.cut(0)?;
    thread::sleep(phase);
    eprintln!("xtask netns: n1 joins again");
    hosts.heal(0)?;
    thread::sleep(phase);
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker
            .join()
            .map_err(|_| "a client thread panicked".to_string())?;
    }
    let ops = std::mem::take(&mut *history.lock().map_err(|_| "poisoned")?);
    let unanswered: Vec<&Op> = ops.iter().filter(|op| op.completed.is_none()).collect();
    if let Some(op) = unanswered.first() {
        return Err(format!(
            "netns: {} of {} operations got no answer, the first {} of {}",
            unanswered.len(),
            ops.len(),
            op.body,
            op.client
        ));
    }
    let (checked, keys) = linearizable::check(&ops).map_err(|e| format!("netns: {e}"))?;
    let views = views.lock().map_err(|_| "poisoned")?.clone();
    if views.iter().all(|v| *v == 0) {
        return Err("netns: the clients never moved past view 0".into());
    }
    // The old primary catches up with the others once it is back.
    let caught_up = wait_for(Duration::from_secs(20), || {
        let logs: Vec<u64> = NODES
            .iter()
            .map(|n| highest_executed(&dir.join(format!("{n}.log"))))
            .collect();
        logs[0] > 0 && logs[0] >= logs[1..].iter().copied().max().unwrap_or(0)
    });
    if !caught_up {
        return Err("netns: n1 did not catch up after the heal".into());
    }
    eprintln!(
        "xtask netns: {} operations, all answered, {checked} on {keys} keys linearizable; \
         clients ended in views {views:?}; n1 caught up",
        ops.len()
    );
    drop(replicas);
    Ok(())
}

/// The replica processes, killed when dropped.
struct Replicas {
    children: Vec<Child>,
}

impl Drop for Replicas {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The most operations one client issues, and on how many keys in turn:
/// the checker takes at most 63 operations per key, and the clients issue
/// at most `2 * MAX_OPS / KEYS` = 38.
const MAX_OPS: u64 = 300;
const KEYS: u64 = 16;

/// One client's closed loop of reads, writes and compare-and-sets, with a
/// pause after each, on the keys in turn until `stop`, recorded in
/// `history`; its last view goes to `views`.
fn load(
    mut client: Client,
    name: &str,
    seed: u64,
    stop: &AtomicBool,
    history: &Mutex<Vec<Op>>,
    views: &Mutex<Vec<u64>>,
) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut issued = 0;
    // The checker takes at most 63 operations per key.
    while !stop.load(Ordering::Relaxed) && issued < MAX_OPS {
        let key = json!(format!("k{}", issued % KEYS));
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
        thread::sleep(Duration::from_millis(60));
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

/// The highest number in a replica log's `executed #N` and `restored
/// checkpoint #N` lines.
fn highest_executed(log: &PathBuf) -> u64 {
    let text = fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let rest = line
                .split("executed #")
                .nth(1)
                .or_else(|| line.split("restored checkpoint #").nth(1))?;
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or(0)
}
