//! A Wing & Gong linearizability checker for lin-kv histories.
//!
//! A register's history is linearizable when its operations can be put in
//! one order that respects real time (an operation that completed before
//! another was invoked comes first) and in which every read sees the last
//! write, and every compare-and-set succeeds exactly when the value is the
//! one it expects. Keys are independent registers (linearizability is
//! compositional), so each key's history is checked alone: a depth-first
//! search tries the operations that could come next, memoising the
//! (set of operations placed, value) pairs already explored.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use serde_json::Value;

use super::clients::Op;

/// What one completed operation did to a register, and what it saw.
#[derive(Clone, Debug, PartialEq)]
enum Effect {
    /// Read this value (`None`: the key did not exist).
    Read(Option<Value>),
    /// Wrote this value.
    Write(Value),
    /// Compare-and-set: `from` to `to`, succeeded or not (and if not,
    /// whether because the key was missing).
    Cas {
        from: Value,
        to: Value,
        ok: bool,
        missing: bool,
    },
}

struct Call {
    invoked: Instant,
    completed: Instant,
    effect: Effect,
}

/// Checks the history of `ops`. Operations without a definite outcome
/// (unanswered, or answered with an error other than 20 or 22) are left
/// out, which is sound only if there are none: the caller's liveness check
/// reports those. Returns how many operations were checked, and on how
/// many keys, or the first key whose history is not linearizable.
pub fn check(ops: &[Op]) -> Result<(usize, usize), String> {
    let mut by_key: BTreeMap<String, Vec<Call>> = BTreeMap::new();
    for op in ops {
        let Some((completed, reply)) = &op.completed else {
            continue;
        };
        let Some(effect) = effect(&op.body, reply) else {
            continue;
        };
        by_key
            .entry(op.body["key"].to_string())
            .or_default()
            .push(Call {
                invoked: op.invoked,
                completed: *completed,
                effect,
            });
    }
    for (key, calls) in &by_key {
        if calls.len() > 63 {
            return Err(format!(
                "key {key}: {} operations, more than the checker takes",
                calls.len()
            ));
        }
        let mut seen = HashSet::new();
        if !search(calls, 0, None, &mut seen) {
            return Err(format!(
                "key {key}: no linearization of its {} operations",
                calls.len()
            ));
        }
    }
    let checked = by_key.values().map(Vec::len).sum();
    Ok((checked, by_key.len()))
}

fn effect(body: &Value, reply: &Value) -> Option<Effect> {
    let code = reply["code"].as_u64();
    match (body["type"].as_str()?, reply["type"].as_str()?) {
        ("read", "read_ok") => Some(Effect::Read(Some(reply["value"].clone()))),
        ("read", "error") if code == Some(20) => Some(Effect::Read(None)),
        ("write", "write_ok") => Some(Effect::Write(body["value"].clone())),
        ("cas", kind) => {
            let (ok, missing) = match (kind, code) {
                ("cas_ok", _) => (true, false),
                ("error", Some(22)) => (false, false),
                ("error", Some(20)) => (false, true),
                _ => return None,
            };
            Some(Effect::Cas {
                from: body["from"].clone(),
                to: body["to"].clone(),
                ok,
                missing,
            })
        }
        _ => None,
    }
}

/// Can the calls not in `placed` be linearized from register value `value`?
fn search(
    calls: &[Call],
    placed: u64,
    value: Option<Value>,
    seen: &mut HashSet<(u64, String)>,
) -> bool {
    if placed.count_ones() as usize == calls.len() {
        return true;
    }
    if !seen.insert((placed, format!("{value:?}"))) {
        return false;
    }
    let pending = |i: usize| placed & (1 << i) == 0;
    // Only a call invoked before every pending call completed can go next.
    let horizon = (0..calls.len())
        .filter(|&i| pending(i))
        .map(|i| calls[i].completed)
        .min();
    for i in (0..calls.len()).filter(|&i| pending(i)) {
        if horizon.is_some_and(|h| calls[i].invoked > h) {
            continue;
        }
        let next = match &calls[i].effect {
            Effect::Read(seen_value) if *seen_value == value => value.clone(),
            Effect::Write(v) => Some(v.clone()),
            Effect::Cas {
                from, to, ok: true, ..
            } if value.as_ref() == Some(from) => Some(to.clone()),
            Effect::Cas { missing: true, .. } if value.is_none() => None,
            Effect::Cas {
                from,
                ok: false,
                missing: false,
                ..
            } if value.is_some() && value.as_ref() != Some(from) => value.clone(),
            _ => continue,
        };
        if search(calls, placed | (1 << i), next, seen) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn op(client: &str, body: Value, reply: Value, from_ms: u64, to_ms: u64, base: Instant) -> Op {
        Op::completed_for_test(
            client,
            body,
            base + Duration::from_millis(from_ms),
            base + Duration::from_millis(to_ms),
            reply,
        )
    }

    #[test]
    fn a_register_history_is_judged_correctly() {
        let t = Instant::now();
        let write = |v| json!({"type": "write", "key": 0, "value": v});
        let read = json!({"type": "read", "key": 0});
        let ok = json!({"type": "write_ok"});
        let saw = |v| json!({"type": "read_ok", "value": v});
        // Sequential: write 1, then read 1.
        let good = vec![
            op("a", write(1), ok.clone(), 0, 10, t),
            op("b", read.clone(), saw(1), 20, 30, t),
        ];
        assert_eq!(check(&good), Ok((2, 1)));
        // A stale read after the write completed is not linearizable.
        let stale = vec![
            op("a", write(1), ok.clone(), 0, 10, t),
            op("a", write(2), ok.clone(), 20, 30, t),
            op("b", read.clone(), saw(1), 40, 50, t),
        ];
        assert!(check(&stale).is_err());
        // Overlapping, either order works.
        let overlap = vec![
            op("a", write(1), ok.clone(), 0, 50, t),
            op(
                "b",
                read.clone(),
                json!({"type": "error", "code": 20}),
                10,
                20,
                t,
            ),
        ];
        assert_eq!(check(&overlap), Ok((2, 1)));
        // A cas that succeeded needs the expected value to be there.
        let cas = |from, to| json!({"type": "cas", "key": 0, "from": from, "to": to});
        let bad_cas = vec![
            op("a", write(1), ok.clone(), 0, 10, t),
            op("b", cas(2, 3), json!({"type": "cas_ok"}), 20, 30, t),
        ];
        assert!(check(&bad_cas).is_err());
        let good_cas = vec![
            op("a", write(1), ok, 0, 10, t),
            op("b", cas(1, 3), json!({"type": "cas_ok"}), 20, 30, t),
            op(
                "c",
                cas(1, 4),
                json!({"type": "error", "code": 22}),
                40,
                50,
                t,
            ),
            op("d", read, saw(3), 60, 70, t),
        ];
        assert_eq!(check(&good_cas), Ok((4, 1)));
    }
}
