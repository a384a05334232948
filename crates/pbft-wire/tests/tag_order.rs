//! The decoder reads a body whose `type` comes first without buffering it,
//! and any other body through serde's buffering decoder. Both must agree:
//! where `type` sits does not change what a line decodes to, and a body
//! has exactly one `type`, a string, at every depth.

use pbft_wire::{decode, encode, Body, DecodeError, ErrorCode};
use serde_json::{json, Value};

const DIGEST: &str = "20f3ada48c5e0b0521aeef3cbd2576fe575c43a8aeda79f13e23904755dceb5d";

/// A vote body with its fields in the given order.
fn vote(order: &[&str]) -> String {
    let field = |name: &str| match name {
        "type" => r#""type":"pbft_prepare""#.to_string(),
        "view" => r#""view":0"#.to_string(),
        "sequence_number" => r#""sequence_number":1"#.to_string(),
        "digest" => format!(r#""digest":"{DIGEST}""#),
        "replica" => r#""replica":"n2""#.to_string(),
        other => panic!("no field {other}"),
    };
    let fields: Vec<String> = order.iter().map(|name| field(name)).collect();
    format!("{{{}}}", fields.join(","))
}

fn line(body: &str) -> String {
    format!(r#"{{"src":"n2","dest":"n1","body":{body}}}"#)
}

/// A checkpoint proof holding `body`, inside a view change whose own
/// `type` is first or last.
fn in_view_change(body: &str, type_first: bool) -> String {
    let rest = format!(
        r#""new_view":1,"replica":"n2","checkpoint":{{"sequence_number":0,"digest":"{DIGEST}","proof":[{body}]}},"prepared":[]"#
    );
    let tag = r#""type":"pbft_view_change""#;
    if type_first {
        line(&format!("{{{tag},{rest}}}"))
    } else {
        line(&format!("{{{rest},{tag}}}"))
    }
}

fn problem(line: &str) -> String {
    match decode(line) {
        Err(DecodeError::BadBody { problem, .. }) => problem,
        other => panic!("{line}: expected a malformed body, got {other:?}"),
    }
}

#[test]
fn type_anywhere_decodes_the_same() {
    let first = decode(&line(&vote(&[
        "type",
        "view",
        "sequence_number",
        "digest",
        "replica",
    ])))
    .expect("type first");
    for order in [
        ["view", "type", "sequence_number", "digest", "replica"],
        ["view", "sequence_number", "digest", "replica", "type"],
    ] {
        assert_eq!(decode(&line(&vote(&order))), Ok(first.clone()), "{order:?}");
    }
    assert!(matches!(first.body, Body::PbftPrepare(_)));
    assert!(encode(&first).contains(r#""body":{"type":"pbft_prepare","#));
}

#[test]
fn a_second_type_is_refused_wherever_it_is() {
    let checkpoint = format!(
        r#"{{"type":"pbft_checkpoint","sequence_number":0,"digest":"{DIGEST}","replica":"n2"}}"#
    );
    let doubled = checkpoint.replacen(
        r#""type":"pbft_checkpoint","#,
        r#""type":"pbft_checkpoint","type":"pbft_checkpoint","#,
        1,
    );
    let late = checkpoint.replacen(r#""replica":"n2""#, r#""replica":"n2","type":"init""#, 1);
    for type_first in [true, false] {
        assert!(decode(&in_view_change(&checkpoint, type_first)).is_ok());
        let line = in_view_change(&doubled, type_first);
        assert!(problem(&line).contains("duplicate field `type`"), "{line}");
        // The diagnosis reads the line as a JSON value, where the last
        // `type` wins, so it words this one as a malformed `init`.
        let line = in_view_change(&late, type_first);
        let error = decode(&line).expect_err(&line);
        assert_eq!(error.code(), Some(ErrorCode::MalformedRequest), "{line}");
    }
    let top = vote(&["type", "view", "sequence_number", "digest", "replica"]).replacen(
        '}',
        r#","type":"pbft_commit"}"#,
        1,
    );
    assert!(problem(&line(&top)).contains("duplicate field `type`"));
}

#[test]
fn a_duplicate_field_deep_in_a_late_typed_body_is_refused() {
    let checkpoint = format!(
        r#"{{"type":"pbft_checkpoint","sequence_number":0,"sequence_number":1,"digest":"{DIGEST}","replica":"n2"}}"#
    );
    for type_first in [true, false] {
        let line = in_view_change(&checkpoint, type_first);
        assert!(
            problem(&line).contains("duplicate field `sequence_number`"),
            "{line}"
        );
    }
}

#[test]
fn a_type_is_a_string_and_a_body_an_object_at_every_depth() {
    let numbered = json!({"type": 17, "sequence_number": 0, "digest": DIGEST, "replica": "n2"});
    let listed = json!(["pbft_checkpoint", 0, DIGEST, "n2"]);
    for (body, refusal) in [
        (numbered, "expected variant identifier"),
        (listed, "expected internally tagged enum Body"),
    ] {
        for type_first in [true, false] {
            let line = in_view_change(&body.to_string(), type_first);
            assert!(problem(&line).contains(refusal), "{line}");
        }
    }
    let top: Value = json!({"src": "c1", "dest": "n1", "body": ["pbft_status", 3, 1]});
    let error = decode(&top.to_string()).expect_err("an array body");
    assert!(
        error.to_string().contains("field `body` must be an object"),
        "{error}"
    );
}
