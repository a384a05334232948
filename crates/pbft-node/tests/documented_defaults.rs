//! Figures and lists the docs state about the node, checked against the
//! code that determines them: the defaults of its flags (README.md and
//! docs/protocol.md), and its Byzantine behaviours (docs/scenarios.md).

use std::path::Path;

use pbft_node::byzantine::Behaviour;
use pbft_node::cli::{CommandLine, Plan};
use pbft_node::replica_node::Settings;

/// A doc of the repository, with line breaks as spaces so that phrases
/// wrapped over two lines still match.
fn doc(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The number right after the first `before` in `text`.
fn number_after(text: &str, before: &str) -> u64 {
    text.split(before)
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {before:?}"))
}

/// Replica mode's settings with every flag at its default.
fn default_settings() -> Settings {
    let argv = ["pbft-node", "--mode", "replica", "--auth", "none"];
    match CommandLine::parse_from(argv).map(|c| c.plan()) {
        Ok(Ok(Plan::Replica { settings, .. })) => settings,
        other => panic!("the defaults are refused: {:?}", other.map(|p| p.err())),
    }
}

#[test]
fn protocol_md_states_the_nodes_defaults() {
    let protocol = doc("docs/protocol.md");
    let settings = default_settings();
    assert_eq!(
        number_after(&protocol, "`view_change_timeout` ticks ("),
        settings.view_change_timeout,
        "the view-change timeout, in ticks"
    );
    assert_eq!(
        number_after(&protocol, "`--view-change-timeout-ms "),
        pbft_node::cli::DEFAULT_VIEW_CHANGE_TIMEOUT_MS
    );
    assert_eq!(
        number_after(&protocol, "at `--tick-ms "),
        pbft_node::cli::DEFAULT_TICK_MS
    );
    assert_eq!(
        number_after(&protocol, "(`K = "),
        settings.checkpoint_interval
    );
    assert_eq!(
        number_after(&protocol, "`--max-in-flight` numbers ("),
        settings.max_in_flight
    );
    assert_eq!(
        number_after(&protocol, "`--max-batch` ("),
        settings.max_batch as u64
    );
}

#[test]
fn the_readme_states_each_flags_default() {
    let readme = doc("README.md");
    let settings = default_settings();
    for (flag, default) in [
        ("--tick-ms", pbft_node::cli::DEFAULT_TICK_MS),
        (
            "--view-change-timeout-ms",
            pbft_node::cli::DEFAULT_VIEW_CHANGE_TIMEOUT_MS,
        ),
        ("--checkpoint-interval", settings.checkpoint_interval),
        ("--max-in-flight", settings.max_in_flight),
        ("--max-batch", settings.max_batch as u64),
    ] {
        assert_eq!(
            number_after(&readme, &format!("`{flag}` (default ")),
            default,
            "README.md on {flag}"
        );
    }
    assert_eq!(
        number_after(&readme, "`--checkpoint-interval` (default 128, at most "),
        pbft_node::cli::MAX_CHECKPOINT_INTERVAL
    );
    for (flag, default) in [
        ("--max-request-bytes", settings.max_request_bytes),
        ("--max-batch-bytes", settings.max_batch_bytes),
    ] {
        let mib = number_after(&readme, &format!("`{flag}` (default "));
        assert!(
            readme.contains(&format!("`{flag}` (default {mib} MiB")),
            "README.md gives {flag}'s default in MiB"
        );
        assert_eq!(mib << 20, default as u64, "README.md on {flag}");
    }
    assert_eq!(
        number_after(&readme, "`--max-batch-bytes` (default 4 MiB, at most ") << 20,
        pbft_node::cli::MAX_BATCH_BYTES_FLAG as u64
    );
}

#[test]
fn scenarios_md_lists_every_byzantine_behaviour() {
    let scenarios = doc("docs/scenarios.md");
    let listed = scenarios
        .split("behaviour = \"equivocate\" #")
        .nth(1)
        .and_then(|rest| rest.split('[').next())
        .expect("the file format's behaviour line");
    let section = scenarios
        .split("## Byzantine replicas")
        .nth(1)
        .expect("the Byzantine replicas section");
    for behaviour in Behaviour::ALL {
        let name = behaviour.name();
        assert!(listed.contains(name), "the file format lists {name}");
        assert!(
            section.contains(&format!("`{name}`")),
            "the section describes {name}"
        );
        assert_eq!(Behaviour::parse(name), Some(behaviour));
    }
    let named = listed
        .replace(" or ", ",")
        .replace('#', ",")
        .split(',')
        .filter(|name| !name.trim().is_empty())
        .count();
    assert_eq!(
        named,
        Behaviour::ALL.len(),
        "no more names than behaviours: {listed}"
    );
}

#[test]
fn the_readme_builds_each_binary_before_it_runs_it() {
    let readme = doc("README.md");
    for (binary, build) in [
        ("target/debug/pbft-node", "cargo build -p pbft-node"),
        (
            "target/release/pbft-node",
            "cargo build --release -p pbft-node",
        ),
    ] {
        let Some(used) = readme.find(binary) else {
            continue;
        };
        let built = readme.find(build);
        assert!(
            built.is_some_and(|at| at < used),
            "README.md runs {binary} but does not say `{build}` first"
        );
    }
}
