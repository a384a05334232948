//! Mutations of valid lines: byte edits, spliced tokens, and edits of
//! the JSON tree.

use std::sync::OnceLock;

use pbft_wire::{encode, Body};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_json::Value;

use super::generate::*;
use crate::common;

// ---------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------

/// The example lines of `docs/protocol.md`, read once.
pub fn examples() -> &'static [String] {
    static EXAMPLES: OnceLock<Vec<String>> = OnceLock::new();
    EXAMPLES.get_or_init(common::protocol_examples)
}

/// JSON tokens, valid and not, that a decoder must survive in any place.
pub fn tokens() -> Vec<String> {
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
pub enum Replacement {
    /// One of [`tokens`], verbatim, even if not valid JSON.
    Token(String),
    /// Any JSON value.
    Json(Value),
    /// A valid body, perhaps of a type the place does not expect.
    Body(Box<Body>),
}

/// One edit of a line.
#[derive(Clone, Debug)]
pub enum Mutation {
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
pub const FIELDS: [&str; 38] = [
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
pub fn type_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(&Body::TYPES[..]).prop_map(str::to_string),
        1 => select(&["", "teleport", "PBFT_PREPARE", "pbft_prepare ", "pbft-prepare"][..])
            .prop_map(str::to_string),
        1 => text(),
    ]
}

pub fn replacement() -> impl Strategy<Value = Replacement> {
    prop_oneof![
        3 => select(tokens()).prop_map(Replacement::Token),
        2 => json().prop_map(Replacement::Json),
        1 => flat_body().prop_map(|body| Replacement::Body(Box::new(body))),
    ]
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
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
pub fn mutated_line() -> impl Strategy<Value = (String, Vec<Mutation>)> {
    let valid = prop_oneof![
        select(examples()),
        envelope().prop_map(|envelope| encode(&envelope)),
    ];
    (valid, vec(mutation(), 1..5))
}

/// Applies the edits in order. A tree edit of a line that is no longer
/// JSON splices its token instead, or deletes a few bytes.
pub fn mutate(line: &str, mutations: &[Mutation]) -> String {
    let mut bytes = line.as_bytes().to_vec();
    for mutation in mutations {
        apply(&mut bytes, mutation);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Stands for a replacement in the tree until the tree is text again. No
/// example holds this string, and the generators practically never make it.
pub const PLACEHOLDER: &str = "\u{1}placeholder\u{1}";

pub fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
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

pub fn splice_instead(bytes: &mut Vec<u8>, at: &Index, replacement: &Replacement) {
    let token = match replacement {
        Replacement::Token(token) => token.clone(),
        Replacement::Json(value) => value.to_string(),
        Replacement::Body(body) => serde_json::to_string(body).unwrap_or_default(),
    };
    apply(bytes, &Mutation::Splice(*at, token));
}

/// The JSON pointer of every object field and array element, in pre-order.
pub fn members(tree: &Value) -> Vec<String> {
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
pub fn to_text(tree: &Value, replacement: &Replacement) -> String {
    let text = tree.to_string();
    let with = match replacement {
        Replacement::Token(token) => token.clone(),
        Replacement::Json(value) => value.to_string(),
        Replacement::Body(body) => serde_json::to_string(body).unwrap_or_default(),
    };
    text.replacen(&Value::from(PLACEHOLDER).to_string(), &with, 1)
}
