//! Client keys: `pbft-node keygen --client` makes a key that signs
//! requests the replicas accept, `--client-keys` tables are checked with
//! errors that name the problem, and a replica with a client's key refuses
//! that client's unsigned requests.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use pbft_core::{hex, ClientId, Ed25519Auth, Request};
use pbft_node::client_keys::{self, ClientKeysError};
use pbft_node::replica_node::{Auth, ReplicaNode, Settings};
use serde_json::{json, Value};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "pbft-client-keys-test-{}-{name}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn node(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pbft-node"))
        .args(args)
        .output()
        .expect("pbft-node runs")
}

/// A fresh client key for `client`: its key file's JSON, and the table
/// line keygen printed.
fn keygen_client(dir: &Path, client: &str) -> (Value, Value) {
    let output = node(&[
        "keygen",
        "--client",
        client,
        "--out",
        dir.to_str().expect("UTF-8"),
    ]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    let mut lines = stdout.lines();
    let path = lines.next().expect("the file's path");
    let file = serde_json::from_str(&fs::read_to_string(path).expect("written")).expect("JSON");
    let table = serde_json::from_str(lines.next().expect("the table line")).expect("JSON");
    (file, table)
}

fn parse(text: &str) -> Result<std::collections::BTreeMap<ClientId, [u8; 32]>, ClientKeysError> {
    client_keys::parse(text, Path::new("clients.json"))
}

#[test]
fn keygen_makes_a_client_key_whose_table_line_loads() {
    let dir = scratch("keygen");
    let (file, table) = keygen_client(&dir, "c1");
    assert_eq!(file["format"], client_keys::CLIENT_KEY_FORMAT);
    assert_eq!(file["client"], "c1");
    assert_eq!(table["c1"], file["public_key"]);
    let secret: [u8; 32] = hex::parse(file["secret_key"].as_str().expect("hex")).expect("32");
    let keys = parse(&table.to_string()).expect("loads");
    assert_eq!(
        keys.get(&ClientId::from("c1")),
        Some(&Ed25519Auth::public_key(secret))
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.join("c1.client-key.json"))
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "a secret key is private to the owner");
    }
    let again = node(&[
        "keygen",
        "--client",
        "c1",
        "--out",
        dir.to_str().expect("UTF-8"),
    ]);
    assert!(!again.status.success(), "never overwrites");
    let unsafe_name = node(&[
        "keygen",
        "--client",
        "../c1",
        "--out",
        dir.to_str().expect("UTF-8"),
    ]);
    assert!(!unsafe_name.status.success());
    let both = node(&["keygen", "--client", "c1", "--node-ids", "n1", "--out", "x"]);
    assert!(!both.status.success(), "replica or client keys, not both");
}

#[test]
fn a_missing_table_is_unreadable() {
    let path = scratch("missing").join("nope.json");
    let error = client_keys::load(&path).expect_err("missing");
    assert!(
        matches!(error, ClientKeysError::Unreadable { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("nope.json"), "{error}");
}

#[test]
fn bad_tables_name_the_problem() {
    let valid = hex::encode(&Ed25519Auth::public_key([1; 32]));
    let not_a_point = (0u8..=255)
        .map(|b| [b; 32])
        .find(|bytes| !Ed25519Auth::is_valid_public_key(bytes))
        .map(|bytes| hex::encode(&bytes))
        .expect("some byte pattern is not a point");
    let malformed = |text: &str, reason: &str| {
        let error = parse(text).expect_err(text);
        assert!(
            matches!(&error, ClientKeysError::Malformed { reason: r, .. } if r.contains(reason)),
            "{text}: {error:?}"
        );
        assert!(error.to_string().contains("clients.json"), "{error}");
    };
    malformed("not json", "not JSON");
    malformed("[]", "expected a JSON object");
    malformed(&format!("[\"{valid}\"]"), "expected a JSON object");
    assert_eq!(
        parse(&json!({ "": valid }).to_string()),
        Err(ClientKeysError::EmptyClientId {
            path: "clients.json".into()
        })
    );
    for (key, reason) in [
        (json!(7), "not a string"),
        (json!("abcd"), "64"),
        (json!("zz".repeat(32)), "hex"),
        (json!(not_a_point), "not a valid Ed25519 public key"),
    ] {
        let error = parse(&json!({ "c1": valid, "c2": key }).to_string()).expect_err("bad");
        assert!(
            matches!(&error, ClientKeysError::BadKey { client, reason: r, .. }
                if client == "c2" && r.contains(reason)),
            "{key}: {error:?}"
        );
    }
    assert_eq!(
        parse("{}").map(|k| k.len()),
        Ok(0),
        "an empty table is fine"
    );
}

#[test]
fn replica_mode_refuses_to_start_with_a_bad_table() {
    let path = scratch("start").join("nope.json");
    let output = node(&[
        "--mode",
        "replica",
        "--auth",
        "none",
        "--client-keys",
        path.to_str().expect("UTF-8"),
    ]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read client keys"));
    let embedded = node(&["--client-keys", "x.json"]);
    assert_eq!(embedded.status.code(), Some(2), "replica mode only");
}

#[test]
fn a_keyed_client_is_served_only_with_its_signature() {
    let secret = [9; 32];
    let mut node = ReplicaNode::new(Settings {
        client_keys: [(ClientId::from("c1"), Ed25519Auth::public_key(secret))].into(),
        ..Settings::new(Auth::None)
    });
    let init = json!({"src": "c0", "dest": "n1",
                      "body": {"type": "init", "msg_id": 1, "node_id": "n1",
                               "node_ids": ["n1", "n2", "n3", "n4"]}});
    node.handle_line(&init.to_string());
    let body = |msg_id: u64, signature: Option<String>| {
        let mut body = json!({"type": "write", "msg_id": msg_id, "key": "k", "value": 1});
        if let Some(signature) = signature {
            body["signature"] = json!(signature);
        }
        json!({"src": "c1", "dest": "n1", "body": body}).to_string()
    };
    let reply = |lines: Vec<pbft_wire::Envelope>| -> Value {
        let first = lines.into_iter().next().expect("a reply");
        serde_json::from_str(&pbft_wire::encode(&first)).expect("JSON")
    };
    let refused = reply(node.handle_line(&body(2, None)));
    assert_eq!(refused["body"]["type"], "error", "{refused}");
    assert_eq!(refused["body"]["code"], 12);
    assert!(refused["body"]["text"]
        .as_str()
        .is_some_and(|t| t.contains("not authentic")));
    // What the client signs: the request the node builds from the body.
    let request = Request::new("c1", Some(3), r#"set "k"=1"#).signed_with(&secret);
    let signature = request.signature().map(|s| s.to_string());
    let lines = node.handle_line(&body(3, signature));
    assert!(
        lines
            .iter()
            .all(|e| e.body.type_name() != "error" && e.dest != "c1"),
        "accepted and proposed, answered once executed: {lines:?}"
    );
    assert!(lines
        .iter()
        .any(|e| e.body.type_name() == "pbft_pre_prepare"));
}
