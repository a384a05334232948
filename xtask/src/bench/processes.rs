//! Drives four `pbft-node --mode replica` processes behind a router, with
//! closed-loop lin-kv clients, and measures them.
//!
//! The processes are the scenario runner's ([`Processes`]), routed
//! directly: the thread that reads a node's output writes each line
//! addressed to another node to that node's input, with no faults, like a
//! network link of its own. Lines for clients come here. Clients send
//! `write`s to `n1`, the primary of view 0, one outstanding each; `n1`
//! answers `write_ok` once it has executed the write. A request's latency
//! is the wall time from writing the request line to reading the reply
//! line, so it includes the pipes and the routing threads.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use serde::Deserialize;
use serde_json::json;

use pbft_core::RequestSigner;
use pbft_wire::{Body, Envelope};

use super::latency::Histogram;
use super::memory::{self, Kib};
use crate::scenario::processes::{Options, Processes};

/// How long the run may go without a completed request before it is
/// called stalled.
const STALL: Duration = Duration::from_secs(10);

/// What a run measured.
#[derive(Debug)]
pub struct Outcome {
    /// Requests completed.
    pub completed: u64,
    /// From the first request to the last reply.
    pub elapsed: Duration,
    /// Why the run stopped before every request completed, if it did.
    pub stalled: Option<String>,
    /// Per-request latencies.
    pub latency: Histogram,
    /// Replica-to-replica lines routed.
    pub messages: u64,
    /// Error replies (each request was sent again).
    pub errors: u64,
    /// The largest peak resident memory of the four processes.
    pub peak: Option<Kib>,
    /// Replica-to-replica lines the router lost on purpose.
    pub lost: u64,
    /// The highest view any node asked for: 0 when no view changed.
    pub highest_view: u64,
}

/// How a run loads the nodes.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Closed-loop clients.
    pub clients: usize,
    /// Requests to complete (the run stops at the first of the two).
    pub requests: u64,
    /// How long to run, if not until `requests` complete.
    pub duration: Option<Duration>,
    /// Client `c` talks to node `c mod 4`, as Maelstrom's clients talk to
    /// every node; otherwise every client talks to `n1`.
    pub spread: bool,
    /// Lines between nodes the router loses, per mille, on every link.
    pub loss_per_mille: u32,
    /// Each client signs its requests with the key of
    /// [`client_secret`], as the nodes' `--client-keys` table
    /// ([`client_keys_json`]) requires.
    pub signed_clients: bool,
}

impl Plan {
    /// `requests` from `clients` clients, all to `n1`, nothing lost.
    pub fn count(clients: usize, requests: u64) -> Plan {
        Plan {
            clients,
            requests,
            duration: None,
            spread: false,
            loss_per_mille: 0,
            signed_clients: false,
        }
    }
}

/// The name of client `client`.
fn client_name(client: usize) -> String {
    format!("b{client}")
}

/// The secret key client `client` signs with when
/// [`Plan::signed_clients`]: fixed, since only a benchmark uses it.
pub fn client_secret(client: usize) -> [u8; 32] {
    let mut secret = [0x5e; 32];
    secret[..8].copy_from_slice(&(client as u64).to_le_bytes());
    secret
}

/// The `--client-keys` table for `clients` signing clients.
pub fn client_keys_json(clients: usize) -> String {
    let table: serde_json::Map<String, serde_json::Value> = (0..clients)
        .map(|c| {
            let public = pbft_core::Ed25519Auth::public_key(client_secret(c));
            (client_name(c), pbft_core::hex::encode(&public).into())
        })
        .collect();
    serde_json::Value::Object(table).to_string()
}

/// The fields of a line the router looks at; the rest is skipped.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    dest: Cow<'a, str>,
    #[serde(borrow)]
    body: Head<'a>,
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    in_reply_to: Option<u64>,
}

/// One client's request in flight.
struct Outstanding {
    msg_id: u64,
    sent: Instant,
}

/// The node ids.
fn ids() -> Vec<String> {
    (1..=4).map(|i| format!("n{i}")).collect()
}

/// Each node's command line: unsigned, or signed with the key files
/// `keys` (one per node, in order).
pub fn flags(keys: Option<&[PathBuf]>) -> Vec<Vec<String>> {
    // A long view-change timeout: a loaded two-core machine must not make
    // backups suspect a primary that is only slow.
    let common = ["--mode", "replica", "--view-change-timeout-ms", "60000"].map(String::from);
    with_flags(keys, &common)
}

/// Each node's command line with the node's default timeouts, unsigned:
/// the lossy runs, where view changes are part of what is measured.
pub fn default_timeouts() -> Vec<Vec<String>> {
    with_flags(None, &["--mode", "replica"].map(String::from))
}

fn with_flags(keys: Option<&[PathBuf]>, common: &[String]) -> Vec<Vec<String>> {
    (0..4)
        .map(|i| {
            let mut flags = common.to_vec();
            match keys {
                Some(files) => {
                    flags.push("--keys".into());
                    flags.push(files[i].display().to_string());
                }
                None => flags.extend(["--auth".to_string(), "none".to_string()]),
            }
            flags
        })
        .collect()
}

/// Starts the nodes of `flags` from `binary` and pushes writes through
/// them as `plan` says.
pub fn run(binary: &Path, flags: Vec<Vec<String>>, plan: Plan) -> Result<Outcome, String> {
    let Plan {
        clients,
        requests,
        duration,
        spread,
        loss_per_mille,
        signed_clients,
    } = plan;
    let ids = ids();
    // Nodes pass their messages to each other straight from the threads
    // that read them, and log warnings only: nobody reads the execution
    // log here.
    let options = Options {
        log: "warn",
        direct: true,
        loss_per_mille,
        seed: 0x5eed,
        // Lossy runs retransmit and may change views: their traffic is not
        // bounded by the closed loop.
        queued: duration.is_some(),
    };
    let mut procs = Processes::start_with(binary, flags, options)?;
    init(&mut procs, &ids)?;
    let clients = clients.max(1);
    let names: Vec<String> = (0..clients).map(client_name).collect();
    let signers: Vec<Option<RequestSigner>> = (0..clients)
        .map(|c| signed_clients.then(|| RequestSigner::new(&client_secret(c))))
        .collect();
    let senders: Vec<Sender> = names
        .iter()
        .zip(signers)
        .map(|(name, signer)| Sender {
            name: name.clone(),
            signer,
        })
        .collect();
    let mut waiting: Vec<Option<Outstanding>> = (0..clients).map(|_| None).collect();
    let mut outcome = Outcome {
        completed: 0,
        elapsed: Duration::ZERO,
        latency: Histogram::default(),
        messages: 0,
        errors: 0,
        peak: None,
        stalled: None,
        lost: 0,
        highest_view: 0,
    };
    let node = |client: usize| if spread { client % 4 } else { 0 };
    let start = Instant::now();
    let mut sent = 0;
    for (client, slot) in waiting.iter_mut().enumerate() {
        if sent < requests {
            sent += 1;
            *slot = Some(send(&mut procs, &senders[client], node(client), client, 1));
        }
    }
    let mut last_progress = Instant::now();
    while outcome.completed < requests && duration.is_none_or(|d| start.elapsed() < d) {
        let (_, _, text) = match procs.lines.recv_timeout(Duration::from_millis(200)) {
            Ok(printed) => printed,
            Err(RecvTimeoutError::Timeout) => {
                if last_progress.elapsed() > STALL {
                    let of = match duration {
                        Some(_) => String::new(),
                        None => format!(" of {requests}"),
                    };
                    outcome.stalled = Some(format!(
                        "no reply for {STALL:?} after {}{of} requests",
                        outcome.completed
                    ));
                    break;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return Err("the nodes went away".into()),
        };
        let line: Line = serde_json::from_str(&text)
            .map_err(|e| format!("a node printed a line the router cannot read ({e}): {text}"))?;
        let Some(client) = line
            .dest
            .strip_prefix('b')
            .and_then(|c| c.parse::<usize>().ok())
        else {
            continue;
        };
        let Some(outstanding) = waiting.get(client).and_then(Option::as_ref) else {
            continue;
        };
        if line.body.in_reply_to != Some(outstanding.msg_id) {
            continue;
        }
        let next = outstanding.msg_id + 1;
        match line.body.kind.as_ref() {
            "write_ok" => {
                outcome.latency.record(outstanding.sent.elapsed());
                outcome.completed += 1;
                last_progress = Instant::now();
                waiting[client] = None;
                if sent < requests {
                    sent += 1;
                    let to = node(client);
                    waiting[client] = Some(send(&mut procs, &senders[client], to, client, next));
                }
            }
            "error" => {
                outcome.errors += 1;
                if outcome.errors > requests.max(100) {
                    return Err(format!("{} error replies: {text}", outcome.errors));
                }
                // Sent again as the client's next request.
                let to = node(client);
                waiting[client] = Some(send(&mut procs, &senders[client], to, client, next));
            }
            _ => {}
        }
    }
    outcome.elapsed = last_progress.duration_since(start);
    outcome.messages = procs.routed();
    outcome.lost = procs.lost();
    outcome.highest_view = procs.highest_view();
    outcome.peak = (0..ids.len())
        .filter_map(|i| procs.pid(i).and_then(memory::peak_of))
        .max();
    Ok(outcome)
}

/// A client's name, and its key when it signs.
struct Sender {
    name: String,
    signer: Option<RequestSigner>,
}

/// Sends client `client` (`from`) its write number `msg_id`, to node
/// `node`.
fn send(
    procs: &mut Processes,
    from: &Sender,
    node: usize,
    client: usize,
    msg_id: u64,
) -> Outstanding {
    let dest = format!("n{}", node + 1);
    // The clock starts before signing, as the client library's does, and
    // before the write: on a busy machine the write can wake the node and
    // lose the CPU until the reply is back, and a clock read after it
    // would miss the whole request.
    let sent = Instant::now();
    let line = match &from.signer {
        None => {
            let body = json!({"type": "write", "msg_id": msg_id, "key": client, "value": msg_id});
            json!({"src": from.name, "dest": dest, "body": body}).to_string()
        }
        Some(signer) => {
            let mut body = Body::Write {
                msg_id,
                key: json!(client),
                value: json!(msg_id),
                signature: None,
            };
            pbft_client::sign_body(signer, &from.name, &mut body)
                .expect("a write of numbers is a lin-kv request");
            pbft_wire::encode(&Envelope {
                src: from.name.clone(),
                dest,
                body,
            })
        }
    };
    procs.write(node, &line);
    Outstanding { msg_id, sent }
}

/// Sends every node its `init` and waits for every `init_ok`.
fn init(procs: &mut Processes, ids: &[String]) -> Result<(), String> {
    for (i, id) in ids.iter().enumerate() {
        let body = json!({"type": "init", "msg_id": 1, "node_id": id, "node_ids": ids});
        let line = json!({"src": "c0", "dest": id, "body": body});
        procs.write(i, &line.to_string());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ready = 0;
    while ready < ids.len() {
        let timeout = deadline.saturating_duration_since(Instant::now());
        let (from, _, text) = procs
            .lines
            .recv_timeout(timeout)
            .map_err(|_| format!("only {ready} of {} nodes answered init", ids.len()))?;
        match serde_json::from_str::<Line>(&text) {
            Ok(line) if line.body.kind == "init_ok" => ready += 1,
            _ => return Err(format!("{} answered init with {text}", ids[from])),
        }
    }
    Ok(())
}
