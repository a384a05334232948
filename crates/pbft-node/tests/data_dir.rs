//! `--data-dir`: a replica killed with SIGKILL and started again on its
//! directory keeps what it acknowledged; a log whose last record a crash
//! cut short starts, with a warning; a log damaged anywhere else, or a
//! directory of another replica, refuses to start and says where.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// One single-replica node (f = 0: it commits alone) on `dir`.
struct Node {
    child: Child,
    lines: Receiver<Value>,
    stderr: PathBuf,
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pbft-data-dir-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

impl Node {
    fn start(dir: &Path, node_id: &str, run: usize) -> Node {
        let stderr = dir.with_extension(format!("{run}.log"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_pbft-node"))
            .args([
                "--mode",
                "replica",
                "--auth",
                "none",
                "--checkpoint-interval",
                "4",
            ])
            .arg("--data-dir")
            .arg(dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&stderr).expect("log file"))
            .spawn()
            .expect("pbft-node starts");
        let stdout = child.stdout.take().expect("piped");
        let (send, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let Ok(value) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if send.send(value).is_err() {
                    return;
                }
            }
        });
        let mut node = Node {
            child,
            lines,
            stderr,
        };
        node.send(json!({"type": "init", "msg_id": 1, "node_id": node_id, "node_ids": [node_id]}));
        node
    }

    fn send(&mut self, body: Value) {
        let line = json!({"src": "c1", "dest": "n1", "body": body}).to_string();
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = writeln!(stdin, "{line}");
        }
    }

    /// The next reply, within five seconds.
    fn reply(&self) -> Value {
        self.lines
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("no reply\n{}", self.log()))
    }

    fn write(&mut self, msg_id: u64, value: u64) {
        self.send(json!({"type": "write", "msg_id": msg_id, "key": "x", "value": value}));
        let reply = self.reply();
        assert_eq!(reply["body"]["type"], "write_ok", "{reply}");
    }

    fn read(&mut self, msg_id: u64) -> Value {
        self.send(json!({"type": "read", "msg_id": msg_id, "key": "x"}));
        let reply = self.reply();
        assert_eq!(reply["body"]["type"], "read_ok", "{reply}\n{}", self.log());
        reply["body"]["value"].clone()
    }

    /// SIGKILL: no chance to flush or sync anything.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to end on its own, within five seconds.
    fn exit(mut self) -> (ExitStatus, String) {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (status, self.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the node did not stop\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// A directory whose replica acknowledged writes 1 to 10 of `x`, then was
/// killed.
fn written(name: &str) -> PathBuf {
    let dir = scratch(name).join("n1");
    let mut node = Node::start(&dir, "n1", 1);
    assert_eq!(node.reply()["body"]["type"], "init_ok");
    for value in 1..=10 {
        node.write(value + 1, value);
    }
    node.kill();
    dir
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("wal"))
        .expect("wal dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

#[test]
fn a_replica_killed_and_started_again_on_its_directory_keeps_its_writes() {
    let dir = written("restart");
    let mut node = Node::start(&dir, "n1", 2);
    assert_eq!(node.reply()["body"]["type"], "init_ok");
    assert_eq!(node.read(50), json!(10));
    node.write(51, 11);
    let log = node.log();
    assert!(log.contains("restored from"), "{log}");
    node.kill();
    // The log was collected at stable checkpoints: one segment, from the
    // last base on.
    assert_eq!(segments(&dir).len(), 1, "{:?}", segments(&dir));
    let mut node = Node::start(&dir, "n1", 3);
    assert_eq!(node.reply()["body"]["type"], "init_ok");
    assert_eq!(node.read(60), json!(11));
    node.kill();
}

#[test]
fn a_record_cut_short_at_the_end_is_dropped_with_a_warning() {
    let dir = written("torn");
    let last = segments(&dir).pop().expect("a segment");
    let bytes = fs::read(&last).expect("segment");
    fs::write(&last, &bytes[..bytes.len() - 3]).expect("cut");
    let mut node = Node::start(&dir, "n1", 2);
    assert_eq!(node.reply()["body"]["type"], "init_ok");
    let value = node.read(50);
    let log = node.log();
    assert!(log.contains("cut short by a crash"), "{log}");
    // The last record was a write's; the ones before it stand.
    assert!(value == json!(10) || value == json!(9), "{value}");
    node.kill();
}

#[test]
fn a_flipped_bit_in_the_middle_of_the_log_refuses_the_start_and_names_the_place() {
    let dir = written("flipped");
    let first = segments(&dir).remove(0);
    let mut bytes = fs::read(&first).expect("segment");
    // Inside the first record's payload: the magic is 8 bytes, the record
    // header 12.
    bytes[8 + 12 + 5] ^= 0x10;
    fs::write(&first, &bytes).expect("flip");
    let node = Node::start(&dir, "n1", 2);
    let (status, log) = node.exit();
    assert!(!status.success(), "{log}");
    let name = first.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(
        log.contains("refusing to start") && log.contains(name) && log.contains("byte 8"),
        "{log}"
    );
}

#[test]
fn another_replicas_directory_is_refused() {
    let dir = written("identity");
    let node = Node::start(&dir, "n2", 2);
    let (status, log) = node.exit();
    assert!(!status.success(), "{log}");
    assert!(log.contains("belongs to n1"), "{log}");
}
