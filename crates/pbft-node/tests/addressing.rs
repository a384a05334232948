//! A line whose `dest` is not this node is dropped with a warning and no
//! reply, in both modes, once `init` has given the node its id. `init`
//! itself is addressed to the id it assigns, so it is always taken.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

/// Runs the node with `flags` on `lines`; its replies (to clients only)
/// and its stderr.
fn run(flags: &[&str], lines: &[Value]) -> (Vec<Value>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pbft-node"))
        .args(flags)
        .env_remove("PBFT_MODE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pbft-node starts");
    {
        let mut stdin = child.stdin.take().expect("piped");
        for line in lines {
            writeln!(stdin, "{line}").expect("write");
        }
    }
    let output = child.wait_with_output().expect("pbft-node ends");
    assert!(output.status.success());
    let replies = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
        .filter(|v| v["dest"].as_str().is_some_and(|d| d.starts_with('c')))
        .collect();
    (
        replies,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn line(dest: &str, body: Value) -> Value {
    json!({"src": "c1", "dest": dest, "body": body})
}

/// The same input for either mode: init as n1, then lines for n2 (a
/// request, a status query, a malformed request that would otherwise get
/// error 12), then one status query for n1.
fn input() -> Vec<Value> {
    let init = json!({"src": "c0", "dest": "n1",
        "body": {"type": "init", "msg_id": 1, "node_id": "n1", "node_ids": ["n1", "n2", "n3", "n4"]}});
    vec![
        init,
        line(
            "n2",
            json!({"type": "pbft_request", "msg_id": 2, "operation": "set x=1"}),
        ),
        line(
            "n2",
            json!({"type": "pbft_status", "msg_id": 3, "sequence_number": 1}),
        ),
        line("n2", json!({"type": "pbft_request", "msg_id": 4})),
        line(
            "n1",
            json!({"type": "pbft_status", "msg_id": 5, "sequence_number": 1}),
        ),
    ]
}

fn check(flags: &[&str]) {
    let (replies, stderr) = run(flags, &input());
    let answered: Vec<u64> = replies
        .iter()
        .filter_map(|r| r["body"]["in_reply_to"].as_u64())
        .collect();
    assert_eq!(
        answered,
        [1, 5],
        "{flags:?}: only init and n1's line: {replies:?}"
    );
    assert_eq!(
        replies[1]["body"]["phase"], "none",
        "the request for n2 was not run"
    );
    assert_eq!(
        stderr.matches("addressed to n2, not to this node").count(),
        3,
        "{flags:?}: each dropped line is logged: {stderr}"
    );
}

#[test]
fn the_embedded_default_drops_lines_for_other_nodes() {
    check(&[]);
}

#[test]
fn replica_mode_drops_lines_for_other_nodes() {
    check(&["--mode", "replica", "--auth", "none"]);
}

#[test]
fn before_init_any_dest_is_taken() {
    // Maelstrom addresses init to the id it assigns; before it the node
    // has no id to compare with.
    for flags in [&[][..], &["--mode", "replica", "--auth", "none"]] {
        let init = json!({"src": "c0", "dest": "n3",
            "body": {"type": "init", "msg_id": 1, "node_id": "n3", "node_ids": ["n1", "n2", "n3", "n4"]}});
        let (replies, _) = run(flags, &[init]);
        assert_eq!(replies.len(), 1, "{flags:?}");
        assert_eq!(replies[0]["body"]["type"], "init_ok");
        assert_eq!(replies[0]["src"], "n3");
    }
}
