//! The `pbft-client` binary against four replicas served in this test
//! process over loopback TCP: each command prints its result and exits 0,
//! an error or a refusal prints a message and exits 1, the prompt runs
//! the same commands, the timestamp survives from one run to the next,
//! and `bench` measures a load.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;

use pbft_node::cluster::ClusterFile;
use pbft_node::keys::KeyFile;
use pbft_node::tcp::Deployment;

const NODES: [&str; 4] = ["n1", "n2", "n3", "n4"];

/// A deployment for `clients`, its replicas started on threads of this
/// process (they run until it exits).
fn cluster(name: &str, clients: &[&str]) -> PathBuf {
    {
        let dir =
            std::env::temp_dir().join(format!("pbft-client-cli-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let listeners: Vec<TcpListener> = NODES
            .iter()
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
            .collect();
        let addresses: Vec<String> = listeners
            .iter()
            .map(|l| l.local_addr().expect("bound").to_string())
            .collect();
        drop(listeners);
        let nodes: Vec<String> = NODES.iter().map(|n| n.to_string()).collect();
        let clients: Vec<String> = clients.iter().map(|c| c.to_string()).collect();
        pbft_node::deploy::write(&nodes, &addresses, &clients, &dir).expect("written");
        let cluster_path = dir.join("cluster.toml");
        for node in NODES {
            let cluster = ClusterFile::load(&cluster_path).expect("cluster file");
            let keys = KeyFile::load(&dir.join(format!("{node}.keys.json"))).expect("keys");
            let deployment =
                Deployment::check(cluster, &cluster_path, keys, None, None).expect("checked");
            thread::spawn(move || {
                pbft_node::tcp::serve(deployment, pbft_net::NetConfig::default())
            });
        }
        dir
    }
}

fn client(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pbft-client"))
        .arg("--cluster")
        .arg(dir.join("cluster.toml"))
        .arg("--keys")
        .arg(dir.join(format!("{}.client-key.json", args[0])))
        .args(&args[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pbft-client runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("written");
    child.wait_with_output().expect("finished")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

#[test]
fn each_command_prints_its_result_and_exit_status() {
    let dir = cluster("commands", &["c1"]);
    let run = |args: &[&str]| {
        let out = client(&dir, args, "");
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    assert_eq!(run(&["c1", "write", "x", "42"]).0, Some(0));
    let (code, out, _) = run(&["c1", "read", "x"]);
    assert_eq!((code, out.as_str()), (Some(0), "42\n"));
    let (code, out, _) = run(&["c1", "cas", "x", "42", "43"]);
    assert_eq!((code, out.as_str()), (Some(0), "ok\n"));
    let (code, out, err) = run(&["c1", "cas", "x", "42", "44"]);
    assert_eq!((code, out.as_str()), (Some(1), ""));
    assert!(err.contains("error 22"), "{err}");
    let (code, _, err) = run(&["c1", "read", "nothing-here"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("error 20"), "{err}");
    // Strings stay strings; the timestamp file carried c1 through five runs.
    assert_eq!(run(&["c1", "write", "s", "hello"]).0, Some(0));
    assert_eq!(run(&["c1", "read", "s"]).1, "\"hello\"\n");
    let stamp = dir.join("c1.client-key.json.timestamp");
    assert_eq!(fs::read_to_string(stamp).expect("kept").trim(), "7 0");
}

#[test]
fn the_prompt_runs_the_same_commands() {
    let dir = cluster("repl", &["c2"]);
    let out = client(
        &dir,
        &["c2", "repl"],
        "write y 1\nread y\ncas y 1 2\nread y\nnonsense\nquit\n",
    );
    let stdout = text(&out.stdout);
    let results: Vec<&str> = stdout
        .split("> ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(results, ["ok", "1", "ok", "2"], "{stdout}");
    assert!(
        text(&out.stderr).contains("commands:"),
        "the bad line is explained"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a bad line makes the session fail"
    );
}

#[test]
fn bench_measures_a_load_and_needs_a_key_per_client() {
    let dir = cluster("bench", &["c3", "c4"]);
    let out = client(
        &dir,
        &["c3", "bench", "--clients", "2", "--seconds", "1"],
        "",
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("2 clients, "), "{stdout}");
    assert!(stdout.contains("requests/s, p50 "), "{stdout}");
    let out = client(
        &dir,
        &["c3", "bench", "--clients", "5", "--seconds", "1"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("needs 5 client key files"),
        "{}",
        text(&out.stderr)
    );
}
