//! The node never panics on input and writes only JSON replies to stdout,
//! whatever it is fed.

use std::io::Cursor;

use serde_json::Value;

const SESSION: &[&str] = &[
    r#"{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1","n2","n3","n4"]}}"#,
    r#"{"src":"c1","dest":"n1","body":{"type":"pbft_request","msg_id":2,"operation":"set x=42","client":"c1","timestamp":1}}"#,
    r#"{"src":"c1","dest":"n1","body":{"type":"pbft_status","msg_id":3,"sequence_number":1}}"#,
    r#"{"src":"n2","dest":"n1","body":{"type":"pbft_commit","view":0,"sequence_number":1,"digest":"9eb6536e36883eab12f2dfe566f72995f43c452350ae6a04cee7d69df15f298d","replica":"n2"}}"#,
];

/// Runs the node in-process on `input` and returns its stdout lines.
fn run(input: &str) -> Vec<Value> {
    let mut output = Vec::new();
    pbft_node::run(Cursor::new(input.as_bytes()), &mut output).expect("in-memory streams");
    String::from_utf8(output)
        .expect("stdout is UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("every stdout line is JSON"))
        .collect()
}

fn assert_replies_only(output: &[Value], input: &str) {
    let replies = ["init_ok", "pbft_request_ok", "pbft_status_ok", "error"];
    for line in output {
        let kind = line["body"]["type"].as_str().unwrap_or_default();
        assert!(replies.contains(&kind), "{input}\nwrote {line}");
    }
}

#[test]
fn mutated_sessions_never_panic_and_only_reply() {
    let session = SESSION.join("\n");
    let bytes = session.as_bytes();
    let mut runs = 0;
    for at in (0..bytes.len()).step_by(3) {
        for replacement in [b'"', b'}', b'0', b'9', b'-', b'\n', b'x', b'\\'] {
            let mut mutated = bytes.to_vec();
            mutated[at] = replacement;
            let input = String::from_utf8_lossy(&mutated).into_owned();
            let output = run(&input);
            assert_replies_only(&output, &input);
            runs += 1;
        }
    }
    assert!(runs > 1000, "{runs} runs");
}

#[test]
fn hostile_values_are_answered_not_fatal() {
    let init = SESSION[0];
    let lines = [
        r#"{"src":"c1","dest":"n1","body":{"type":"pbft_status","msg_id":18446744073709551615,"sequence_number":18446744073709551615}}"#,
        r#"{"src":"c1","dest":"n1","body":{"type":"pbft_status","msg_id":1,"sequence_number":0}}"#,
        r#"{"src":"c1","dest":"n1","body":{"type":"pbft_status","msg_id":1,"sequence_number":1e3}}"#,
        r#"{"src":"c1","dest":"n1","body":{"type":"pbft_request","msg_id":1,"operation":"set =","timestamp":18446744073709551615}}"#,
        r#"{"src":"c1","dest":"n1","body":{"type":"pbft_request","msg_id":1,"operation":""}}"#,
        r#"{"src":"","dest":"","body":{"type":"pbft_request","msg_id":1,"operation":"get \u0000"}}"#,
        r#"{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":[]}}"#,
        r#"{"src":"n3","dest":"n1","body":{"type":"pbft_pre_prepare","view":0,"sequence_number":1,"digest":"00","batch":[]}}"#,
        r#"{"src":"c1","dest":"n1","body":{"type":"error","code":99,"text":"?"}}"#,
        "\u{feff}{}",
        "null",
        "[]",
        "",
    ];
    for line in lines {
        let input = format!("{init}\n{line}\n");
        let output = run(&input);
        assert_replies_only(&output, &input);
        assert!(!output.is_empty(), "init is always answered: {input}");
    }
}

#[test]
fn an_empty_cluster_cannot_be_initialised() {
    let output = run(
        r#"{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":[]}}"#,
    );
    assert_eq!(output.len(), 1);
    assert_eq!(output[0]["body"]["type"], "error");
    assert_eq!(output[0]["body"]["code"], 12);
    assert_eq!(
        output[0]["body"]["text"],
        "invalid node_ids: node_ids is empty"
    );
}

#[test]
fn the_embedded_cluster_size_is_bounded() {
    let names: Vec<String> = (0..=pbft_node::embedded::MAX_REPLICAS)
        .map(|i| format!("\"n{i}\""))
        .collect();
    let init = format!(
        r#"{{"src":"c0","dest":"n0","body":{{"type":"init","msg_id":1,"node_id":"n0","node_ids":[{}]}}}}"#,
        names.join(",")
    );
    let output = run(&init);
    assert_eq!(output[0]["body"]["code"], 12, "{}", output[0]);
    let fewer = init.replace(&format!(r#","n{}""#, pbft_node::embedded::MAX_REPLICAS), "");
    assert_eq!(run(&fewer)[0]["body"]["type"], "init_ok");
}

#[test]
fn a_request_over_the_size_limit_is_refused_with_error_12() {
    let operation = format!("set x={}", "v".repeat(pbft_core::DEFAULT_MAX_REQUEST_BYTES));
    let request = format!(
        r#"{{"src":"c1","dest":"n1","body":{{"type":"pbft_request","msg_id":2,"operation":"{operation}","client":"c1","timestamp":1}}}}"#
    );
    let output = run(&format!("{}\n{request}\n", SESSION[0]));
    let reply = &output[1]["body"];
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], 12);
    let text = reply["text"].as_str().expect("text");
    let limit = pbft_core::DEFAULT_MAX_REQUEST_BYTES.to_string();
    assert!(text.contains(&limit), "{text}");
    // A request at the limit is ordered.
    let fits = "v".repeat(pbft_core::DEFAULT_MAX_REQUEST_BYTES - 64 - 2 - 6);
    let request = format!(
        r#"{{"src":"c1","dest":"n1","body":{{"type":"pbft_request","msg_id":2,"operation":"set x={fits}","client":"c1","timestamp":1}}}}"#
    );
    let output = run(&format!("{}\n{request}\n", SESSION[0]));
    assert_eq!(output[1]["body"]["type"], "pbft_request_ok");
}
