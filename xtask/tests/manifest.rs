//! What the workspace manifest claims holds: its `rust-version` is the
//! real minimum, the highest `rust-version` among the locked dependencies
//! (cargo reads each one's manifest), and each licence its `license`
//! names has its text in the repository.

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
    assert_eq!(ours.len(), 7, "seven workspace members");
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

#[test]
fn every_licence_the_manifest_names_is_in_the_repository() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let read = |file: &str| std::fs::read_to_string(format!("{root}/{file}"));
    let manifest = read("Cargo.toml").expect("Cargo.toml");
    let license = manifest
        .lines()
        .find_map(|line| line.strip_prefix("license = "))
        .expect("the workspace names its licence")
        .trim_matches('"');
    let texts = [
        (
            "MIT",
            "LICENSE-MIT",
            "Permission is hereby granted, free of charge",
        ),
        (
            "Apache-2.0",
            "LICENSE-APACHE",
            "Apache License\n                        Version 2.0, January 2004",
        ),
    ];
    let named: Vec<&str> = license.split(" OR ").collect();
    assert_eq!(named, ["MIT", "Apache-2.0"], "{license}");
    for (id, file, opening) in texts {
        let text = read(file).unwrap_or_else(|e| panic!("{id} is named, but {file}: {e}"));
        assert!(text.contains(opening), "{file} holds the {id} text");
    }
    let mit = read("LICENSE-MIT").unwrap_or_default();
    assert!(mit.contains("Copyright (c) the pbft authors"), "{mit}");
}
