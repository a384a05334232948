//! Maelstrom's `lin-kv` workload (`read`, `write`, `cas`) on top of the
//! key-value service.
//!
//! Each operation becomes a request of the service's grammar, with the key
//! and values written as compact JSON: `read` is `get K`, `write` is
//! `set K=V`, and `cas` is `cas K LEN:FROM TO`. The request is ordered
//! through PBFT like any other, and the node answers once it has executed
//! it, so the execution order is the linearization. The client's `msg_id`
//! is the request's timestamp: Maelstrom clients number their messages in
//! increasing order, so a retry executes at most once and gets the same
//! answer, and an older message is refused as stale (error 14).

use pbft_core::{ExecResult, Request};
use pbft_wire::{Body, ErrorCode};
use serde_json::Value;

/// Which lin-kv operation a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `read`.
    Read,
    /// `write`.
    Write,
    /// `cas`.
    Cas,
}

/// The request a lin-kv body from `src` asks for, or the error text when
/// it cannot be served. `None` when the body is not lin-kv.
pub fn request(src: &str, body: &Body) -> Option<Result<(Request, Kind, u64), String>> {
    let (operation, kind, msg_id, signature) = match body {
        Body::Read {
            msg_id,
            key,
            signature,
        } => (
            key_text(key).map(|k| format!("get {k}")),
            Kind::Read,
            *msg_id,
            *signature,
        ),
        Body::Write {
            msg_id,
            key,
            value,
            signature,
        } => (
            key_text(key).map(|k| format!("set {k}={}", compact(value))),
            Kind::Write,
            *msg_id,
            *signature,
        ),
        Body::Cas {
            msg_id,
            key,
            from,
            to,
            signature,
        } => {
            let from = compact(from);
            let operation =
                key_text(key).map(|k| format!("cas {k} {}:{from} {}", from.len(), compact(to)));
            (operation, Kind::Cas, *msg_id, *signature)
        }
        _ => return None,
    };
    // The client's msg_id is its request number: a retry with the same
    // msg_id executes at most once and is answered with the same result.
    // A signing client signs the request built here (docs/protocol.md).
    Some(operation.map(|op| {
        let request = Request::new(src, Some(msg_id), &op).with_signature(signature);
        (request, kind, msg_id)
    }))
}

/// Which lin-kv operation a request's operation text is, if it is one
/// that [`request`] builds.
pub fn kind_of(operation: &str) -> Option<Kind> {
    let (verb, _) = operation.split_once(' ')?;
    match verb {
        "get" => Some(Kind::Read),
        "set" => Some(Kind::Write),
        "cas" => Some(Kind::Cas),
        _ => None,
    }
}

/// The reply to a lin-kv request, from its execution result: the reply
/// body's type and fields (with `view`, the executing replica's view, if
/// given), or an error code and text.
pub fn reply(
    kind: Kind,
    result: &ExecResult,
    in_reply_to: u64,
    msg_id: u64,
    view: Option<u64>,
) -> Result<Body, (ErrorCode, String)> {
    match (kind, result) {
        (Kind::Read, ExecResult::Value(text)) => Ok(Body::ReadOk {
            in_reply_to,
            msg_id,
            value: serde_json::from_str(text).unwrap_or_else(|_| Value::from(text.as_str())),
            view,
        }),
        (Kind::Write, ExecResult::Ok) => Ok(Body::WriteOk {
            in_reply_to,
            msg_id,
            view,
        }),
        (Kind::Cas, ExecResult::Ok) => Ok(Body::CasOk {
            in_reply_to,
            msg_id,
            view,
        }),
        (Kind::Read | Kind::Cas, ExecResult::Null) => {
            Err((ErrorCode::KeyDoesNotExist, "key does not exist".to_string()))
        }
        (Kind::Cas, ExecResult::Value(current)) => Err((
            ErrorCode::PreconditionFailed,
            format!("the value is {current}, not the one expected"),
        )),
        (_, ExecResult::Error(text)) => Err((ErrorCode::Abort, text.clone())),
        (kind, other) => Err((
            ErrorCode::Crash,
            format!("unexpected result {other} for a {kind:?}"),
        )),
    }
}

fn compact(value: &Value) -> String {
    value.to_string()
}

/// Keys must be usable in the service's grammar: no whitespace, no `=`.
fn key_text(key: &Value) -> Result<String, String> {
    let text = compact(key);
    if text.chars().any(|c| c.is_whitespace() || c == '=') {
        return Err(format!(
            "key {text} contains whitespace or '=', which this service does not store"
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbft_core::{KvService, Service};
    use serde_json::json;

    fn run(kv: &mut KvService, body: Body) -> Result<Body, (ErrorCode, String)> {
        let (request, kind, msg_id) = request("c1", &body).expect("lin-kv").expect("usable");
        let result = kv.execute(&request.operation);
        reply(kind, &result, msg_id, 0, None)
    }

    #[test]
    fn read_write_cas_follow_maelstrom() {
        let mut kv = KvService::default();
        let read = Body::Read {
            msg_id: 1,
            key: json!(0),
            signature: None,
        };
        assert_eq!(
            run(&mut kv, read.clone()).err().map(|e| e.0),
            Some(ErrorCode::KeyDoesNotExist)
        );
        let write = Body::Write {
            msg_id: 2,
            key: json!(0),
            value: json!(3),
            signature: None,
        };
        assert_eq!(
            run(&mut kv, write),
            Ok(Body::WriteOk {
                in_reply_to: 2,
                msg_id: 0,
                view: None
            })
        );
        assert_eq!(
            run(&mut kv, read),
            Ok(Body::ReadOk {
                in_reply_to: 1,
                msg_id: 0,
                value: json!(3),
                view: None
            })
        );
        let cas = |from, to| Body::Cas {
            msg_id: 3,
            key: json!(0),
            from: json!(from),
            to: json!(to),
            signature: None,
        };
        assert_eq!(
            run(&mut kv, cas(4, 5)).err().map(|e| e.0),
            Some(ErrorCode::PreconditionFailed)
        );
        assert_eq!(
            run(&mut kv, cas(3, 5)),
            Ok(Body::CasOk {
                in_reply_to: 3,
                msg_id: 0,
                view: None
            })
        );
        let missing = Body::Cas {
            msg_id: 4,
            key: json!(9),
            from: json!(1),
            to: json!(2),
            signature: None,
        };
        assert_eq!(
            run(&mut kv, missing).err().map(|e| e.0),
            Some(ErrorCode::KeyDoesNotExist)
        );
        // String values with spaces survive the round trip.
        let spaced = Body::Write {
            msg_id: 5,
            key: json!("k"),
            value: json!("a b=c"),
            signature: None,
        };
        run(&mut kv, spaced).expect("written");
        let cas_spaced = Body::Cas {
            msg_id: 6,
            key: json!("k"),
            from: json!("a b=c"),
            to: json!([1, 2]),
            signature: None,
        };
        assert_eq!(
            run(&mut kv, cas_spaced),
            Ok(Body::CasOk {
                in_reply_to: 6,
                msg_id: 0,
                view: None
            })
        );
        let unusable = Body::Read {
            msg_id: 7,
            key: json!("a b"),
            signature: None,
        };
        assert!(request("c1", &unusable).expect("lin-kv").is_err());
    }

    #[test]
    fn each_operation_built_here_has_its_kind() {
        for (body, kind) in [
            (
                Body::Read {
                    msg_id: 1,
                    key: json!("k"),
                    signature: None,
                },
                Kind::Read,
            ),
            (
                Body::Write {
                    msg_id: 1,
                    key: json!("k"),
                    value: json!(1),
                    signature: None,
                },
                Kind::Write,
            ),
            (
                Body::Cas {
                    msg_id: 1,
                    key: json!("k"),
                    from: json!(1),
                    to: json!(2),
                    signature: None,
                },
                Kind::Cas,
            ),
        ] {
            let (request, built, _) = request("c1", &body).expect("lin-kv").expect("usable");
            assert_eq!(built, kind);
            assert_eq!(kind_of(&request.operation), Some(kind));
        }
        assert_eq!(kind_of("getx"), None);
        assert_eq!(kind_of("del x"), None);
    }
}
