//! `cargo xtask bench`: throughput (committed requests per second), p50 and
//! p99 latency, messages per request and peak memory, for the replicas
//! in-process and as processes. `docs/performance.md` describes the method
//! and keeps the figures.
//!
//! | file | concern |
//! |---|---|
//! | `cli` | the command line, and how many requests each run makes |
//! | `release` | running optimised: the release re-run, a release node |
//! | `embedded` | closed-loop clients on the in-process cluster |
//! | `wire` | the JSON-lines round trip of embedded-wire |
//! | `processes` | closed-loop clients on replica processes behind a router |
//! | `tcp` | closed-loop clients of the client library on `serve` processes |
//! | `soak` | the memory mode: a million requests, memory sampled |
//! | `latency` | a fixed-size latency histogram |
//! | `memory` | resident memory from `/proc` |
//! | `report` | the table and the JSON |

mod cli;
mod embedded;
mod latency;
mod memory;
mod processes;
mod release;
mod report;
mod soak;
mod tcp;
mod wire;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use cli::{Args, Options};

use cli::Mode;
use embedded::{Carrier, InMemory};
use report::{Machine, Report, Row};
use wire::JsonLines;

/// Clients of a loaded run on the in-process cluster: enough to keep the
/// primary's window (256 numbers) full with requests waiting, well below
/// the 4096 it holds back before refusing.
const EMBEDDED_CLIENTS: usize = 1024;

/// Clients of a loaded run on processes.
const PROCESS_CLIENTS: usize = 256;

/// Clients of a lossy run, two per node.
const LOSSY_CLIENTS: usize = 8;

/// The loss of each lossy run, per mille.
const LOSSES: [u32; 3] = [0, 10, 50];

/// Clients of a loaded run over TCP: each has its own connections to the
/// four replicas (and two threads per connection on each side).
const TCP_CLIENTS: usize = 64;

/// Runs the bench as `options` say. `build_debug_node` builds the debug
/// node binary, used when this xtask is itself a debug build.
pub fn main(
    options: Options,
    root: &Path,
    build_debug_node: impl Fn() -> Result<PathBuf, String>,
) -> Result<(), String> {
    // A smoke run stays in the build it was given, so CI compiles nothing
    // more; a real run is only worth it optimised.
    if !options.quick && !release::optimised() {
        return release::rerun_optimised(&options.to_args(), root);
    }
    let started = Instant::now();
    let mut report = Report {
        build: release::build_name(),
        machine: Machine::now(),
        ..Report::default()
    };
    for mode in &options.modes {
        match mode {
            Mode::Embedded => {
                let n = options.count(200_000, 300);
                let row = in_process(*mode, "unbatched", 1, n, &mut InMemory)?;
                report.rows.push(row);
                let n = options.count(500_000, 2_000);
                let row = in_process(*mode, "loaded", EMBEDDED_CLIENTS, n, &mut InMemory)?;
                report.rows.push(row);
            }
            Mode::EmbeddedWire => {
                for (run, clients, n) in [
                    ("unbatched", 1, options.count(50_000, 200)),
                    ("loaded", EMBEDDED_CLIENTS, options.count(150_000, 1_000)),
                ] {
                    let mut codec = JsonLines::new(4)?;
                    let mut row = in_process(*mode, run, clients, n, &mut codec)?;
                    let per_message = codec.bytes as f64 / row.messages.max(1) as f64;
                    row.notes
                        .push(format!("{per_message:.0} bytes of JSON per message"));
                    report.rows.push(row);
                }
            }
            Mode::Processes => {
                let binary = if release::optimised() {
                    release::build_node(root)?
                } else {
                    build_debug_node()?
                };
                let none = processes::flags(None);
                let n = options.count(10_000, 100);
                let plan = processes::Plan::count(1, n);
                let run = on_processes("unbatched, auth none", &binary, &none, plan)?;
                report.push(run);
                let n = options.count(100_000, 500);
                let plan = processes::Plan::count(PROCESS_CLIENTS, n);
                let run = on_processes("loaded, auth none", &binary, &none, plan)?;
                report.push(run);
                report.push(signed(&binary, options.count(30_000, 300), false)?);
                report.push(signed(&binary, options.count(30_000, 300), true)?);
            }
            Mode::Lossy => {
                let binary = if release::optimised() {
                    release::build_node(root)?
                } else {
                    build_debug_node()?
                };
                let secs = if options.quick { 1 } else { 20 };
                let mut lossless = None;
                for loss in LOSSES {
                    let plan = processes::Plan {
                        clients: LOSSY_CLIENTS,
                        requests: options.requests.unwrap_or(u64::MAX),
                        duration: Some(std::time::Duration::from_secs(secs)),
                        spread: true,
                        loss_per_mille: loss,
                        signed_clients: false,
                    };
                    let run = format!("loss {}%", f64::from(loss) / 10.0);
                    let flags = processes::default_timeouts();
                    let (mut row, failure) = on_processes(&run, &binary, &flags, plan)?;
                    row.mode = "lossy";
                    let throughput = row.throughput();
                    let base = *lossless.get_or_insert(throughput);
                    row.notes.insert(
                        0,
                        format!(
                            "{:.0}% of lossless throughput",
                            100.0 * throughput / base.max(1e-9)
                        ),
                    );
                    report.push((row, failure));
                }
            }
            Mode::Tcp => {
                let binary = if release::optimised() {
                    release::build_node(root)?
                } else {
                    build_debug_node()?
                };
                for (run, clients, n) in [
                    ("unbatched, signed", 1, options.count(3_000, 50)),
                    ("loaded, signed", TCP_CLIENTS, options.count(30_000, 300)),
                ] {
                    eprintln!("bench: tcp {run}, {n} requests, {clients} client(s)");
                    report.push(over_tcp(run, &binary, clients, n, false)?);
                }
            }
            Mode::Durable => {
                let binary = if release::optimised() {
                    release::build_node(root)?
                } else {
                    build_debug_node()?
                };
                // In memory and durable side by side, each pair on the same
                // load, so that the ratio compares like with like.
                for (load, clients, n) in [
                    ("unbatched", 1, options.count(2_000, 30)),
                    ("loaded", TCP_CLIENTS, options.count(30_000, 300)),
                ] {
                    let mut base = 0.0;
                    for durable in [false, true] {
                        let run = if durable {
                            format!("{load}, signed, --data-dir")
                        } else {
                            format!("{load}, signed, in memory")
                        };
                        eprintln!("bench: durable {run}, {n} requests, {clients} client(s)");
                        let (mut row, failure) = over_tcp(&run, &binary, clients, n, durable)?;
                        row.mode = "durable";
                        let throughput = row.throughput();
                        if durable {
                            row.notes.insert(
                                0,
                                format!(
                                    "{:.0}% of in-memory throughput",
                                    100.0 * throughput / f64::max(base, 1e-9)
                                ),
                            );
                        } else {
                            base = throughput;
                        }
                        report.push((row, failure));
                    }
                }
            }
            Mode::Memory => {
                let n = options.count(1_000_000, 5_000);
                eprintln!("bench: memory, {n} requests, {EMBEDDED_CLIENTS} clients");
                let (row, check) = soak::run(EMBEDDED_CLIENTS, n)?;
                report.rows.push(row);
                report.memory = Some(check);
            }
        }
    }
    report.elapsed = started.elapsed();
    if options.json {
        println!("{}", report.json());
    } else {
        println!("{}", report.table());
    }
    if report.failures.is_empty() {
        Ok(())
    } else {
        Err(format!("runs failed: {}", report.failures.join("; ")))
    }
}

/// One run on the in-process cluster, with its messages carried by
/// `carrier`.
fn in_process(
    mode: Mode,
    run: &str,
    clients: usize,
    requests: u64,
    carrier: &mut dyn Carrier,
) -> Result<Row, String> {
    eprintln!(
        "bench: {} {run}, {requests} requests, {clients} client(s)",
        mode.name()
    );
    memory::reset_own_peak();
    // Read while the cluster still exists: freeing it may lower the peak
    // the kernel reports.
    let mut peak = None;
    let mut progress = |done| {
        if done == requests {
            peak = memory::own_peak();
        }
    };
    let outcome = embedded::run(clients, requests, carrier, &mut progress)?;
    let mut row = Row::new(mode.name(), run, clients, &outcome.latency);
    row.elapsed = outcome.elapsed;
    row.messages = outcome.messages;
    row.peak = peak.max(memory::own_peak());
    if outcome.refused > 0 {
        row.notes
            .push(format!("{} refusals, submitted again", outcome.refused));
    }
    Ok(row)
}

/// One run on four replica processes.
fn on_processes(
    run: &str,
    binary: &Path,
    flags: &[Vec<String>],
    plan: processes::Plan,
) -> Result<(Row, Option<String>), String> {
    let processes::Plan {
        clients, requests, ..
    } = plan;
    match plan.duration {
        Some(d) => eprintln!("bench: processes {run}, {d:?}, {clients} client(s)"),
        None => eprintln!("bench: processes {run}, {requests} requests, {clients} client(s)"),
    }
    let outcome = processes::run(binary, flags.to_vec(), plan)?;
    let mut row = Row::new("processes", run, clients, &outcome.latency);
    if plan.loss_per_mille > 0 || plan.duration.is_some() {
        row.notes.push(format!(
            "highest view {} ({} view changes at least), {} lines lost",
            outcome.highest_view, outcome.highest_view, outcome.lost
        ));
    }
    row.elapsed = outcome.elapsed;
    row.messages = outcome.messages;
    row.peak = outcome.peak;
    if outcome.errors > 0 {
        row.notes
            .push(format!("{} error replies, sent again", outcome.errors));
    }
    let failure = outcome.stalled.map(|why| {
        row.notes.push(format!("STALLED: {why}"));
        format!("processes {run} stalled: {why}")
    });
    Ok((row, failure))
}

/// One run of four `serve` processes over loopback TCP.
fn over_tcp(
    run: &str,
    binary: &Path,
    clients: usize,
    requests: u64,
    durable: bool,
) -> Result<(Row, Option<String>), String> {
    let outcome = tcp::run(binary, clients, requests, durable)?;
    let mut latency = latency::Histogram::default();
    for l in &outcome.report.latencies {
        latency.record(*l);
    }
    let mut row = Row::new("tcp", run, clients, &latency);
    row.elapsed = outcome.report.elapsed;
    row.peak = outcome.peak;
    let per_request = |cpu: Duration| cpu.as_secs_f64() * 1e6 / latency.len().max(1) as f64;
    if let Some(cpu) = outcome.replica_cpu {
        row.notes.push(format!(
            "{:.0} µs of replica CPU per request (four replicas)",
            per_request(cpu)
        ));
    }
    if let Some(cpu) = outcome.client_cpu {
        row.notes.push(format!(
            "{:.0} µs of client CPU per request",
            per_request(cpu)
        ));
    }
    if let Some(writes) = outcome
        .log_writes
        .filter(|_| durable || run.contains("memory"))
    {
        row.notes.push(format!(
            "{:.2} write calls per request (four replicas; with --data-dir, one per sync)",
            writes as f64 / latency.len().max(1) as f64
        ));
    }
    let failure = outcome.report.failed.first().map(|why| {
        row.notes.push(format!("FAILED: {why}"));
        format!(
            "tcp {run}: {} clients failed: {why}",
            outcome.report.failed.len()
        )
    });
    Ok((row, failure))
}

/// The loaded run with Ed25519 signatures, keys from `pbft-node keygen`.
/// With `clients_sign`, every client signs its requests too, as over TCP,
/// and the run has as many clients as the TCP one: the processes figure
/// that `cargo xtask bench --mode tcp` is compared with.
fn signed(
    binary: &Path,
    requests: u64,
    clients_sign: bool,
) -> Result<(Row, Option<String>), String> {
    let dir = std::env::temp_dir().join(format!("pbft-bench-keys-{}", std::process::id()));
    let ids: Vec<String> = (1..=4).map(|i| format!("n{i}")).collect();
    let files = crate::scenario::keygen(binary, &ids, &dir)?;
    let mut flags = processes::flags(Some(&files));
    let mut plan = processes::Plan::count(PROCESS_CLIENTS, requests);
    let mut name = "loaded, signed";
    if clients_sign {
        let table = dir.join("clients.json");
        std::fs::write(&table, processes::client_keys_json(TCP_CLIENTS))
            .map_err(|e| format!("cannot write {}: {e}", table.display()))?;
        for node in &mut flags {
            node.push("--client-keys".into());
            node.push(table.display().to_string());
        }
        plan = processes::Plan::count(TCP_CLIENTS, requests);
        plan.signed_clients = true;
        name = "loaded, signed clients";
    }
    let row = on_processes(name, binary, &flags, plan);
    let _ = std::fs::remove_dir_all(&dir);
    row
}
