//! The replicated service: a deterministic state machine that executes the
//! operations PBFT orders, and the default key-value service.

use std::collections::BTreeMap;
use std::fmt;

use crate::canonical::{put_bytes, Reader};

/// The result of executing one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecResult {
    /// The operation succeeded and returns nothing (`"ok"` on the wire).
    Ok,
    /// The operation returned a value.
    Value(String),
    /// The operation returned no value (`null` on the wire), for example a
    /// read of an absent key.
    Null,
    /// The operation could not be applied. Deterministic like every other
    /// result: each replica produces the same error.
    Error(String),
}

impl fmt::Display for ExecResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecResult::Ok => f.write_str("ok"),
            ExecResult::Value(v) => write!(f, "{v:?}"),
            ExecResult::Null => f.write_str("null"),
            ExecResult::Error(e) => write!(f, "error: {e}"),
        }
    }
}

/// A deterministic state machine replicated by PBFT.
///
/// Every replica runs its own instance and executes the same operations in
/// the same order, so `execute` must depend only on the instance's state and
/// the operation: no clocks, no randomness, no IO.
pub trait Service {
    /// Checks an operation when a client submits it. An `Err` refuses the
    /// request before it is ordered, with a text that says what is wrong.
    fn check(&self, operation: &str) -> Result<(), String>;

    /// Executes an ordered operation. An operation that `check` would refuse
    /// can still be ordered by a faulty primary; it must then produce a
    /// deterministic [`ExecResult::Error`], never a panic.
    fn execute(&mut self, operation: &str) -> ExecResult;

    /// The whole state as bytes, for checkpoints (§4.3). Deterministic:
    /// equal states give equal bytes on every replica, since replicas
    /// compare the digests of these bytes.
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the state with one `snapshot` produced, for state transfer.
    /// Bytes that no snapshot produces give an `Err`, never a panic.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String>;
}

/// The default service: a map from string keys to string values.
///
/// Grammar (exact, no surrounding whitespace):
///
/// ```text
/// operation := "set " key "=" value     result: "ok"
///            | "get " key               result: the value, or null if absent
///            | "cas " key " " len ":" from " " to
///                 result: "ok" after replacing `from` with `to`; null if the
///                 key is absent; the current value if it is not `from`
/// key       := one or more characters, none of them whitespace or '='
/// value     := any characters, possibly none (everything after the first '=')
/// len       := the length of `from` in bytes, in decimal
/// from, to  := any characters; `from` is exactly `len` bytes
/// ```
///
/// `cas` (compare-and-set) serves Maelstrom's `lin-kv` workload; its
/// length prefix lets `from` hold any characters, spaces included.
///
/// ```
/// use pbft_core::{ExecResult, KvService, Service};
///
/// let mut kv = KvService::default();
/// assert_eq!(kv.execute("get x"), ExecResult::Null);
/// assert_eq!(kv.execute("set x=42"), ExecResult::Ok);
/// assert_eq!(kv.execute("get x"), ExecResult::Value("42".into()));
/// assert!(kv.check("delete x").is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvService {
    entries: BTreeMap<String, String>,
}

/// A parsed key-value operation.
#[derive(Debug, PartialEq, Eq)]
enum KvOp<'a> {
    Set(&'a str, &'a str),
    Get(&'a str),
    Cas(&'a str, &'a str, &'a str),
}

fn parse(operation: &str) -> Result<KvOp<'_>, String> {
    if let Some(rest) = operation.strip_prefix("set ") {
        let (key, value) = rest
            .split_once('=')
            .ok_or_else(|| format!("expected `set KEY=VALUE`, found {operation:?}"))?;
        check_key(key)?;
        Ok(KvOp::Set(key, value))
    } else if let Some(key) = operation.strip_prefix("get ") {
        check_key(key)?;
        Ok(KvOp::Get(key))
    } else if let Some(rest) = operation.strip_prefix("cas ") {
        parse_cas(rest)
            .ok_or_else(|| format!("expected `cas KEY LEN:FROM TO`, found {operation:?}"))
    } else {
        Err(format!(
            "unknown operation {operation:?}: expected `set KEY=VALUE`, `get KEY` or \
             `cas KEY LEN:FROM TO`"
        ))
    }
}

fn parse_cas(rest: &str) -> Option<KvOp<'_>> {
    let (key, rest) = rest.split_once(' ')?;
    check_key(key).ok()?;
    let (len, rest) = rest.split_once(':')?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: usize = len.parse().ok()?;
    let from = rest.get(..len)?;
    let to = rest.get(len..)?.strip_prefix(' ')?;
    Some(KvOp::Cas(key, from, to))
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the key is empty".to_string());
    }
    if key.chars().any(|c| c.is_whitespace() || c == '=') {
        return Err(format!("key {key:?} contains whitespace or '='"));
    }
    Ok(())
}

impl KvService {
    /// The value stored under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// How many keys are stored.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Service for KvService {
    fn check(&self, operation: &str) -> Result<(), String> {
        parse(operation).map(|_| ())
    }

    fn execute(&mut self, operation: &str) -> ExecResult {
        match parse(operation) {
            Ok(KvOp::Set(key, value)) => {
                // An existing entry keeps its buffers.
                match self.entries.get_mut(key) {
                    Some(current) => value.clone_into(current),
                    None => {
                        self.entries.insert(key.to_string(), value.to_string());
                    }
                }
                ExecResult::Ok
            }
            Ok(KvOp::Get(key)) => match self.entries.get(key) {
                Some(value) => ExecResult::Value(value.clone()),
                None => ExecResult::Null,
            },
            Ok(KvOp::Cas(key, from, to)) => match self.entries.get_mut(key) {
                None => ExecResult::Null,
                Some(current) if current == from => {
                    *current = to.to_string();
                    ExecResult::Ok
                }
                Some(current) => ExecResult::Value(current.clone()),
            },
            Err(reason) => ExecResult::Error(reason),
        }
    }

    /// The entries in key order: a `u64` count, then each key and value
    /// length-prefixed.
    fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.entries.len() as u64).to_be_bytes());
        for (key, value) in &self.entries {
            put_bytes(&mut out, key.as_bytes());
            put_bytes(&mut out, value.as_bytes());
        }
        out
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let mut reader = Reader::new(snapshot);
        let count = reader.u64()?;
        let mut entries = BTreeMap::new();
        for _ in 0..count {
            let key = reader.string()?;
            check_key(key)?;
            let value = reader.string()?;
            if entries.insert(key.to_string(), value.to_string()).is_some() {
                return Err(format!("key {key:?} appears twice"));
            }
        }
        reader.finish()?;
        self.entries = entries;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar_accepts_documented_forms() {
        assert_eq!(parse("set x=42"), Ok(KvOp::Set("x", "42")));
        assert_eq!(parse("set x="), Ok(KvOp::Set("x", "")));
        assert_eq!(parse("set k=a=b c"), Ok(KvOp::Set("k", "a=b c")));
        assert_eq!(parse("get key_1"), Ok(KvOp::Get("key_1")));
        assert_eq!(parse("cas k 3:a b c"), Ok(KvOp::Cas("k", "a b", "c")));
        assert_eq!(parse("cas k 0: "), Ok(KvOp::Cas("k", "", "")));
    }

    #[test]
    fn cas_replaces_only_the_expected_value() {
        let mut kv = KvService::default();
        assert_eq!(kv.execute("cas k 1:1 2"), ExecResult::Null, "absent key");
        kv.execute("set k=1");
        assert_eq!(kv.execute("cas k 1:3 4"), ExecResult::Value("1".into()));
        assert_eq!(kv.execute("cas k 1:1 2"), ExecResult::Ok);
        assert_eq!(kv.get("k"), Some("2"));
        for bad in [
            "cas k",
            "cas k 2:1 2",
            "cas k x:1 2",
            "cas k 1:12",
            "cas  1:1 2",
            "cas k -1:1 2",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn grammar_refuses_everything_else() {
        for bad in [
            "",
            "set",
            "set x",
            "set =1",
            "set  x=1",
            "get",
            "get ",
            "get a b",
            "GET x",
            " get x",
            "del x",
            "set x y=1",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn invalid_ordered_operation_is_a_deterministic_error() {
        let mut a = KvService::default();
        let mut b = KvService::default();
        let ra = a.execute("frobnicate");
        assert!(matches!(ra, ExecResult::Error(_)));
        assert_eq!(ra, b.execute("frobnicate"));
        assert!(a.is_empty(), "a failed operation changes nothing");
    }

    #[test]
    fn snapshots_restore_the_same_state() {
        let mut kv = KvService::default();
        kv.execute("set b=2");
        kv.execute("set a=x=y");
        let snapshot = kv.snapshot();
        let mut other = KvService::default();
        other.execute("set c=3");
        assert_eq!(other.restore(&snapshot), Ok(()));
        assert_eq!(other, kv);
        assert_eq!(other.snapshot(), snapshot);
        for bad in [&snapshot[..snapshot.len() - 1], &[0, 0, 0][..]] {
            assert!(KvService::default().restore(bad).is_err());
        }
        let mut extra = snapshot.clone();
        extra.push(0);
        assert!(KvService::default().restore(&extra).is_err());
    }

    #[test]
    fn set_then_get() {
        let mut kv = KvService::default();
        assert_eq!(kv.execute("set x=1"), ExecResult::Ok);
        assert_eq!(kv.execute("set x=2"), ExecResult::Ok);
        assert_eq!(kv.execute("get x"), ExecResult::Value("2".into()));
        assert_eq!(kv.execute("get y"), ExecResult::Null);
        assert_eq!(kv.get("x"), Some("2"));
        assert_eq!(kv.len(), 1);
    }
}
