//! Project automation, run as `cargo xtask <task>`.
//!
//! Tasks:
//! - `ci`: rustfmt check, clippy with warnings denied, every test in the
//!   workspace, the shipped scenarios, the four-host test, the
//!   simulator's self-test, the seeds that once failed and two minutes of
//!   seeds, and a quick benchmark run. This is what CI runs.
//! - `scenario`: runs scenario files against real replica processes (see
//!   `docs/scenarios.md`).
//! - `sim`: deterministic simulation (see `docs/testing.md`).
//! - `bench`: throughput, latency and memory (see `docs/performance.md`).
//! - `netns`: four replicas on four hosts in network namespaces, the
//!   primary partitioned and healed under load (see `docs/testing.md`).
//!
//! Arguments are parsed with clap: every task answers `--help`, and an
//! unknown flag or value is refused before anything runs. Cargo is called
//! through `$CARGO`.

mod bench;
mod children;
mod netns;
mod scenario;
mod sim;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use clap::{Parser, Subcommand};

/// Project automation for the pbft workspace.
#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand, Debug)]
enum Task {
    /// What CI runs: rustfmt check, clippy (warnings denied), every test,
    /// the scenarios, the four-host test, the simulator, a quick benchmark.
    Ci,
    /// Runs scenarios against real replica processes (docs/scenarios.md).
    Scenario(scenario::Args),
    /// Deterministic simulation on the in-process cluster
    /// (docs/testing.md).
    Sim(sim::Args),
    /// Throughput, latency, messages per request and memory
    /// (docs/performance.md).
    Bench(bench::Args),
    /// Four replicas in network namespaces over TCP: the primary cut off
    /// and joined again under load, the history checked (needs root).
    Netns(netns::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse().task {
        Task::Ci => ci(),
        Task::Scenario(args) => scenario::main(&args, &current_dir(), build_node),
        Task::Sim(args) => sim::main(&args),
        Task::Netns(args) => build_node().and_then(|node| netns::main(&args, &node)),
        Task::Bench(args) => bench::main(args.options(), &workspace_root(), build_node),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The CI pipeline. Each step must pass before the next runs.
fn ci() -> Result<(), String> {
    let started = Instant::now();
    let root = workspace_root();
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&["test", "--workspace", "--locked"])?;
    let scenarios = scenario::Args {
        json: false,
        paths: vec![root.join("scenarios")],
    };
    scenario::main(&scenarios, &root, build_node)?;
    netns::main(&netns::Args::default(), &build_node()?)?;
    // The simulator must catch a broken quorum rule, and the real one must
    // survive the seeds that once failed and two minutes of seeds, each
    // through its safety and liveness phases.
    sim::main(&sim::Args {
        self_test: true,
        ..sim::Args::default()
    })?;
    for &seed in sim::REGRESSION_SEEDS {
        sim::main(&sim::Args {
            seed: Some(seed),
            without_disk_faults: true,
            ..sim::Args::default()
        })?;
    }
    sim::main(&sim::Args {
        budget_secs: Some(120),
        from: Some(0),
        ..sim::Args::default()
    })?;
    // A short benchmark run of every mode, so that the benchmark cannot
    // rot; it sets no timing thresholds.
    bench::main(bench::Options::quick(), &root, build_node)?;
    eprintln!("xtask ci: all steps passed in {:.0?}", started.elapsed());
    Ok(())
}

/// Runs `cargo <args>` in the workspace root and fails if it fails.
fn cargo(args: &[&str]) -> Result<(), String> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("could not run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The directory `cargo xtask` was run from: `cargo run` keeps the
/// caller's working directory, so paths on the command line are relative
/// to it.
fn current_dir() -> PathBuf {
    env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// Builds pbft-node and returns the path of the binary.
fn build_node() -> Result<PathBuf, String> {
    cargo(&["build", "--locked", "--quiet", "-p", "pbft-node"])?;
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(|dir| workspace_root().join(dir))
        .unwrap_or_else(|| workspace_root().join("target"));
    Ok(target.join("debug").join("pbft-node"))
}
