//! Property tests (`proptest`) of the JSON wire decoder.
//!
//! [`decode`] reads untrusted lines from clients and peers, so it must never
//! panic, and whatever it accepts must mean the same after re-encoding. For
//! every generated input these tests check that:
//!
//! - `decode` returns instead of panicking, on arbitrary bytes, on arbitrary
//!   strings, and on valid lines after random mutations. The valid lines are
//!   the examples of `docs/protocol.md` and generated envelopes; the
//!   mutations flip bits, insert and delete bytes, truncate, splice JSON
//!   tokens (`null`, `-1`, `1e999`, `"x"`, `[]`, `{}`, integers beyond
//!   `u64`, deep nesting, ...), and, anywhere in the JSON tree, replace a
//!   field's value, remove a field, add one, or change a `type`.
//! - A refusal is consistent: [`DecodeError::NotJson`] exactly when the line
//!   is not JSON, and an error that can be answered names the line's own
//!   `src`, `dest` and `msg_id`.
//! - Whatever `decode` accepts round-trips: `decode(encode(x)) == x`, and
//!   encoding is stable: `encode(decode(encode(x))) == encode(x)`.
//! - Envelopes generated directly, of every body type with arbitrary field
//!   values (strings with any unicode and characters JSON must escape, `u64`
//!   extremes, any JSON value), round-trip exactly.
//!
//! Each property runs a fixed number of cases (see [`config`]);
//! `PROPTEST_CASES=N` runs `N` cases of each instead. A failing case is
//! shrunk, printed, and saved in `fuzz_decode.proptest-regressions` next to
//! this file, which later runs replay first.

mod common;
mod fuzz;

use pbft_wire::{decode, encode, Body, DecodeError, Envelope};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{FileFailurePersistence, TestRunner};
use serde_json::{json, Value};

use fuzz::generate::*;
use fuzz::mutate::*;

/// `cases` cases per property, unless `PROPTEST_CASES` says otherwise.
///
/// (`ProptestConfig::with_cases` would override the variable.)
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    // Next to this file: `tests/` has no lib.rs for the default to find.
    config.failure_persistence = Some(Box::new(FileFailurePersistence::WithSource(
        "proptest-regressions",
    )));
    config
}

// ---------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------

/// Decodes `line` (which must not panic) and checks what came out.
fn check_line(line: &str) -> Result<(), TestCaseError> {
    match decode(line) {
        Ok(envelope) => check_round_trip(&envelope),
        Err(error) => check_refusal(line, &error),
    }
}

/// `decode(encode(x)) == x`, and a second encoding is the first.
fn check_round_trip(envelope: &Envelope) -> Result<(), TestCaseError> {
    let line = encode(envelope);
    prop_assert!(!line.contains('\n'), "one line: {}", line);
    match decode(&line) {
        Ok(again) => {
            prop_assert_eq!(&again, envelope, "re-encoded as {}", line);
            prop_assert_eq!(encode(&again), line);
        }
        Err(error) => prop_assert!(false, "re-encoded as {}, refused: {}", line, error),
    }
    Ok(())
}

/// A refusal says truthfully whether the line was JSON, and whom to answer.
fn check_refusal(line: &str, error: &DecodeError) -> Result<(), TestCaseError> {
    prop_assert!(!error.to_string().is_empty());
    prop_assert_eq!(error.code().is_some(), error.header().is_some());
    let json = serde_json::from_str::<Value>(line);
    prop_assert_eq!(
        matches!(error, DecodeError::NotJson(_)),
        json.is_err(),
        "{:?}",
        error
    );
    if let (Some(header), Ok(json)) = (error.header(), json) {
        prop_assert_eq!(json.get("src"), Some(&Value::from(header.src.as_str())));
        prop_assert_eq!(json.get("dest"), Some(&Value::from(header.dest.as_str())));
        let msg_id = json.get("body").and_then(|b| b.get("msg_id"));
        prop_assert_eq!(header.msg_id, msg_id.and_then(Value::as_u64));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(2000))]

    /// Arbitrary bytes. The node skips lines that are not UTF-8, so invalid
    /// sequences are replaced (by U+FFFD) rather than the case discarded.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        check_line(&String::from_utf8_lossy(&bytes))?;
    }

    /// Arbitrary strings, and strings of JSON's own characters.
    #[test]
    fn arbitrary_strings_never_panic(
        line in prop_oneof![
            any::<String>(),
            "[\\[\\]{}\":,.0-9eEa-z\\\\ -]{0,256}",
        ]
    ) {
        check_line(&line)?;
    }
}

proptest! {
    #![proptest_config(config(1500))]

    /// Valid lines after random edits: no panic, consistent refusals, and
    /// whatever is still accepted round-trips.
    #[test]
    fn mutated_lines_never_panic_and_round_trip((line, mutations) in mutated_line()) {
        check_line(&mutate(&line, &mutations))?;
    }
}

proptest! {
    #![proptest_config(config(1000))]

    /// Every body type, with arbitrary field values, round-trips exactly.
    #[test]
    fn generated_envelopes_round_trip(envelope in envelope()) {
        check_round_trip(&envelope)?;
    }
}

/// The strategies reach what the properties are about: every body type is
/// generated, and mutated lines are sometimes accepted and sometimes refused
/// in each way, so neither the round trip nor the refusal checks are idle.
#[test]
fn the_strategies_cover_what_they_test() {
    let mut runner = TestRunner::deterministic();

    let bodies = body();
    let mut types = std::collections::BTreeSet::new();
    for _ in 0..2000 {
        let body = bodies.new_tree(&mut runner).expect("a body").current();
        types.insert(body.type_name());
    }
    assert_eq!(types.len(), Body::TYPES.len(), "{types:?}");

    let lines = mutated_line();
    let (mut accepted, mut not_json, mut bad_envelope, mut unknown, mut bad_body) = (0, 0, 0, 0, 0);
    for _ in 0..2000 {
        let (line, mutations) = lines.new_tree(&mut runner).expect("a line").current();
        match decode(&mutate(&line, &mutations)) {
            Ok(_) => accepted += 1,
            Err(DecodeError::NotJson(_)) => not_json += 1,
            Err(DecodeError::BadEnvelope(_)) => bad_envelope += 1,
            Err(DecodeError::UnknownType { .. }) => unknown += 1,
            Err(DecodeError::BadBody { .. }) => bad_body += 1,
        }
    }
    let counts = [accepted, not_json, bad_envelope, unknown, bad_body];
    assert!(counts.iter().all(|&n| n >= 10), "{counts:?}");

    // Every example is valid to begin with, and a tree edit changes it but
    // keeps it JSON.
    assert!(examples().len() >= Body::TYPES.len());
    let indices = any::<Index>();
    for line in examples() {
        assert!(decode(line).is_ok(), "{line}");
        let at = indices.new_tree(&mut runner).expect("an index").current();
        let removed = mutate(line, &[Mutation::Remove(at)]);
        assert!(serde_json::from_str::<Value>(&removed).is_ok(), "{removed}");
        assert_ne!(&removed, line);
    }
}

/// Found by `generated_envelopes_round_trip`,
/// `mutated_lines_never_panic_and_round_trip` and the `cargo fuzz` target:
/// serde_json's default float parsing is not exact, so a float in a JSON
/// value, encoded as its shortest representation, could decode to a
/// neighbouring `f64`, and so could an integer too large for `u64`. The
/// `float_roundtrip` feature makes the parse exact.
#[test]
fn floats_in_json_values_round_trip_exactly() {
    for f in [
        7.446645737051579e304,
        3.337056540411875e-245,
        1.947700395895162e-169,
    ] {
        let envelope = Envelope {
            src: "c1".into(),
            dest: "n1".into(),
            body: Body::Write {
                msg_id: 1,
                key: json!(f),
                value: json!([f, { "f": f }]),
                signature: None,
            },
        };
        let line = encode(&envelope);
        assert_eq!(decode(&line), Ok(envelope), "{line}");
    }
    let line = r#"{"src":"c1","dest":"n2","body":{"type":"cas","msg_id":5,"key":0,"from":1,"to":77777000000000000000000000000000000000007777777777773}}"#;
    let envelope = decode(line).expect("decodes");
    let again = encode(&envelope);
    assert_eq!(decode(&again), Ok(envelope), "{again}");
}
