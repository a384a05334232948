//! `cargo xtask scenario <file or directory>`: runs real replica processes
//! behind a router that plays faults, then checks the outcome. The file
//! format is documented in docs/scenarios.md.

mod check;
pub(crate) mod clients;
pub(crate) mod linearizable;
pub(crate) mod processes;
mod report;
mod run;
mod spec;

use std::path::{Path, PathBuf};

use spec::Scenario;

/// The command line of `cargo xtask scenario`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print one JSON object per scenario instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Scenario files, or directories of `.toml` files (relative to the
    /// current directory).
    #[arg(required = true, value_name = "FILE OR DIRECTORY")]
    pub paths: Vec<PathBuf>,
}

/// Runs every scenario named by `args`, with relative paths taken from
/// `cwd`.
pub fn main(
    args: &Args,
    cwd: &Path,
    build: impl Fn() -> Result<PathBuf, String>,
) -> Result<(), String> {
    let files = scenario_files(&args.paths, cwd)?;
    let scenarios: Vec<Scenario> = files
        .iter()
        .map(|f| Scenario::load(f))
        .collect::<Result<_, _>>()?;
    let binary = build()?;
    let keys = std::env::temp_dir().join(format!("pbft-scenario-keys-{}", std::process::id()));
    let mut failed = Vec::new();
    // A progress bar on stderr over the scenarios; indicatif hides it when
    // stderr is not a terminal (as in CI).
    let progress = indicatif::ProgressBar::new(scenarios.len() as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} scenarios, {elapsed}: {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    for scenario in &scenarios {
        progress.set_message(scenario.name.clone());
        let flags = node_flags(scenario, &binary, &keys)?;
        let mut outcome = run::run(scenario, &binary, |i| flags[i].clone())?;
        // The checks are about the honest replicas.
        if let Some(b) = &scenario.byzantine {
            outcome.statuses.remove(&b.node);
            outcome.executed.remove(&b.node);
        }
        let verdicts = [
            check::agreement(&outcome),
            check::convergence(
                &outcome,
                scenario.checkpoint_interval,
                scenario.byzantine.is_some(),
            ),
            check::liveness(&outcome, scenario.settle_ms),
            check::linearizability(&outcome),
        ];
        progress.suspend(|| report::scenario(scenario, &outcome, &verdicts, args.json));
        progress.inc(1);
        if verdicts.iter().any(|v| !v.passed) {
            failed.push(scenario.name.clone());
        }
    }
    progress.finish_and_clear();
    let _ = std::fs::remove_dir_all(&keys);
    // The overall line; with --json it goes to stderr, so that stdout
    // stays one JSON object per line.
    let summary = report::summary(scenarios.len(), failed.len());
    if args.json {
        eprintln!("{summary}");
    } else {
        println!("{summary}");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("scenarios failed: {}", failed.join(", ")))
    }
}

/// The scenario files `paths` name: each file itself, and the `.toml`
/// files of each directory in name order. A relative path is taken from
/// `cwd`, the directory the command was run from.
fn scenario_files(paths: &[PathBuf], cwd: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        let path = cwd.join(path);
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

/// Each node's command line, generating keys when the scenario is signed.
fn node_flags(scenario: &Scenario, binary: &Path, keys: &Path) -> Result<Vec<Vec<String>>, String> {
    let ids = scenario.node_ids();
    let mut common = vec![
        "--mode".to_string(),
        "replica".into(),
        "--tick-ms".into(),
        scenario.tick_ms.to_string(),
        "--view-change-timeout-ms".into(),
        scenario.view_change_timeout_ms.to_string(),
        "--checkpoint-interval".into(),
        scenario.checkpoint_interval.to_string(),
    ];
    let byzantine = |id: &String, mut flags: Vec<String>| {
        if let Some(b) = scenario.byzantine.as_ref().filter(|b| &b.node == id) {
            flags.extend(["--byzantine".to_string(), b.behaviour.clone()]);
        }
        flags
    };
    let dir = keys.join(
        scenario
            .name
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
    );
    // Each node's data directory, fresh for the run.
    let durable = |id: &String, mut flags: Vec<String>| {
        if scenario.durable {
            let data = dir.join(format!("data-{id}"));
            let _ = std::fs::remove_dir_all(&data);
            flags.extend(["--data-dir".to_string(), data.display().to_string()]);
        }
        flags
    };
    if scenario.auth == "none" {
        common.extend(["--auth".to_string(), "none".to_string()]);
        return Ok(ids
            .iter()
            .map(|id| durable(id, byzantine(id, common.clone())))
            .collect());
    }
    let files = keygen(binary, &ids, &dir)?;
    Ok(ids
        .iter()
        .zip(files)
        .map(|(id, file)| {
            let mut flags = common.clone();
            flags.extend(["--keys".to_string(), file.display().to_string()]);
            durable(id, byzantine(id, flags))
        })
        .collect())
}

/// Generates a fresh key set for `ids` in `dir` with the node binary's
/// `keygen`, and returns each node's key file, in the order of `ids`.
pub(crate) fn keygen(binary: &Path, ids: &[String], dir: &Path) -> Result<Vec<PathBuf>, String> {
    let _ = std::fs::remove_dir_all(dir);
    let status = std::process::Command::new(binary)
        .args(["keygen", "--node-ids", &ids.join(","), "--out"])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run keygen: {e}"))?;
    if !status.success() {
        return Err("keygen failed".into());
    }
    Ok(ids
        .iter()
        .map(|id| dir.join(format!("{id}.keys.json")))
        .collect())
}
