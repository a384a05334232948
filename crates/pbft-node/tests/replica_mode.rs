//! Replica mode: four `pbft-node --mode replica` processes, wired together
//! by a small router that passes each line to the process it is addressed
//! to, serve the seed's protocol, with and without signatures, and survive
//! a dead primary. Startup refuses to guess about authentication.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const NODES: [&str; 4] = ["n1", "n2", "n3", "n4"];

struct Router {
    children: Vec<Child>,
    stdins: Vec<Option<ChildStdin>>,
    lines: Receiver<(usize, String)>,
    /// Lines addressed to clients.
    replies: Vec<Value>,
}

impl Router {
    fn start(flags: impl Fn(&str) -> Vec<String>) -> Router {
        let (send, lines) = channel();
        let mut children = Vec::new();
        let mut stdins = Vec::new();
        for (i, node) in NODES.iter().enumerate() {
            let mut child = Command::new(env!("CARGO_BIN_EXE_pbft-node"))
                .args([
                    "--mode",
                    "replica",
                    "--tick-ms",
                    "5",
                    "--view-change-timeout-ms",
                    "200",
                ])
                .args(flags(node))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("pbft-node starts");
            let stdout = child.stdout.take().expect("piped");
            let send = send.clone();
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { return };
                    if send.send((i, line)).is_err() {
                        return;
                    }
                }
            });
            stdins.push(child.stdin.take());
            children.push(child);
        }
        let mut router = Router {
            children,
            stdins,
            lines,
            replies: Vec::new(),
        };
        for node in NODES {
            router.send(
                node,
                json!({"type": "init", "msg_id": 1, "node_id": node, "node_ids": NODES}),
                "c0",
            );
        }
        router
    }

    fn send(&mut self, dest: &str, body: Value, src: &str) {
        let line = json!({"src": src, "dest": dest, "body": body}).to_string();
        self.deliver(dest, &line);
    }

    fn deliver(&mut self, dest: &str, line: &str) {
        let Some(i) = NODES.iter().position(|n| *n == dest) else {
            return;
        };
        if let Some(stdin) = self.stdins[i].as_mut() {
            if writeln!(stdin, "{line}").is_err() {
                self.stdins[i] = None;
            }
        }
    }

    /// Kills a node: it neither reads nor writes any more.
    fn kill(&mut self, node: &str) {
        let i = NODES.iter().position(|n| *n == node).expect("a node");
        self.stdins[i] = None;
        let _ = self.children[i].kill();
    }

    /// Routes lines until `done` holds for the client replies, or panics
    /// after `limit`.
    fn route_until(&mut self, limit: Duration, done: impl Fn(&[Value]) -> bool) {
        let start = Instant::now();
        while !done(&self.replies) {
            assert!(
                start.elapsed() < limit,
                "timed out; replies so far: {:#?}",
                self.replies
            );
            let Ok((from, line)) = self.lines.recv_timeout(Duration::from_millis(50)) else {
                continue;
            };
            let value: Value = serde_json::from_str(&line).expect("nodes write JSON lines");
            assert_eq!(value["src"], NODES[from], "a node writes as itself: {line}");
            let dest = value["dest"].as_str().unwrap_or_default().to_string();
            if NODES.contains(&dest.as_str()) {
                self.deliver(&dest, &line);
            } else {
                self.replies.push(value);
            }
        }
    }

    fn reply_to(&self, dest: &str, in_reply_to: u64) -> Option<&Value> {
        self.replies
            .iter()
            .find(|v| v["dest"] == dest && v["body"]["in_reply_to"] == in_reply_to)
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        for stdin in &mut self.stdins {
            *stdin = None;
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn has_reply(dest: &'static str, msg_id: u64) -> impl Fn(&[Value]) -> bool {
    move |replies| {
        replies
            .iter()
            .any(|v| v["dest"] == dest && v["body"]["in_reply_to"] == msg_id)
    }
}

/// Asks every live node for the status of number 1 until all of them
/// report it executed.
fn wait_executed_everywhere(
    router: &mut Router,
    nodes: &[&'static str],
    first_msg_id: u64,
) -> Vec<Value> {
    let mut msg_id = first_msg_id;
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not executed everywhere"
        );
        let ids: Vec<(&str, u64)> = nodes
            .iter()
            .map(|node| {
                msg_id += 1;
                (*node, msg_id)
            })
            .collect();
        for (node, id) in &ids {
            router.send(
                node,
                json!({"type": "pbft_status", "msg_id": id, "sequence_number": 1}),
                "c9",
            );
        }
        let last = ids.last().map(|(_, id)| *id).unwrap_or_default();
        router.route_until(Duration::from_secs(10), has_reply("c9", last));
        let statuses: Vec<Value> = ids
            .iter()
            .filter_map(|(_, id)| router.reply_to("c9", *id).cloned())
            .collect();
        if statuses.len() == nodes.len() && statuses.iter().all(|s| s["body"]["executed"] == true) {
            return statuses;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn four_unsigned_replica_processes_commit_a_request() {
    let mut router = Router::start(|_| vec!["--auth".into(), "none".into()]);
    router.route_until(Duration::from_secs(10), |r| {
        r.iter().filter(|v| v["body"]["type"] == "init_ok").count() == 4
    });
    router.send(
        "n1",
        json!({"type": "pbft_request", "msg_id": 2, "operation": "set x=42", "client": "c1"}),
        "c1",
    );
    router.route_until(Duration::from_secs(10), has_reply("c1", 2));
    let ack = router.reply_to("c1", 2).expect("acknowledged");
    assert_eq!(ack["body"]["type"], "pbft_request_ok");
    assert_eq!(
        (
            ack["body"]["sequence_number"].as_u64(),
            ack["body"]["view"].as_u64()
        ),
        (Some(1), Some(0))
    );
    let statuses = wait_executed_everywhere(&mut router, &NODES, 100);
    for status in statuses {
        assert_eq!(status["body"]["phase"], "committed");
        assert_eq!(status["body"]["result"], "ok");
    }
}

#[test]
fn signed_replica_processes_forward_from_a_backup_and_survive_a_dead_primary() {
    let dir = std::env::temp_dir().join(format!("pbft-replica-mode-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let keygen = Command::new(env!("CARGO_BIN_EXE_pbft-node"))
        .args(["keygen", "--node-ids", "n1,n2,n3,n4", "--out"])
        .arg(&dir)
        .output()
        .expect("keygen runs");
    assert!(keygen.status.success());
    let key_dir = dir.clone();
    let mut router = Router::start(move |node| {
        vec![
            "--keys".into(),
            key_dir
                .join(format!("{node}.keys.json"))
                .display()
                .to_string(),
        ]
    });
    router.route_until(Duration::from_secs(10), |r| {
        r.iter().filter(|v| v["body"]["type"] == "init_ok").count() == 4
    });
    // A request at a backup is forwarded to the primary.
    router.send("n3", json!({"type": "pbft_request", "msg_id": 2, "operation": "set x=1", "client": "c1", "timestamp": 1}), "c1");
    router.route_until(Duration::from_secs(10), has_reply("c1", 2));
    assert_eq!(
        router.reply_to("c1", 2).expect("ack")["body"]["sequence_number"],
        1
    );
    wait_executed_everywhere(&mut router, &NODES, 100);

    // The primary dies; the client hands its next request to the backups.
    router.kill("n1");
    for (node, msg_id) in [("n2", 10), ("n3", 11), ("n4", 12)] {
        router.send(node, json!({"type": "pbft_request", "msg_id": msg_id, "operation": "set x=2", "client": "c2", "timestamp": 1}), "c2");
    }
    router.route_until(Duration::from_secs(20), |r| {
        [10, 11, 12].iter().all(|id| {
            r.iter()
                .any(|v| v["dest"] == "c2" && v["body"]["in_reply_to"] == *id)
        })
    });
    for id in [10, 11, 12] {
        let ack = router.reply_to("c2", id).expect("ack");
        assert_eq!(ack["body"]["type"], "pbft_request_ok", "{ack}");
        assert!(
            ack["body"]["view"].as_u64() >= Some(1),
            "ordered after a view change: {ack}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn start_with(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pbft-node"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("pbft-node runs")
}

#[test]
fn replica_mode_refuses_to_start_without_a_knowing_choice_of_authentication() {
    let output = start_with(&["--mode", "replica"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("pbft-node keygen") && stderr.contains("--auth none"),
        "{stderr}"
    );

    let output = start_with(&["--mode", "replica", "--keys", "/nonexistent/n1.keys.json"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read key file") && stderr.contains("n1.keys.json"),
        "{stderr}"
    );

    let bad = std::env::temp_dir().join(format!("pbft-bad-key-{}.json", std::process::id()));
    std::fs::write(&bad, "{\"format\":\"pbft-keys/v1\"}").expect("write");
    let output = start_with(&["--mode", "replica", "--keys", &bad.display().to_string()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("missing field"),
        "names the problem"
    );

    let output = start_with(&["--keys", &bad.display().to_string()]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "keys make no sense for the embedded default"
    );

    let output = start_with(&["--mode", "replica", "--auth", "none"]);
    assert!(output.status.success(), "EOF at once ends it cleanly");
    assert!(String::from_utf8_lossy(&output.stderr).contains("WITHOUT authentication"));
}

#[test]
fn the_lin_kv_workload_is_served_after_execution() {
    let mut router = Router::start(|_| vec!["--auth".into(), "none".into()]);
    router.route_until(Duration::from_secs(10), |r| {
        r.iter().filter(|v| v["body"]["type"] == "init_ok").count() == 4
    });
    let steps = [
        (
            "n1",
            json!({"type": "write", "msg_id": 2, "key": 0, "value": 1}),
            "write_ok",
            None,
        ),
        (
            "n3",
            json!({"type": "read", "msg_id": 3, "key": 0}),
            "read_ok",
            None,
        ),
        (
            "n4",
            json!({"type": "cas", "msg_id": 4, "key": 0, "from": 1, "to": 2}),
            "cas_ok",
            None,
        ),
        (
            "n2",
            json!({"type": "cas", "msg_id": 5, "key": 0, "from": 1, "to": 3}),
            "error",
            Some(22),
        ),
        (
            "n2",
            json!({"type": "read", "msg_id": 6, "key": 9}),
            "error",
            Some(20),
        ),
        (
            "n1",
            json!({"type": "read", "msg_id": 7, "key": 0}),
            "read_ok",
            None,
        ),
    ];
    for (node, body, expected, code) in steps {
        let msg_id = body["msg_id"].as_u64().expect("msg_id");
        router.send(node, body, "c1");
        router.route_until(Duration::from_secs(10), has_reply("c1", msg_id));
        let reply = router.reply_to("c1", msg_id).expect("answered");
        assert_eq!(reply["src"], node, "answered by the node asked");
        assert_eq!(reply["body"]["type"], expected, "{reply}");
        if let Some(code) = code {
            assert_eq!(reply["body"]["code"], code, "{reply}");
        }
    }
    assert_eq!(router.reply_to("c1", 3).expect("read")["body"]["value"], 1);
    assert_eq!(router.reply_to("c1", 7).expect("read")["body"]["value"], 2);
}

#[test]
fn a_client_reply_comes_before_the_protocol_messages_and_ids_are_one_counter() {
    use pbft_node::replica_node::{Auth, ReplicaNode, Settings};

    let mut node = ReplicaNode::new(Settings::new(Auth::None));
    let init = json!({"src": "c0", "dest": "n1", "id": 9,
                      "body": {"type": "init", "msg_id": 1, "node_id": "n1", "node_ids": NODES}});
    let mut out = node.handle_line(&init.to_string());
    let request = json!({"src": "c1", "dest": "n1",
                         "body": {"type": "pbft_request", "msg_id": 2, "operation": "set x=1"}});
    let after_request = node.handle_line(&request.to_string());
    assert_eq!(
        after_request[0].body.type_name(),
        "pbft_request_ok",
        "the reply comes first"
    );
    let rest: Vec<&str> = after_request[1..]
        .iter()
        .map(|e| e.body.type_name())
        .collect();
    assert_eq!(
        rest, ["pbft_pre_prepare"; 3],
        "then one pre-prepare per backup"
    );
    for e in &after_request[1..] {
        assert!(
            NODES.contains(&e.dest.as_str()),
            "peer messages go only to node_ids"
        );
    }
    out.extend(after_request);
    let ids: Vec<u64> = out.iter().filter_map(|e| e.body.msg_id()).collect();
    assert_eq!(
        ids,
        (0..out.len() as u64).collect::<Vec<_>>(),
        "one counter from 0"
    );
}

#[test]
fn replica_mode_refuses_a_request_over_max_request_bytes_with_error_12() {
    use pbft_node::replica_node::{Auth, ReplicaNode, Settings};

    let mut node = ReplicaNode::new(Settings {
        max_request_bytes: 1000,
        ..Settings::new(Auth::None)
    });
    let init = json!({"src": "c0", "dest": "n2", "id": 9,
                      "body": {"type": "init", "msg_id": 1, "node_id": "n2", "node_ids": NODES}});
    node.handle_line(&init.to_string());
    let operation = format!("set x={}", "v".repeat(1000));
    let request = json!({"src": "c1", "dest": "n2",
                         "body": {"type": "pbft_request", "msg_id": 2, "operation": operation}});
    let out = node.handle_line(&request.to_string());
    assert_eq!(out.len(), 1, "only the refusal: nothing is relayed");
    let reply = serde_json::to_value(&out[0]).expect("serializes");
    assert_eq!(reply["body"]["type"], "error", "{reply}");
    assert_eq!(reply["body"]["code"], 12);
    let text = reply["body"]["text"].as_str().expect("text");
    assert!(text.contains("limit is 1000 bytes"), "{text}");
}

#[test]
fn a_message_whose_src_is_not_its_authenticated_sender_is_dropped() {
    use pbft_node::replica_node::{Auth, ReplicaNode, Settings};

    let names = NODES.iter().map(|n| n.to_string()).collect();
    let mut node =
        ReplicaNode::started(Settings::new(Auth::None), "n2", names).expect("a valid cluster");
    let request = json!({"src": "c1", "dest": "n2",
                         "body": {"type": "pbft_request", "msg_id": 2, "operation": "set x=1"}})
    .to_string();
    assert!(
        node.handle_from("c2", &request).is_empty(),
        "c2 may not speak for c1"
    );
    assert!(
        node.handle_from("n3", &request).is_empty(),
        "nor may a replica"
    );
    let out = node.handle_from("c1", &request);
    assert!(
        out.iter().any(|e| e.dest == "n1"),
        "c1's own request is relayed to the primary: {out:?}"
    );
    // A bad line in another's name gets no error reply either.
    let bad = r#"{"src":"c1","dest":"n2","body":{"type":"pbft_request","msg_id":3}}"#;
    assert!(node.handle_from("c2", bad).is_empty());
    let refused = node.handle_from("c1", bad);
    assert!(
        refused.iter().any(|e| e.dest == "c1"),
        "c1's own bad line is answered: {refused:?}"
    );
}
