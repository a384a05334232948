//! Project automation, run as `cargo xtask <task>`.
//!
//! Tasks:
//! - `ci`: rustfmt check, clippy with warnings denied, every test in the
//!   workspace, the shipped scenarios, the simulator's self-test and two
//!   minutes of seeds, and a quick benchmark run. This is what CI runs.
//! - `scenario`: runs scenario files against real replica processes (see
//!   `docs/scenarios.md`).
//! - `sim`: deterministic simulation (see `docs/testing.md`).
//! - `bench`: throughput, latency and memory (see `docs/performance.md`).
//!
//! Cargo is called through `$CARGO`.

mod bench;
mod scenario;
mod sim;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  ci                  rustfmt check, clippy (warnings denied), every test, the scenarios,
                      the simulator, a quick benchmark
  scenario [--json] <file or directory>...
                      run scenarios against real replica processes
  sim --seed S [--verbose] | --seeds N [--from S] | --budget-secs T [--from S]
      | --self-test [--safety-only]
                      deterministic simulation on the in-process cluster
  bench [--mode embedded|embedded-wire|processes|memory|all] [--requests N]
        [--quick] [--json]
                      throughput, latency, messages per request and memory
  help                this text";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") if args.len() == 1 => ci(),
        Some("scenario") => scenario::main(&args[1..], &workspace_root(), build_node),
        Some("sim") => sim::main(&args[1..]),
        Some("bench") => bench::main(&args[1..], &workspace_root(), build_node),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown task or arguments: {other:?}\n\n{USAGE}")),
        None => Err(USAGE.to_string()),
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
    scenario::main(&["scenarios".to_string()], &workspace_root(), build_node)?;
    // The simulator must catch a broken quorum rule, and the real one must
    // survive two minutes of seeds, each through its safety and liveness
    // phases.
    sim::main(&["--self-test".to_string()])?;
    sim::main(&[
        "--budget-secs".to_string(),
        "120".to_string(),
        "--from".to_string(),
        "0".to_string(),
    ])?;
    // A short benchmark run of every mode, so that the benchmark cannot
    // rot; it sets no timing thresholds.
    bench::main(&["--quick".to_string()], &workspace_root(), build_node)?;
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

/// Builds pbft-node and returns the path of the binary.
fn build_node() -> Result<PathBuf, String> {
    cargo(&["build", "--locked", "--quiet", "-p", "pbft-node"])?;
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    Ok(target.join("debug").join("pbft-node"))
}
