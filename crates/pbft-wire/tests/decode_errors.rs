//! Decoding says what is wrong, with the right error code, and never
//! panics.

use pbft_wire::{decode, DecodeError, ErrorCode, Header};

const VALID: &str = r#"{"src":"c1","dest":"n1","body":{"type":"pbft_request","msg_id":2,"operation":"set x=42","client":"c1"}}"#;

fn header(msg_id: Option<u64>) -> Header {
    Header {
        src: "c1".into(),
        dest: "n1".into(),
        msg_id,
    }
}

#[test]
fn lines_that_are_not_json_cannot_be_answered() {
    for line in ["", "not json", "{", r#"{"src":"c1"} trailing"#, "\u{0}"] {
        let error = decode(line).expect_err(line);
        assert!(
            matches!(error, DecodeError::NotJson(_)),
            "{line}: {error:?}"
        );
        assert_eq!(error.code(), None);
        assert_eq!(error.header(), None);
    }
}

#[test]
fn broken_envelopes_name_the_broken_part() {
    let cases = [
        ("[1,2]", "expected an object, found an array"),
        (
            r#"{"dest":"n1","body":{"type":"init"}}"#,
            "missing field `src`",
        ),
        (
            r#"{"src":1,"dest":"n1","body":{}}"#,
            "field `src` must be a string",
        ),
        (
            r#"{"src":"c1","body":{"type":"init"}}"#,
            "missing field `dest`",
        ),
        (r#"{"src":"c1","dest":"n1"}"#, "missing field `body`"),
        (
            r#"{"src":"c1","dest":"n1","body":"x"}"#,
            "field `body` must be an object",
        ),
        (
            r#"{"src":"c1","dest":"n1","body":{}}"#,
            "in body: missing field `type`",
        ),
        (
            r#"{"src":"c1","dest":"n1","body":{"type":7}}"#,
            "field `type` must be a string",
        ),
    ];
    for (line, problem) in cases {
        let error = decode(line).expect_err(line);
        assert!(
            matches!(error, DecodeError::BadEnvelope(_)),
            "{line}: {error:?}"
        );
        assert!(error.to_string().contains(problem), "{line}: {error}");
        assert_eq!(error.code(), None);
    }
}

#[test]
fn an_unknown_type_is_not_supported() {
    let error = decode(r#"{"src":"c1","dest":"n1","body":{"type":"teleport","msg_id":5}}"#)
        .expect_err("unknown type");
    assert_eq!(
        error,
        DecodeError::UnknownType {
            header: header(Some(5)),
            type_name: "teleport".into()
        }
    );
    assert_eq!(error.code(), Some(ErrorCode::NotSupported));
    assert!(
        error.to_string().contains("pbft_request"),
        "lists known types"
    );
}

#[test]
fn missing_and_mistyped_fields_are_malformed_and_named() {
    let cases = [
        (r#""msg_id":2,"client":"c1""#, "missing field `operation`"),
        (
            r#""msg_id":2,"operation":7"#,
            "invalid type: integer `7`, expected a string",
        ),
        (
            r#""msg_id":"2","operation":"get x""#,
            "invalid type: string \"2\"",
        ),
        (
            r#""msg_id":2,"operation":"get x","timestamp":-1"#,
            "integer `-1`",
        ),
        (r#""operation":"get x""#, "missing field `msg_id`"),
    ];
    for (fields, problem) in cases {
        let line =
            format!(r#"{{"src":"c1","dest":"n1","body":{{"type":"pbft_request",{fields}}}}}"#);
        let error = decode(&line).expect_err(&line);
        let DecodeError::BadBody {
            header: ref h,
            ref type_name,
            ..
        } = error
        else {
            panic!("{line}: {error:?}");
        };
        assert_eq!(type_name, "pbft_request");
        assert_eq!(h.src, "c1");
        assert_eq!(error.code(), Some(ErrorCode::MalformedRequest));
        let text = error.to_string();
        assert!(text.contains(problem), "{line}: {text}");
        assert!(!text.contains("column"), "no positions in the text: {text}");
    }
}

#[test]
fn a_bad_digest_is_named() {
    let line = r#"{"src":"n2","dest":"n1","body":{"type":"pbft_prepare","view":0,"sequence_number":1,"digest":"abc","replica":"n2"}}"#;
    let error = decode(line).expect_err("short digest");
    assert_eq!(error.code(), Some(ErrorCode::MalformedRequest));
    assert!(error.to_string().contains("invalid digest"), "{error}");
    let bad_signature = line
        .replace("\"abc\"", &format!("\"{}\"", "0".repeat(64)))
        .replace(r#""replica":"n2""#, r#""replica":"n2","signature":"00""#);
    let error = decode(&bad_signature).expect_err("short signature");
    assert!(
        error
            .to_string()
            .contains("invalid signature: expected 128 hex characters, found 2"),
        "{error}"
    );
    assert_eq!(
        error.header(),
        Some(&Header {
            src: "n2".into(),
            dest: "n1".into(),
            msg_id: None,
        })
    );
}

#[test]
fn decoding_never_panics_on_mutations_of_a_valid_line() {
    assert!(decode(VALID).is_ok());
    let bytes = VALID.as_bytes();
    // Every truncation, and every single-byte replacement with a few
    // characters that matter to JSON.
    for end in 0..bytes.len() {
        let _ = decode(&String::from_utf8_lossy(&bytes[..end]));
    }
    for at in 0..bytes.len() {
        for replacement in [b'"', b'{', b'}', b'1', b'-', b' ', b'\\', b'x', b':', b','] {
            let mut mutated = bytes.to_vec();
            mutated[at] = replacement;
            let line = String::from_utf8_lossy(&mutated);
            if let Ok(envelope) = decode(&line) {
                // Whatever is accepted re-encodes to something that decodes
                // to the same envelope.
                assert_eq!(decode(&pbft_wire::encode(&envelope)), Ok(envelope));
            }
        }
    }
}
