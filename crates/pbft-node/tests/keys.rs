//! Key files: `pbft-node keygen` writes a usable set, and every kind of bad
//! key file is refused with an error that names the problem.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use pbft_core::{Authenticator, Message, ReplicaId, Seq, View, Vote};
use pbft_node::keys::{KeyFile, KeyFileError};
use pbft_wire::Directory;
use serde_json::{json, Value};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pbft-keys-test-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn keygen(dir: &Path, node_ids: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pbft-node"))
        .args(["keygen", "--node-ids", node_ids, "--out"])
        .arg(dir)
        .output()
        .expect("pbft-node runs")
}

fn directory(names: &[&str]) -> Directory {
    Directory::new(names.iter().map(|s| s.to_string()).collect()).expect("valid")
}

/// A valid key file for n1 of n1..n4, as JSON, from a fresh keygen.
fn valid_file(name: &str) -> (PathBuf, Value) {
    let dir = scratch(name);
    assert!(keygen(&dir, "n1,n2,n3,n4").status.success());
    let path = dir.join("n1.keys.json");
    let value = serde_json::from_str(&fs::read_to_string(&path).expect("written")).expect("JSON");
    (path, value)
}

fn load_value(path: &Path, value: &Value) -> Result<KeyFile, KeyFileError> {
    KeyFile::parse(&value.to_string(), path)
}

#[test]
fn keygen_writes_a_set_whose_keys_verify_each_other() {
    let dir = scratch("set");
    let output = keygen(&dir, "n1,n2,n3,n4");
    assert!(output.status.success(), "{output:?}");
    let cluster = directory(&["n1", "n2", "n3", "n4"]);
    let auths: Vec<_> = ["n1", "n2", "n3", "n4"]
        .iter()
        .map(|node| {
            let file = KeyFile::load(&dir.join(format!("{node}.keys.json"))).expect("loads");
            assert_eq!(file.node_id, *node);
            file.authenticator(node, &cluster)
                .expect("fits the cluster")
        })
        .collect();
    let vote = Message::Prepare(Vote {
        view: View(0),
        seq: Seq(1),
        digest: pbft_core::Digest::of(b"x"),
        replica: ReplicaId(1),
    });
    let signature = auths[1].sign(&vote);
    for auth in &auths {
        assert_eq!(auth.verify(ReplicaId(1), &vote, signature.as_ref()), Ok(()));
        assert!(auth
            .verify(ReplicaId(2), &vote, signature.as_ref())
            .is_err());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.join("n1.keys.json"))
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "secret keys are private to the owner");
    }
    // Two sets differ: the keys are random.
    let other = scratch("set-2");
    assert!(keygen(&other, "n1,n2,n3,n4").status.success());
    assert_ne!(
        fs::read(dir.join("n1.keys.json")).expect("read"),
        fs::read(other.join("n1.keys.json")).expect("read")
    );
}

#[test]
fn keygen_refuses_to_overwrite_or_to_use_unsafe_names() {
    let dir = scratch("overwrite");
    assert!(keygen(&dir, "n1,n2").status.success());
    let before = fs::read(dir.join("n1.keys.json")).expect("read");
    let again = keygen(&dir, "n0,n1");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert!(!dir.join("n0.keys.json").exists(), "no partial set");
    assert_eq!(fs::read(dir.join("n1.keys.json")).expect("read"), before);

    for bad in ["../n1,n2", "n1,n1", ".hidden"] {
        let output = keygen(&scratch("names"), bad);
        assert!(!output.status.success(), "{bad}");
        assert!(!output.stderr.is_empty(), "{bad}: says why");
    }
}

#[test]
fn a_missing_file_is_unreadable() {
    let path = scratch("missing").join("nope.keys.json");
    let error = KeyFile::load(&path).expect_err("missing");
    assert!(
        matches!(error, KeyFileError::Unreadable { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("nope.keys.json"), "{error}");
}

#[test]
fn malformed_files_name_the_problem() {
    let (path, valid) = valid_file("malformed");
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "not JSON"),
        ("[]".into(), "expected a JSON object"),
        (
            {
                let mut v = valid.clone();
                v.as_object_mut().expect("object").remove("secret_key");
                v.to_string()
            },
            "missing field `secret_key`",
        ),
        (
            {
                let mut v = valid.clone();
                v["extra"] = json!(1);
                v.to_string()
            },
            "unknown field `extra`",
        ),
        (
            {
                let mut v = valid.clone();
                v["public_keys"] = json!(["a"]);
                v.to_string()
            },
            "invalid type",
        ),
    ];
    for (text, problem) in cases {
        let error = KeyFile::parse(&text, &path).expect_err(&text);
        assert!(matches!(error, KeyFileError::Malformed { .. }), "{error:?}");
        assert!(error.to_string().contains(problem), "{text}: {error}");
    }
}

#[test]
fn another_format_is_refused() {
    let (path, mut value) = valid_file("format");
    value["format"] = json!("pbft-keys/v9");
    assert_eq!(
        load_value(&path, &value),
        Err(KeyFileError::UnsupportedFormat {
            path: path.clone(),
            found: "pbft-keys/v9".into()
        })
    );
}

#[test]
fn bad_keys_are_named() {
    let (path, valid) = valid_file("bad-keys");
    let mut short_secret = valid.clone();
    short_secret["secret_key"] = json!("abcd");
    let mut not_hex = valid.clone();
    not_hex["public_keys"]["n3"] = json!("z".repeat(64));
    // Not every 32-byte string is a point on the curve.
    let off_curve = (0u8..=255)
        .map(|b| [b; 32])
        .find(|k| !pbft_core::Ed25519Auth::is_valid_public_key(k))
        .expect("some byte pattern is off the curve");
    let mut invalid_point = valid.clone();
    invalid_point["public_keys"]["n2"] = json!(off_curve
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>());
    for (value, field) in [
        (short_secret, "secret_key"),
        (not_hex, "public_keys.n3"),
        (invalid_point, "public_keys.n2"),
    ] {
        let error = load_value(&path, &value).expect_err(field);
        assert!(
            matches!(&error, KeyFileError::BadKey { field: f, .. } if f == field),
            "{error:?}"
        );
        assert!(error.to_string().contains(field), "{error}");
    }
}

#[test]
fn a_secret_key_must_match_the_nodes_own_public_key() {
    let (path, valid) = valid_file("mismatch");
    let mut swapped = valid.clone();
    swapped["public_keys"]["n1"] = valid["public_keys"]["n2"].clone();
    assert_eq!(
        load_value(&path, &swapped),
        Err(KeyFileError::SecretDoesNotMatch { path: path.clone() })
    );
    let mut missing = valid;
    missing["public_keys"]
        .as_object_mut()
        .expect("object")
        .remove("n1");
    assert_eq!(
        load_value(&path, &missing),
        Err(KeyFileError::OwnPublicKeyMissing { path: path.clone() })
    );
}

#[test]
fn a_key_file_must_fit_the_cluster_init_describes() {
    let (path, valid) = valid_file("fit");
    let file = load_value(&path, &valid).expect("valid");
    let four = directory(&["n1", "n2", "n3", "n4"]);
    assert!(file.authenticator("n1", &four).is_ok());
    assert_eq!(
        file.authenticator("n2", &four).err(),
        Some(KeyFileError::WrongNode {
            path: path.clone(),
            file: "n1".into(),
            init: "n2".into()
        })
    );
    assert_eq!(
        file.authenticator("n1", &directory(&["n1", "n2", "n3", "n4", "n5"]))
            .err(),
        Some(KeyFileError::MissingPublicKey {
            path: path.clone(),
            node: "n5".into()
        })
    );
    assert_eq!(
        file.authenticator("n1", &directory(&["n1", "n2", "n3"]))
            .err(),
        Some(KeyFileError::UnknownNode {
            path: path.clone(),
            node: "n4".into()
        })
    );
}
