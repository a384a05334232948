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

use std::sync::OnceLock;

use pbft_core::{Digest, Signature};
use pbft_wire::{
    decode, encode, Body, DecodeError, Envelope, StatusOk, WireCheckpoint, WireCommitted,
    WireFetchState, WireForward, WireNewView, WirePrePrepare, WirePrepared, WireRequest,
    WireStableCheckpoint, WireState, WireViewChange, WireVote,
};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::strategy::{Union, ValueTree};
use proptest::test_runner::{FileFailurePersistence, TestRunner};
use serde_json::{json, Value};

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
// Field values
// ---------------------------------------------------------------------------

/// Integers, with the extremes and the edges of `f64` precision often.
fn int() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(i64::MAX as u64),
        Just((i64::MAX as u64) + 1),
        Just(1 << 53),
        Just((1 << 53) + 1),
        any::<u64>(),
    ]
}

/// Strings: any unicode, or the characters JSON must or may escape.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x1f\"\\\\/\\x7f\u{80}\u{2028}\u{2029}\u{fffd}\u{10ffff}é😀ab]{0,12}",
    ]
}

/// Any JSON value, nested a few levels.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        int().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::from)),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::from),
            btree_map(text(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

fn signature() -> impl Strategy<Value = Option<Signature>> {
    option::of(any::<[u8; 64]>().prop_map(Signature))
}

fn request() -> impl Strategy<Value = WireRequest> {
    (text(), option::of(int()), text()).prop_map(|(client, timestamp, operation)| WireRequest {
        client,
        timestamp,
        operation,
    })
}

fn vote() -> impl Strategy<Value = WireVote> {
    (
        option::of(int()),
        int(),
        int(),
        digest(),
        text(),
        signature(),
    )
        .prop_map(
            |(msg_id, view, sequence_number, digest, replica, signature)| WireVote {
                msg_id,
                view,
                sequence_number,
                digest,
                replica,
                signature,
            },
        )
}

fn status_ok() -> impl Strategy<Value = StatusOk> {
    (
        (int(), int(), int(), option::of(int()), text()),
        (
            option::of(digest()),
            any::<usize>(),
            any::<usize>(),
            any::<bool>(),
        ),
        (option::of(json()), option::of(vec(json(), 0..3))),
    )
        .prop_map(
            |(
                (in_reply_to, msg_id, sequence_number, view, phase),
                (digest, prepares_received, commits_received, executed),
                (result, results),
            )| StatusOk {
                in_reply_to,
                msg_id,
                sequence_number,
                view,
                phase,
                digest,
                prepares_received,
                commits_received,
                executed,
                result,
                results,
            },
        )
}

// ---------------------------------------------------------------------------
// Bodies and envelopes
// ---------------------------------------------------------------------------

/// Every body type that holds no other body.
fn flat_body() -> BoxedStrategy<Body> {
    Union::new(vec![
        (int(), text(), vec(text(), 0..4))
            .prop_map(|(msg_id, node_id, node_ids)| Body::Init {
                msg_id,
                node_id,
                node_ids,
            })
            .boxed(),
        (int(), int())
            .prop_map(|(in_reply_to, msg_id)| Body::InitOk {
                in_reply_to,
                msg_id,
            })
            .boxed(),
        (int(), text(), option::of(text()), option::of(int()))
            .prop_map(|(msg_id, operation, client, timestamp)| Body::PbftRequest {
                msg_id,
                operation,
                client,
                timestamp,
            })
            .boxed(),
        (int(), int(), int(), int(), text())
            .prop_map(
                |(in_reply_to, msg_id, sequence_number, view, phase)| Body::PbftRequestOk {
                    in_reply_to,
                    msg_id,
                    sequence_number,
                    view,
                    phase,
                },
            )
            .boxed(),
        (int(), int())
            .prop_map(|(msg_id, sequence_number)| Body::PbftStatus {
                msg_id,
                sequence_number,
            })
            .boxed(),
        status_ok().prop_map(Body::PbftStatusOk).boxed(),
        (option::of(int()), option::of(int()), any::<u32>(), text())
            .prop_map(|(in_reply_to, msg_id, code, text)| Body::Error {
                in_reply_to,
                msg_id,
                code,
                text,
            })
            .boxed(),
        (int(), json())
            .prop_map(|(msg_id, key)| Body::Read { msg_id, key })
            .boxed(),
        (int(), int(), json())
            .prop_map(|(in_reply_to, msg_id, value)| Body::ReadOk {
                in_reply_to,
                msg_id,
                value,
            })
            .boxed(),
        (int(), json(), json())
            .prop_map(|(msg_id, key, value)| Body::Write { msg_id, key, value })
            .boxed(),
        (int(), int())
            .prop_map(|(in_reply_to, msg_id)| Body::WriteOk {
                in_reply_to,
                msg_id,
            })
            .boxed(),
        (int(), json(), json(), json())
            .prop_map(|(msg_id, key, from, to)| Body::Cas {
                msg_id,
                key,
                from,
                to,
            })
            .boxed(),
        (int(), int())
            .prop_map(|(in_reply_to, msg_id)| Body::CasOk {
                in_reply_to,
                msg_id,
            })
            .boxed(),
        (option::of(int()), request(), signature())
            .prop_map(|(msg_id, request, signature)| {
                Body::PbftForward(WireForward {
                    msg_id,
                    request,
                    signature,
                })
            })
            .boxed(),
        (
            option::of(int()),
            int(),
            int(),
            digest(),
            vec(request(), 0..3),
            signature(),
        )
            .prop_map(
                |(msg_id, view, sequence_number, digest, batch, signature)| {
                    Body::PbftPrePrepare(WirePrePrepare {
                        msg_id,
                        view,
                        sequence_number,
                        digest,
                        batch,
                        signature,
                    })
                },
            )
            .boxed(),
        vote().prop_map(Body::PbftPrepare).boxed(),
        vote().prop_map(Body::PbftCommit).boxed(),
        (option::of(int()), int(), digest(), text(), signature())
            .prop_map(|(msg_id, sequence_number, digest, replica, signature)| {
                Body::PbftCheckpoint(WireCheckpoint {
                    msg_id,
                    sequence_number,
                    digest,
                    replica,
                    signature,
                })
            })
            .boxed(),
        (option::of(int()), int(), text(), signature())
            .prop_map(|(msg_id, sequence_number, replica, signature)| {
                Body::PbftFetchState(WireFetchState {
                    msg_id,
                    sequence_number,
                    replica,
                    signature,
                })
            })
            .boxed(),
    ])
    .boxed()
}

fn stable_checkpoint(inner: BoxedStrategy<Body>) -> impl Strategy<Value = WireStableCheckpoint> {
    (int(), digest(), vec(inner, 0..3)).prop_map(|(sequence_number, digest, proof)| {
        WireStableCheckpoint {
            sequence_number,
            digest,
            proof,
        }
    })
}

/// Every body type; the wire allows any body where one holds others.
fn body() -> BoxedStrategy<Body> {
    flat_body()
        .prop_recursive(2, 12, 3, |inner| {
            let pair = || (inner.clone().prop_map(Box::new), vec(inner.clone(), 0..3));
            Union::new(vec![
                (
                    option::of(int()),
                    int(),
                    text(),
                    stable_checkpoint(inner.clone()),
                    vec(pair(), 0..2),
                    signature(),
                )
                    .prop_map(
                        |(msg_id, new_view, replica, checkpoint, prepared, signature)| {
                            Body::PbftViewChange(WireViewChange {
                                msg_id,
                                new_view,
                                replica,
                                checkpoint,
                                prepared: prepared
                                    .into_iter()
                                    .map(|(pre_prepare, prepares)| WirePrepared {
                                        pre_prepare,
                                        prepares,
                                    })
                                    .collect(),
                                signature,
                            })
                        },
                    )
                    .boxed(),
                (
                    option::of(int()),
                    int(),
                    vec(inner.clone(), 0..3),
                    vec(inner.clone(), 0..3),
                    signature(),
                )
                    .prop_map(|(msg_id, view, view_changes, pre_prepares, signature)| {
                        Body::PbftNewView(WireNewView {
                            msg_id,
                            view,
                            view_changes,
                            pre_prepares,
                            signature,
                        })
                    })
                    .boxed(),
                (
                    (option::of(int()), text(), stable_checkpoint(inner.clone())),
                    (text(), text(), vec(pair(), 0..2), signature()),
                )
                    .prop_map(
                        |(
                            (msg_id, replica, checkpoint),
                            (service, clients, committed, signature),
                        )| {
                            Body::PbftState(WireState {
                                msg_id,
                                replica,
                                checkpoint,
                                service,
                                clients,
                                committed: committed
                                    .into_iter()
                                    .map(|(pre_prepare, commits)| WireCommitted {
                                        pre_prepare,
                                        commits,
                                    })
                                    .collect(),
                                signature,
                            })
                        },
                    )
                    .boxed(),
            ])
        })
        .boxed()
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (text(), text(), body()).prop_map(|(src, dest, body)| Envelope { src, dest, body })
}

// ---------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------

/// The example lines of `docs/protocol.md`, read once.
fn examples() -> &'static [String] {
    static EXAMPLES: OnceLock<Vec<String>> = OnceLock::new();
    EXAMPLES.get_or_init(common::protocol_examples)
}

/// JSON tokens, valid and not, that a decoder must survive in any place.
fn tokens() -> Vec<String> {
    let mut tokens: Vec<String> = [
        "null",
        "true",
        "false",
        "0",
        "-0",
        "-1",
        "1.5",
        "-2.5e3",
        "1e999",
        "-1e999",
        "1e-999",
        "1e19",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "340282366920938463463374607431768211456",
        r#""x""#,
        r#""""#,
        r#""\u0000""#,
        r#""\ud800""#,
        r#""\udc00\ud800""#,
        r#""\ud83d\ude00""#,
        r#""\"\\\/\b\f\n\r\t""#,
        "\"é\u{2028}\"",
        r#""pbft_commit""#,
        r#""00""#,
        "[]",
        "{}",
        "[null]",
        "[[]]",
        "[{}]",
        r#"{"type":"pbft_prepare"}"#,
        r#"{"type":7}"#,
        "\"",
        ",",
        ":",
        "}",
        "]",
        "\u{0}",
    ]
    .iter()
    .map(|t| t.to_string())
    .collect();
    tokens.push(format!("\"{}\"", "0".repeat(64)));
    tokens.push(format!("\"{}\"", "A".repeat(64)));
    tokens.push(format!("\"{}\"", "f".repeat(63)));
    tokens.push(format!("\"{}\"", "ab".repeat(64)));
    tokens.push(format!("{}{}", "[".repeat(200), "]".repeat(200)));
    tokens.push(format!("{}1{}", r#"{"a":"#.repeat(150), "}".repeat(150)));
    tokens.push("9".repeat(400));
    tokens
}

/// What goes in place of a field's value.
#[derive(Clone, Debug)]
enum Replacement {
    /// One of [`tokens`], verbatim, even if not valid JSON.
    Token(String),
    /// Any JSON value.
    Json(Value),
    /// A valid body, perhaps of a type the place does not expect.
    Body(Box<Body>),
}

/// One edit of a line.
#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Truncate(Index),
    /// Inserts a token.
    Splice(Index, String),
    /// Overwrites up to `len` bytes with a token.
    Overwrite(Index, usize, String),
    /// Replaces the value of a member (object field or array element)
    /// anywhere in the JSON tree.
    Replace(Index, Replacement),
    /// Removes a member anywhere in the JSON tree.
    Remove(Index),
    /// Adds a field with a name the codec knows to an object.
    Add(Index, &'static str, Replacement),
    /// Changes a `type` anywhere in the tree, to another type or to one
    /// the codec does not know.
    Retype(Index, String),
}

/// Field names of the protocol, for [`Mutation::Add`].
const FIELDS: [&str; 38] = [
    "type",
    "src",
    "dest",
    "body",
    "msg_id",
    "in_reply_to",
    "node_id",
    "node_ids",
    "operation",
    "client",
    "timestamp",
    "sequence_number",
    "view",
    "phase",
    "digest",
    "prepares_received",
    "commits_received",
    "executed",
    "result",
    "results",
    "code",
    "text",
    "key",
    "value",
    "from",
    "to",
    "batch",
    "replica",
    "signature",
    "new_view",
    "checkpoint",
    "prepared",
    "view_changes",
    "pre_prepares",
    "service",
    "clients",
    "committed",
    "proof",
];

/// A body type, known or not.
fn type_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(&Body::TYPES[..]).prop_map(str::to_string),
        1 => select(&["", "teleport", "PBFT_PREPARE", "pbft_prepare ", "pbft-prepare"][..])
            .prop_map(str::to_string),
        1 => text(),
    ]
}

fn replacement() -> impl Strategy<Value = Replacement> {
    prop_oneof![
        3 => select(tokens()).prop_map(Replacement::Token),
        2 => json().prop_map(Replacement::Json),
        1 => flat_body().prop_map(|body| Replacement::Body(Box::new(body))),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<Index>(), 0..8u8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::SetByte(at, byte)),
        1 => (any::<Index>(), vec(any::<u8>(), 1..4)).prop_map(|(at, b)| Mutation::Insert(at, b)),
        1 => (any::<Index>(), 1..16usize).prop_map(|(at, len)| Mutation::Delete(at, len)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), select(tokens())).prop_map(|(at, t)| Mutation::Splice(at, t)),
        2 => (any::<Index>(), 1..12usize, select(tokens()))
            .prop_map(|(at, len, t)| Mutation::Overwrite(at, len, t)),
        6 => (any::<Index>(), replacement()).prop_map(|(at, r)| Mutation::Replace(at, r)),
        3 => any::<Index>().prop_map(Mutation::Remove),
        2 => (any::<Index>(), select(&FIELDS[..]), replacement())
            .prop_map(|(at, name, r)| Mutation::Add(at, name, r)),
        2 => (any::<Index>(), type_name()).prop_map(|(at, t)| Mutation::Retype(at, t)),
    ]
}

/// A valid line, from the docs or generated, and a few edits of it.
fn mutated_line() -> impl Strategy<Value = (String, Vec<Mutation>)> {
    let valid = prop_oneof![
        select(examples()),
        envelope().prop_map(|envelope| encode(&envelope)),
    ];
    (valid, vec(mutation(), 1..5))
}

/// Applies the edits in order. A tree edit of a line that is no longer
/// JSON splices its token instead, or deletes a few bytes.
fn mutate(line: &str, mutations: &[Mutation]) -> String {
    let mut bytes = line.as_bytes().to_vec();
    for mutation in mutations {
        apply(&mut bytes, mutation);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Stands for a replacement in the tree until the tree is text again. No
/// example holds this string, and the generators practically never make it.
const PLACEHOLDER: &str = "\u{1}placeholder\u{1}";

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let at = |index: &Index, len: usize| if len == 0 { 0 } else { index.index(len) };
    match mutation {
        Mutation::FlipBit(i, bit) => {
            if !bytes.is_empty() {
                let i = at(i, bytes.len());
                bytes[i] ^= 1 << bit;
            }
        }
        Mutation::SetByte(i, byte) => {
            if !bytes.is_empty() {
                let i = at(i, bytes.len());
                bytes[i] = *byte;
            }
        }
        Mutation::Insert(i, new) => {
            let i = at(i, bytes.len() + 1);
            bytes.splice(i..i, new.iter().copied());
        }
        Mutation::Delete(i, len) => {
            let i = at(i, bytes.len() + 1);
            let end = (i + len).min(bytes.len());
            bytes.drain(i..end);
        }
        Mutation::Truncate(i) => bytes.truncate(at(i, bytes.len() + 1)),
        Mutation::Splice(i, token) => {
            let i = at(i, bytes.len() + 1);
            bytes.splice(i..i, token.bytes());
        }
        Mutation::Overwrite(i, len, token) => {
            let i = at(i, bytes.len() + 1);
            let end = (i + len).min(bytes.len());
            bytes.splice(i..end, token.bytes());
        }
        Mutation::Replace(i, replacement) => {
            let Ok(mut tree) = serde_json::from_slice::<Value>(bytes) else {
                return splice_instead(bytes, i, replacement);
            };
            let members = members(&tree);
            if members.is_empty() {
                return splice_instead(bytes, i, replacement);
            }
            if let Some(place) = tree.pointer_mut(&members[i.index(members.len())]) {
                *place = Value::from(PLACEHOLDER);
            }
            *bytes = to_text(&tree, replacement).into_bytes();
        }
        Mutation::Remove(i) => {
            let Ok(mut tree) = serde_json::from_slice::<Value>(bytes) else {
                return apply(bytes, &Mutation::Delete(*i, 4));
            };
            let members = members(&tree);
            if members.is_empty() {
                return apply(bytes, &Mutation::Delete(*i, 4));
            }
            let pointer = &members[i.index(members.len())];
            let (parent, last) = pointer.rsplit_once('/').unwrap_or(("", pointer));
            let last = last.replace("~1", "/").replace("~0", "~");
            match tree.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(&last);
                }
                Some(Value::Array(items)) => {
                    if let Ok(n) = last.parse::<usize>() {
                        if n < items.len() {
                            items.remove(n);
                        }
                    }
                }
                _ => {}
            }
            *bytes = to_text(&tree, &Replacement::Json(Value::Null)).into_bytes();
        }
        Mutation::Add(i, name, replacement) => {
            let Ok(mut tree) = serde_json::from_slice::<Value>(bytes) else {
                return splice_instead(bytes, i, replacement);
            };
            let mut objects = vec![String::new()];
            objects.extend(
                members(&tree)
                    .into_iter()
                    .filter(|p| tree.pointer(p).is_some_and(Value::is_object)),
            );
            match tree.pointer_mut(&objects[i.index(objects.len())]) {
                Some(Value::Object(map)) => {
                    map.insert(name.to_string(), Value::from(PLACEHOLDER));
                }
                _ => return splice_instead(bytes, i, replacement),
            }
            *bytes = to_text(&tree, replacement).into_bytes();
        }
        Mutation::Retype(i, type_name) => {
            let Ok(mut tree) = serde_json::from_slice::<Value>(bytes) else {
                let token = Value::from(type_name.as_str()).to_string();
                return apply(bytes, &Mutation::Splice(*i, token));
            };
            let types: Vec<String> = members(&tree)
                .into_iter()
                .filter(|p| p.ends_with("/type"))
                .collect();
            if types.is_empty() {
                let token = Value::from(type_name.as_str()).to_string();
                return apply(bytes, &Mutation::Splice(*i, token));
            }
            if let Some(place) = tree.pointer_mut(&types[i.index(types.len())]) {
                *place = Value::from(type_name.as_str());
            }
            *bytes = tree.to_string().into_bytes();
        }
    }
}

fn splice_instead(bytes: &mut Vec<u8>, at: &Index, replacement: &Replacement) {
    let token = match replacement {
        Replacement::Token(token) => token.clone(),
        Replacement::Json(value) => value.to_string(),
        Replacement::Body(body) => serde_json::to_string(body).unwrap_or_default(),
    };
    apply(bytes, &Mutation::Splice(*at, token));
}

/// The JSON pointer of every object field and array element, in pre-order.
fn members(tree: &Value) -> Vec<String> {
    fn walk(value: &Value, at: &str, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let here = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                    out.push(here.clone());
                    walk(child, &here, out);
                }
            }
            Value::Array(items) => {
                for (n, child) in items.iter().enumerate() {
                    let here = format!("{at}/{n}");
                    out.push(here.clone());
                    walk(child, &here, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(tree, "", &mut out);
    out
}

/// The tree as text, with the replacement where the placeholder is.
fn to_text(tree: &Value, replacement: &Replacement) -> String {
    let text = tree.to_string();
    let with = match replacement {
        Replacement::Token(token) => token.clone(),
        Replacement::Json(value) => value.to_string(),
        Replacement::Body(body) => serde_json::to_string(body).unwrap_or_default(),
    };
    text.replacen(&Value::from(PLACEHOLDER).to_string(), &with, 1)
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
