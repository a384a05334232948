//! The node's command line as a user meets it: a flag the mode would
//! ignore, or a setting the replica could not use, stops the process at
//! once with exit status 2 and a message that names the flag, before any
//! input is read.

use std::process::{Command, Output, Stdio};

fn node(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbft-node"))
        .args(args)
        .env_remove("PBFT_MODE")
        .env_remove("PBFT_KEYS")
        .env_remove("PBFT_AUTH")
        .env_remove("PBFT_CLIENT_KEYS")
        .stdin(Stdio::null())
        .output()
        .expect("pbft-node runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `args` must stop the node with status 2 and a message holding `named`.
fn refused(args: &[&str], named: &[&str]) -> String {
    let output = node(args);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
    for part in named {
        assert!(text.contains(part), "{args:?} names {part}: {text}");
    }
    text
}

const REPLICA: [&str; 4] = ["--mode", "replica", "--auth", "none"];

#[test]
fn the_embedded_default_refuses_the_flags_it_would_ignore() {
    refused(
        &["--tick-ms", "0"],
        &["--tick-ms", "--mode replica", "embedded"],
    );
    refused(
        &["--checkpoint-interval", "1"],
        &["--checkpoint-interval", "--mode replica"],
    );
    refused(&["--keys", "n1.keys.json"], &["--keys", "--mode replica"]);
    refused(
        &["--client-keys", "clients.json"],
        &["--client-keys", "--mode replica"],
    );
    let output = Command::new(env!("CARGO_BIN_EXE_pbft-node"))
        .env("PBFT_AUTH", "none")
        .env_remove("PBFT_MODE")
        .stdin(Stdio::null())
        .output()
        .expect("pbft-node runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--auth (set by PBFT_AUTH)"));
    assert!(node(&[]).status.success(), "no flags: the embedded default");
}

#[test]
fn settings_are_checked_when_the_process_starts() {
    let huge = [
        &REPLICA[..],
        &["--checkpoint-interval", "18446744073709551615"],
    ]
    .concat();
    let text = refused(
        &huge,
        &["--checkpoint-interval 18446744073709551615", "1 to 32768"],
    );
    assert!(!text.contains("the window"), "{text}");
    refused(
        &[&REPLICA[..], &["--max-batch", "5000"]].concat(),
        &["--max-batch 5000"],
    );
}

#[test]
fn a_view_change_timeout_below_one_tick_is_refused_and_rounding_is_said() {
    refused(
        &[&REPLICA[..], &["--view-change-timeout-ms", "0"]].concat(),
        &["--view-change-timeout-ms 0", "one tick", "--tick-ms 10"],
    );
    let output = node(&[&REPLICA[..], &["--view-change-timeout-ms", "25"]].concat());
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("using 20 ms (2 ticks)"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn keygen_names_the_directory_it_cannot_create() {
    let scratch = std::env::temp_dir().join(format!("pbft-keygen-out-{}", std::process::id()));
    std::fs::write(&scratch, "a file, not a directory").expect("scratch file");
    let out = scratch.join("keys");
    let out = out.display().to_string();
    let output = node(&["keygen", "--node-ids", "n1,n2", "--out", &out]);
    let text = stderr(&output);
    let _ = std::fs::remove_file(&scratch);
    assert!(!output.status.success());
    assert!(text.contains(&out), "names {out}: {text}");
}
