//! The workspace's `rust-version` is the real minimum: the highest
//! `rust-version` among the locked dependencies (cargo reads each one's
//! manifest), no lower and no higher.

use std::process::Command;

use serde_json::Value;

fn version(text: &str) -> Vec<u64> {
    text.split('.')
        .filter_map(|part| part.parse().ok())
        .collect()
}

#[test]
fn rust_version_is_the_highest_a_locked_dependency_needs() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--locked", "--offline", "--format-version", "1"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("cargo runs");
    if !output.status.success() {
        // Offline, cargo needs every manifest already downloaded
        // (`cargo fetch`); without them there is nothing to compare.
        eprintln!(
            "skipped: cargo metadata --offline failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return;
    }
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let packages = metadata["packages"].as_array().expect("packages");
    let ours: Vec<&Value> = packages
        .iter()
        .filter(|p| members.contains(&p["id"].as_str().unwrap_or_default()))
        .collect();
    let needed = packages
        .iter()
        .filter(|p| !members.contains(&p["id"].as_str().unwrap_or_default()))
        .filter_map(|p| Some((version(p["rust_version"].as_str()?), p["name"].to_string())))
        .max()
        .expect("some dependency states a rust-version");
    assert_eq!(ours.len(), 4, "four workspace members");
    for package in ours {
        let declared = package["rust_version"].as_str().unwrap_or_default();
        assert_eq!(
            version(declared),
            needed.0,
            "{} declares rust-version {declared}; {} needs {:?}",
            package["name"],
            needed.1,
            needed.0
        );
    }
}
