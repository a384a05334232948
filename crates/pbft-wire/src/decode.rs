//! Decoding a line into an [`Envelope`], with a typed error that says what
//! is wrong, and encoding one back.

use std::fmt;

use serde_json::{Map, Value};

use crate::body::{Body, Envelope};
use crate::code::ErrorCode;
use crate::variants::Tagged;

/// Decodes one JSON line.
///
/// Strict about what it needs: `src`, `dest` and `body` must be present
/// with the right types, `body.type` must be a known type, and the body
/// must have every field its type requires. Unknown fields are ignored.
///
/// ```
/// use pbft_wire::{decode, Body, ErrorCode};
///
/// let line = r#"{"id":7,"src":"c1","dest":"n1","body":{"type":"pbft_status","msg_id":3,"sequence_number":1}}"#;
/// let envelope = decode(line).unwrap();
/// assert_eq!(envelope.body, Body::PbftStatus { msg_id: 3, sequence_number: 1 });
///
/// let error = decode(r#"{"src":"c1","dest":"n1","body":{"type":"pbft_status","msg_id":3}}"#)
///     .unwrap_err();
/// assert_eq!(error.code(), Some(ErrorCode::MalformedRequest));
/// assert!(error.to_string().contains("sequence_number"));
/// ```
pub fn decode(line: &str) -> Result<Envelope, DecodeError> {
    // The typed parse is the fast path; only a line it refuses is parsed
    // again, untyped, to say precisely what is wrong.
    serde_json::from_str::<Envelope>(line).map_err(|typed| diagnose(line, typed))
}

/// Encodes an envelope as one JSON line, without the newline.
pub fn encode(envelope: &Envelope) -> String {
    // Room for a typical replica message, so that writing it does not
    // grow the buffer several times (serde_json starts at 128 bytes).
    let mut line = Vec::with_capacity(LINE_CAPACITY);
    // These types hold only strings, integers, booleans, sequences and
    // JSON values, which serde_json always serializes, as UTF-8.
    serde_json::to_writer(&mut line, envelope).expect("envelopes always serialize");
    String::from_utf8(line).expect("serde_json writes UTF-8")
}

/// The buffer [`encode`] starts with: a vote or a one-request pre-prepare
/// (about 200 bytes) fits.
const LINE_CAPACITY: usize = 384;

/// Who sent a line that could not be decoded, and its `msg_id`, so that an
/// error can be addressed back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The sender.
    pub src: String,
    /// The addressee.
    pub dest: String,
    /// The body's `msg_id`, if it had a usable one.
    pub msg_id: Option<u64>,
}

/// Why a line is not a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The line is not JSON at all.
    NotJson(String),
    /// The envelope is broken: not an object, or `src`, `dest`, `body` or
    /// `body.type` missing or of the wrong type. There is nobody to answer.
    BadEnvelope(String),
    /// `body.type` is not a type this codec knows.
    UnknownType {
        /// Who to answer.
        header: Header,
        /// The unknown type.
        type_name: String,
    },
    /// The body lacks a field its type requires, or has one of the wrong
    /// type.
    BadBody {
        /// Who to answer.
        header: Header,
        /// The body's type.
        type_name: String,
        /// What is wrong, naming the field.
        problem: String,
    },
}

impl DecodeError {
    /// The error code to answer with, or `None` when the line cannot be
    /// answered (there is no usable sender).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            DecodeError::NotJson(_) | DecodeError::BadEnvelope(_) => None,
            DecodeError::UnknownType { .. } => Some(ErrorCode::NotSupported),
            DecodeError::BadBody { .. } => Some(ErrorCode::MalformedRequest),
        }
    }

    /// The sender and `msg_id` to answer, when the envelope was usable.
    pub fn header(&self) -> Option<&Header> {
        match self {
            DecodeError::NotJson(_) | DecodeError::BadEnvelope(_) => None,
            DecodeError::UnknownType { header, .. } | DecodeError::BadBody { header, .. } => {
                Some(header)
            }
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::NotJson(e) => write!(f, "not JSON: {e}"),
            DecodeError::BadEnvelope(e) => write!(f, "broken envelope: {e}"),
            DecodeError::UnknownType { type_name, .. } => write!(
                f,
                "unknown message type {type_name:?}; known types are {}",
                Body::TYPES.join(", ")
            ),
            DecodeError::BadBody {
                type_name, problem, ..
            } => write!(f, "malformed {type_name}: {problem}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Works out why `line` failed the typed parse.
fn diagnose(line: &str, typed: serde_json::Error) -> DecodeError {
    let value: Value = match serde_json::from_str(line) {
        Ok(value) => value,
        Err(e) => return DecodeError::NotJson(e.to_string()),
    };
    let Value::Object(top) = value else {
        return DecodeError::BadEnvelope(format!("expected an object, found {}", kind(&value)));
    };
    let src = match string_field(&top, "src") {
        Ok(s) => s,
        Err(e) => return DecodeError::BadEnvelope(e),
    };
    let dest = match string_field(&top, "dest") {
        Ok(s) => s,
        Err(e) => return DecodeError::BadEnvelope(e),
    };
    let body = match top.get("body") {
        Some(Value::Object(body)) => body,
        Some(other) => {
            return DecodeError::BadEnvelope(format!(
                "field `body` must be an object, found {}",
                kind(other)
            ))
        }
        None => return DecodeError::BadEnvelope("missing field `body`".to_string()),
    };
    let type_name = match string_field(body, "type") {
        Ok(t) => t,
        Err(e) => return DecodeError::BadEnvelope(format!("in body: {e}")),
    };
    let header = Header {
        src,
        dest,
        msg_id: body.get("msg_id").and_then(Value::as_u64),
    };
    if !Body::TYPES.contains(&type_name.as_str()) {
        return DecodeError::UnknownType { header, type_name };
    }
    // The envelope is sound, so the body is what failed. Its own error,
    // without line and column noise, names the field. It is read by the
    // derived decoder, as every body once was, so the wording stays.
    let problem = match serde_json::from_value::<Tagged>(Value::Object(body.clone())) {
        Err(e) => e.to_string(),
        // Cannot happen: the same body failed inside the envelope. Report
        // the typed error rather than pretend the line was fine.
        Ok(_) => typed.to_string(),
    };
    DecodeError::BadBody {
        header,
        type_name,
        problem,
    }
}

fn string_field(object: &Map<String, Value>, name: &str) -> Result<String, String> {
    match object.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "field `{name}` must be a string, found {}",
            kind(other)
        )),
        None => Err(format!("missing field `{name}`")),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
