//! The command line of `cargo xtask`: every task answers `--help` with
//! exit status 0 and does nothing else, and a mistyped flag or value is
//! refused at once, with a non-zero status and a message that names it.

use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        // Nothing here may reach cargo: a task that tried would fail.
        .env("CARGO", "false")
        .output()
        .expect("xtask runs")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn every_task_answers_help() {
    for task in ["ci", "scenario", "sim", "bench"] {
        let output = xtask(&[task, "--help"]);
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(0), "{task} --help: {stderr}");
        assert!(
            stdout.contains(&format!("Usage: cargo xtask {task}")),
            "{task} --help prints its usage: {stdout}"
        );
    }
    for args in [&["--help"][..], &["help"], &["help", "sim"]] {
        let output = xtask(args);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
    }
}

#[test]
fn bench_help_lists_every_mode() {
    let output = xtask(&["bench", "--help"]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    for mode in [
        "embedded",
        "embedded-wire",
        "processes",
        "lossy",
        "memory",
        "all",
    ] {
        assert!(stdout.contains(mode), "bench --help lists {mode}: {stdout}");
    }
}

#[test]
fn a_typo_is_refused_and_named() {
    for (args, named) in [
        (&["ci", "--fast"][..], "--fast"),
        (&["scenario", "--jsn", "scenarios"], "--jsn"),
        (&["sim", "--sed", "5"], "--sed"),
        (&["sim", "--seed", "five"], "five"),
        (&["bench", "--quik"], "--quik"),
        (&["bench", "--mode", "fast"], "fast"),
        (&["simulate"], "simulate"),
    ] {
        let output = xtask(args);
        let (stdout, stderr) = text(&output);
        assert!(!output.status.success(), "{args:?} must be refused");
        assert!(
            stderr.contains(named),
            "{args:?}: the message names {named}: {stderr}"
        );
        assert!(stdout.is_empty(), "{args:?} ran something: {stdout}");
    }
}

#[test]
fn contradictions_are_refused() {
    for args in [
        &["sim", "--seed", "1", "--seeds", "3"][..],
        &["sim", "--self-test", "--seed", "1"],
        &["sim", "--seeds", "3", "--verbose"],
        &["scenario"],
        &[],
    ] {
        let output = xtask(args);
        assert!(!output.status.success(), "{args:?} must be refused");
        assert!(text(&output).0.is_empty(), "{args:?} ran something");
    }
}

#[test]
fn scenario_paths_are_relative_to_the_current_directory() {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let scenario = |path: &str| {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["scenario", path])
            .current_dir(&docs)
            .env("CARGO", "false")
            .output()
            .expect("xtask runs")
    };
    // The file is found and read; the run stops only where it builds the
    // node, since cargo is `false` here.
    let (_, stderr) = text(&scenario("../scenarios/01-happy-path.toml"));
    assert!(
        stderr.contains("cargo build") && !stderr.contains("cannot read"),
        "{stderr}"
    );
    let (_, stderr) = text(&scenario("../scenarios"));
    assert!(stderr.contains("cargo build"), "{stderr}");
    // A path that is right only from the workspace root is not found from
    // here, and the message says where it looked.
    let (_, stderr) = text(&scenario("scenarios/01-happy-path.toml"));
    assert!(
        stderr.contains("cannot read") && stderr.contains("docs/scenarios/01-happy-path.toml"),
        "{stderr}"
    );
}

/// A full bench run in a debug build builds a release xtask first, which
/// takes minutes: it says so before it starts, and cargo's own progress
/// is not hidden.
#[cfg(unix)]
#[test]
fn bench_says_it_builds_before_it_builds() {
    use std::os::unix::fs::PermissionsExt;

    let dir = std::env::temp_dir().join(format!("xtask-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let log = dir.join("cargo-args");
    let fake = dir.join("cargo");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$@\" >> '{}'\nexit 1\n", log.display()),
    )
    .expect("fake cargo");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["bench", "--mode", "embedded"])
        .env("CARGO", &fake)
        .output()
        .expect("xtask runs");
    let (_, stderr) = text(&output);
    let args = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!output.status.success(), "the fake cargo fails");
    assert!(
        stderr.contains("building") && stderr.contains("release"),
        "{stderr}"
    );
    assert!(args.starts_with("run --release"), "{args}");
    assert!(args.contains("bench --mode embedded"), "{args}");
    assert!(!args.contains("--quiet"), "cargo's progress shows: {args}");
}

#[test]
fn sim_verbose_shows_the_fault_profile() {
    let output = xtask(&["sim", "--seed", "1", "--safety-only", "--verbose"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains("sim: seed 1 draws this fault profile:"),
        "{stdout}"
    );
    for aspect in [
        "replicas (f = ",
        "network in the safety phase:",
        "byzantine:",
        "crash:",
        "partition:",
    ] {
        assert!(stdout.contains(aspect), "shows {aspect}: {stdout}");
    }
    let (quiet, _) = text(&xtask(&["sim", "--seed", "1", "--safety-only"]));
    assert!(
        !quiet.contains("fault profile"),
        "only with --verbose: {quiet}"
    );
}
