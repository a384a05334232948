//! `pbft-node keygen --node-ids ... --addresses ... --clients ...` writes a
//! deployment: replica key files that replica mode accepts, client key
//! files, and a `cluster.toml` whose public keys are those of the secret
//! key files. Every refusal names the value at fault, and nothing is
//! overwritten.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pbft_core::{hex, Ed25519Auth};
use pbft_node::cluster::{ClusterFile, Protocol};
use pbft_node::keys::KeyFile;
use serde_json::{json, Value};

const ADDRESSES: &str = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003,127.0.0.1:7004";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "pbft-cluster-keygen-test-{}-{name}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn keygen(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pbft-node"))
        .arg("keygen")
        .args(args)
        .arg("--out")
        .arg(dir)
        .output()
        .expect("pbft-node runs")
}

fn deployment(name: &str) -> PathBuf {
    let dir = scratch(name);
    let output = keygen(
        &[
            "--node-ids",
            "n1,n2,n3,n4",
            "--addresses",
            ADDRESSES,
            "--clients",
            "c1,c2",
        ],
        &dir,
    );
    assert!(output.status.success(), "{output:?}");
    dir
}

fn refusal(args: &[&str], name: &str) -> String {
    let dir = scratch(name);
    let output = keygen(args, &dir);
    assert!(!output.status.success(), "accepted: {args:?}");
    assert!(
        !dir.join("cluster.toml").exists() && !dir.join("n1.keys.json").exists(),
        "a refusal writes nothing"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_cluster_form_writes_every_file_and_their_public_keys_agree() {
    let dir = deployment("agree");
    let cluster = ClusterFile::load(&dir.join("cluster.toml")).expect("loads");
    assert_eq!(cluster.protocol, Protocol::default());
    let ids: Vec<&str> = cluster.members.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["n1", "n2", "n3", "n4"], "members in the order given");
    let addresses: Vec<&str> = cluster.members.iter().map(|m| m.address.as_str()).collect();
    assert_eq!(addresses.join(","), ADDRESSES);
    for member in &cluster.members {
        let keys = KeyFile::load(&dir.join(format!("{}.keys.json", member.id))).expect("loads");
        assert_eq!(keys.node_id, member.id);
        assert_eq!(keys.public_key(), member.public_key, "{}", member.id);
    }
    assert_eq!(cluster.clients.len(), 2);
    for (client, public) in &cluster.clients {
        let path = dir.join(format!("{client}.client-key.json"));
        let file: Value =
            serde_json::from_str(&fs::read_to_string(&path).expect("written")).expect("JSON");
        assert_eq!(file["format"], "pbft-client-key/v1");
        assert_eq!(file["client"], client.as_str());
        let secret: [u8; 32] = hex::parse(file["secret_key"].as_str().expect("hex")).expect("hex");
        assert_eq!(Ed25519Auth::public_key(secret), *public, "{client}");
    }
    #[cfg(unix)]
    for name in ["n1.keys.json", "c1.client-key.json"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.join(name))
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{name} is private to its owner");
    }
    let _ = fs::remove_dir_all(&dir);
}

/// Starts `pbft-node --mode replica --keys FILE`, sends it `init` for
/// n1..n4 as `node`, and returns the reply's type.
fn init_with_keys(file: &Path, node: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pbft-node"))
        .args(["--mode", "replica", "--keys"])
        .arg(file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("pbft-node starts");
    let init = json!({"src": "c0", "dest": node, "body": {"type": "init", "msg_id": 1,
        "node_id": node, "node_ids": ["n1", "n2", "n3", "n4"]}});
    let mut stdin = child.stdin.take().expect("piped");
    writeln!(stdin, "{init}").expect("written");
    drop(stdin);
    let output = child.wait_with_output().expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let reply: Value = serde_json::from_str(stdout.lines().next().expect("a reply")).expect("JSON");
    reply["body"]["type"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn its_replica_key_files_serve_replica_mode() {
    let dir = deployment("serve");
    for node in ["n1", "n4"] {
        let file = dir.join(format!("{node}.keys.json"));
        assert_eq!(init_with_keys(&file, node), "init_ok", "{node}");
    }
    // The same check refuses a file for another node, so it does look.
    assert_eq!(init_with_keys(&dir.join("n1.keys.json"), "n2"), "error");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn each_refusal_names_its_value() {
    let base = ["--node-ids", "n1,n2,n3"];
    let cases: [(&[&str], &str); 6] = [
        (
            &["--addresses", "h1:1,h2:2"],
            "2 addresses (h1:1,h2:2) for 3 node ids",
        ),
        (
            &["--addresses", "h1:1,h2,h3:3"],
            "address \"h2\" is not HOST:PORT",
        ),
        (&["--addresses", "h1:1,h2:0,h3:3"], "address \"h2:0\""),
        (
            &["--addresses", "h1:1,h2:2,h1:1"],
            "address \"h1:1\" appears twice",
        ),
        (
            &["--addresses", "h1:1,h2:2,h3:3", "--clients", "c1,c1"],
            "client id \"c1\" appears twice",
        ),
        (
            &["--addresses", "h1:1,h2:2,h3:3", "--clients", "n2"],
            "client id \"n2\" is also a member's id",
        ),
    ];
    for (i, (extra, expected)) in cases.iter().enumerate() {
        let args = [&base[..], extra].concat();
        let stderr = refusal(&args, &format!("refuse-{i}"));
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let stderr = refusal(
        &["--node-ids", "n1,n2,n1", "--addresses", "h1:1,h2:2,h3:3"],
        "refuse-ids",
    );
    assert!(stderr.contains("node id \"n1\" appears twice"), "{stderr}");
}

#[test]
fn the_cluster_form_overwrites_nothing() {
    let dir = deployment("overwrite");
    let before = fs::read_to_string(dir.join("cluster.toml")).expect("written");
    // Only the cluster file is left: no replica key file is in the way.
    for node in ["n1", "n2", "n3", "n4"] {
        fs::remove_file(dir.join(format!("{node}.keys.json"))).expect("removed");
    }
    let output = keygen(
        &["--node-ids", "n1,n2,n3,n4", "--addresses", ADDRESSES],
        &dir,
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cluster.toml already exists"), "{stderr}");
    assert_eq!(
        fs::read_to_string(dir.join("cluster.toml")).expect("kept"),
        before
    );
    assert!(
        !dir.join("n1.keys.json").exists(),
        "no partial set is written"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_older_forms_still_work_and_write_no_cluster_file() {
    let dir = scratch("older");
    assert!(keygen(&["--node-ids", "n1,n2,n3,n4"], &dir)
        .status
        .success());
    assert!(KeyFile::load(&dir.join("n3.keys.json")).is_ok());
    assert!(keygen(&["--client", "c9"], &dir).status.success());
    assert!(dir.join("c9.client-key.json").exists());
    assert!(!dir.join("cluster.toml").exists());
    // --clients belongs to the cluster form only.
    let output = keygen(&["--node-ids", "n5", "--clients", "c1"], &dir);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--addresses"), "{stderr}");
    let _ = fs::remove_dir_all(&dir);
}
