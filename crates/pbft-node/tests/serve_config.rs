//! `pbft-node serve` refuses, at startup and with a message that names the
//! file and the value, every error in its cluster file and key file.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "pbft-serve-config-test-{}-{name}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// A deployment of `nodes` on free loopback ports (nothing listens yet).
fn deployment(name: &str, nodes: &str) -> PathBuf {
    deployment_on(name, nodes).0
}

/// The same, and the listeners that hold its ports, still bound.
fn deployment_on(name: &str, nodes: &str) -> (PathBuf, Vec<TcpListener>) {
    let dir = scratch(name);
    let count = nodes.split(',').count();
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    let addresses: Vec<String> = listeners
        .iter()
        .map(|l| format!("127.0.0.1:{}", l.local_addr().expect("bound").port()))
        .collect();
    let output = Command::new(env!("CARGO_BIN_EXE_pbft-node"))
        .args([
            "keygen",
            "--node-ids",
            nodes,
            "--addresses",
            &addresses.join(","),
        ])
        .arg("--out")
        .arg(&dir)
        .output()
        .expect("keygen runs");
    assert!(output.status.success(), "{output:?}");
    (dir, listeners)
}

fn serve(args: &[&str], cluster: &Path, keys: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbft-node"))
        .args(args)
        .arg("serve")
        .arg("--cluster")
        .arg(cluster)
        .arg("--keys")
        .arg(keys)
        .stdin(Stdio::null())
        .output()
        .expect("pbft-node runs")
}

/// `serve` refused to start; its message.
fn refused(output: Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(2), "not refused: {text}");
    text
}

#[test]
fn a_key_file_of_another_cluster_is_refused() {
    let a = deployment("other-a", "n1,n2,n3,n4");
    let b = deployment("other-b", "n1,n2,n3,n4");
    let text = refused(serve(&[], &a.join("cluster.toml"), &b.join("n1.keys.json")));
    assert!(
        text.contains("public key for \"n1\" that is not the one in cluster file"),
        "{text}"
    );
    assert!(text.contains("n1.keys.json"), "names the key file: {text}");
}

#[test]
fn a_key_file_of_a_node_that_is_not_a_member_is_refused() {
    let a = deployment("stranger-a", "n1,n2,n3,n4");
    let b = deployment("stranger-b", "m1,m2,m3,m4");
    let text = refused(serve(&[], &a.join("cluster.toml"), &b.join("m2.keys.json")));
    assert!(
        text.contains("is for \"m2\", which is not a member of cluster file"),
        "{text}"
    );
}

#[test]
fn a_duplicate_address_is_refused() {
    let dir = deployment("duplicate", "n1,n2,n3,n4");
    let path = dir.join("cluster.toml");
    let text = fs::read_to_string(&path).expect("cluster file");
    let addresses: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("address = "))
        .collect();
    let edited = text.replace(addresses[1], addresses[0]);
    fs::write(&path, edited).expect("written");
    let message = refused(serve(&[], &path, &dir.join("n1.keys.json")));
    assert!(message.contains("appears twice"), "{message}");
    assert!(
        message.contains("cluster.toml"),
        "names the file: {message}"
    );
}

#[test]
fn unreadable_files_are_refused_by_name() {
    let dir = deployment("unreadable", "n1,n2,n3,n4");
    let missing = dir.join("nowhere.toml");
    let text = refused(serve(&[], &missing, &dir.join("n1.keys.json")));
    assert!(text.contains("nowhere.toml"), "{text}");
    let missing = dir.join("n9.keys.json");
    let text = refused(serve(&[], &dir.join("cluster.toml"), &missing));
    assert!(text.contains("n9.keys.json"), "{text}");
}

#[test]
fn replica_mode_flags_are_refused_since_the_cluster_file_sets_them() {
    let dir = deployment("flags", "n1,n2,n3,n4");
    let text = refused(serve(
        &["--tick-ms", "5"],
        &dir.join("cluster.toml"),
        &dir.join("n1.keys.json"),
    ));
    assert!(text.contains("--tick-ms"), "{text}");
}

#[test]
fn an_address_in_use_stops_the_replica_with_its_address() {
    // n1's port stays taken by the listener that found it.
    let (dir, listeners) = deployment_on("in-use", "n1,n2,n3,n4");
    let address = listeners[0].local_addr().expect("bound").to_string();
    let output = serve(&[], &dir.join("cluster.toml"), &dir.join("n1.keys.json"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
}
