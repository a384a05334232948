//! Benchmarking optimised code from `cargo xtask bench`.
//!
//! The `cargo xtask` alias builds xtask in debug, where the core is not
//! optimised and embedded figures would mean nothing. So a full bench run
//! in a debug build runs itself again as `cargo run --release -p xtask --
//! bench ...`, and benchmarks a release build of `pbft-node`. Both honour
//! `CARGO_TARGET_DIR`, as cargo does.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set in the re-run, so that a release build that still has debug
/// assertions enabled cannot re-run itself forever.
const RERUN: &str = "PBFT_BENCH_RERUN";

/// Whether this xtask was built with optimisations.
pub fn optimised() -> bool {
    !cfg!(debug_assertions)
}

/// `release` or `debug`, for reports.
pub fn build_name() -> &'static str {
    if optimised() {
        "release"
    } else {
        "debug"
    }
}

/// Runs `cargo xtask bench <args>` again, built with `--release`, and
/// returns its result.
pub fn rerun_optimised(args: &[String], root: &Path) -> Result<(), String> {
    if env::var_os(RERUN).is_some() {
        return Err("the release re-run of xtask is still a debug build; is \
                    debug-assertions on in the release profile?"
            .into());
    }
    // The release build takes minutes the first time: say so, and let
    // cargo show its progress.
    eprintln!(
        "xtask bench: a debug build benchmarks nothing, so building xtask and pbft-node \
         (release) to run again; the first release build takes a few minutes"
    );
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["run", "--release", "--locked", "--package", "xtask"])
        .args(["--", "bench"])
        .args(args)
        .env(RERUN, "1")
        .current_dir(root)
        .status()
        .map_err(|e| format!("could not run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the release bench run failed ({status})"))
    }
}

/// Builds `pbft-node` with `--release` and returns the binary's path.
pub fn build_node(root: &Path) -> Result<PathBuf, String> {
    eprintln!("bench: building pbft-node (release) ...");
    crate::cargo(&[
        "build",
        "--release",
        "--locked",
        "--quiet",
        "--package",
        "pbft-node",
    ])?;
    // A relative target directory is relative to the workspace root, where
    // cargo ran.
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(|dir| root.join(dir))
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release").join("pbft-node"))
}
