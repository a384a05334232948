//! `scripts/four_replicas.py`, the README's four-process example, if
//! python3 is installed: it answers `--help`, runs from any directory, and
//! says how to get the binary when it is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/four_replicas.py")
}

fn python_available() -> bool {
    let found = Command::new("python3").arg("--version").output().is_ok();
    if !found {
        eprintln!("python3 not found: skipped");
    }
    found
}

/// Runs the script with `args` from a directory other than the
/// repository's root.
fn run(args: &[&str], configure: impl FnOnce(&mut Command)) -> Output {
    let mut command = Command::new("python3");
    command
        .arg(script())
        .args(args)
        .current_dir(std::env::temp_dir());
    configure(&mut command);
    command.output().expect("python3 runs")
}

#[test]
fn the_script_answers_help() {
    if !python_available() {
        return;
    }
    let output = run(&["--help"], |_| {});
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.contains("usage:") && stdout.contains("binary"),
        "{stdout}"
    );
    let output = run(&["--bogus"], |_| {});
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--bogus"));
}

#[test]
fn the_script_finds_the_node_from_anywhere() {
    if !python_available() {
        return;
    }
    // The binary under test, found the way the script looks for it: in the
    // repository's target/, or in CARGO_TARGET_DIR.
    let binary = Path::new(env!("CARGO_BIN_EXE_pbft-node"));
    let target = binary
        .parent()
        .and_then(Path::parent)
        .expect("target/debug/pbft-node");
    let own = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let default_place = own.canonicalize().ok() == target.canonicalize().ok();
    let output = run(&[], |command| {
        if default_place {
            // Found relative to the script's own place in the repository.
            command.env_remove("CARGO_TARGET_DIR");
        } else {
            command.env("CARGO_TARGET_DIR", target);
        }
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    for node in ["n1", "n2", "n3", "n4"] {
        assert!(
            stdout.contains(&format!(
                "{node}: phase committed, prepares_received: 3, commits_received: 4, executed: true"
            )),
            "{stdout}"
        );
    }
}

#[test]
fn a_missing_binary_is_named_without_a_traceback() {
    if !python_available() {
        return;
    }
    let output = run(&["/nonexistent/pbft-node"], |_| {});
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("/nonexistent/pbft-node") && stderr.contains("cargo build -p pbft-node"),
        "{stderr}"
    );
    assert!(!stderr.contains("Traceback"), "{stderr}");
}
