//! Golden tests: the built `pbft-node` binary is run on each input fixture
//! and its stdout is compared, as JSON values, with the expected output.
//!
//! - `fixtures/seed/`: the seed's sample cases. Every expected line must
//!   appear in the output (the node may print more), as the seed's harness
//!   checks them.
//! - `fixtures/documented/`: the responses `docs/protocol.md` documents. The
//!   output must equal the expected file line for line. Run with
//!   `UPDATE_GOLDEN=1` to rewrite these expected files from the current
//!   output, then review the diff before committing it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The seed's harness allows this long per case.
const CASE_TIMEOUT: Duration = Duration::from_millis(5000);

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut inputs: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".in.jsonl"))
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no fixtures in {}", dir.display());
    inputs
}

fn expected_path(input: &Path) -> PathBuf {
    PathBuf::from(
        input
            .to_string_lossy()
            .replace(".in.jsonl", ".expected.jsonl"),
    )
}

/// Runs the node binary on `input` and returns its stdout lines as JSON.
fn run_node(input: &Path) -> Vec<Value> {
    run_node_with_stderr(input).0
}

/// Runs the node binary on `input`; returns its stdout lines as JSON and
/// its stderr.
fn run_node_with_stderr(input: &Path) -> (Vec<Value>, String) {
    let stdin = fs::read(input).expect("fixture readable");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pbft-node"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("RUST_LOG", "debug")
        .spawn()
        .expect("pbft-node starts");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(&stdin)
        .expect("write stdin");
    let output = child.wait_with_output().expect("pbft-node runs");
    let elapsed = started.elapsed();
    let name = input.file_name().unwrap_or_default().to_string_lossy();
    assert!(
        output.status.success(),
        "{name}: exit {:?}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(elapsed < CASE_TIMEOUT, "{name}: took {elapsed:?}");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = String::from_utf8(output.stdout)
        .expect("stdout is UTF-8")
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{name}: stdout line is not JSON ({e}): {line}"))
        })
        .collect();
    (stdout, stderr)
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("expected line is JSON"))
        .collect()
}

#[test]
fn seed_cases_pass() {
    for input in fixtures("seed") {
        let output = run_node(&input);
        for expected in read_jsonl(&expected_path(&input)) {
            assert!(
                output.contains(&expected),
                "{}: expected line missing: {expected}\noutput: {output:#?}",
                input.display()
            );
        }
    }
}

#[test]
fn documented_responses_match_exactly() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for input in fixtures("documented") {
        let output = run_node(&input);
        let expected_file = expected_path(&input);
        if update {
            let text: String = output.iter().map(|v| format!("{v}\n")).collect();
            fs::write(&expected_file, text).expect("write expected");
            continue;
        }
        let expected = read_jsonl(&expected_file);
        assert_eq!(
            output,
            expected,
            "{}: output differs from {}",
            input.display(),
            expected_file.display()
        );
    }
}

#[test]
fn every_stdout_line_is_a_reply_with_a_fresh_msg_id() {
    for input in fixtures("documented") {
        let ids: Vec<u64> = run_node(&input)
            .iter()
            .map(|v| {
                v["body"]["msg_id"]
                    .as_u64()
                    .expect("every reply has a msg_id")
            })
            .collect();
        let expected: Vec<u64> = (0..ids.len() as u64).collect();
        assert_eq!(ids, expected, "{}: one counter from 0", input.display());
    }
}

#[test]
fn unanswerable_lines_are_logged_on_stderr_only() {
    let input = fixtures("documented")
        .into_iter()
        .find(|p| p.to_string_lossy().contains("bad-input"))
        .expect("the bad-input fixture");
    let (stdout, stderr) = run_node_with_stderr(&input);
    assert!(stderr.contains("bad input line: not JSON"), "{stderr}");
    assert!(
        stderr.contains("bad input line: broken envelope: missing field `dest`"),
        "{stderr}"
    );
    // 15 input lines; the non-JSON line and the broken envelope get no reply.
    assert_eq!(stdout.len(), 13);
}

#[test]
fn the_three_phases_are_visible_at_debug_level() {
    let input = fixtures("documented")
        .into_iter()
        .find(|p| p.to_string_lossy().contains("seed-example"))
        .expect("the seed-example fixture");
    let (_, stderr) = run_node_with_stderr(&input);
    for kind in ["pbft_pre_prepare", "pbft_prepare", "pbft_commit"] {
        let needle = format!("\"type\":\"{kind}\"");
        assert!(stderr.contains(&needle), "no {kind} in the debug log");
    }
}

#[test]
fn the_readme_shows_what_the_sample_prints() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = fs::read_to_string(root.join("README.md")).expect("README.md");
    assert!(readme.contains("cargo run -p pbft-node < examples/seed.jsonl"));
    let block = readme
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README has a json block");
    let shown: Vec<Value> = block
        .lines()
        .map(|line| serde_json::from_str(line).expect("README line is JSON"))
        .collect();
    assert_eq!(run_node(&root.join("examples/seed.jsonl")), shown);
}
