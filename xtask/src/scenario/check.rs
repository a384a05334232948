//! The checks after every run.

use std::collections::BTreeMap;

use super::run::Outcome;

/// One check's verdict.
#[derive(Debug)]
pub struct Verdict {
    /// The check's name.
    pub name: &'static str,
    /// Whether it held.
    pub passed: bool,
    /// What it found.
    pub detail: String,
}

/// Agreement: no two nodes executed different batches at one number, over
/// the whole run (from the nodes' logs) and in their final logs.
pub fn agreement(outcome: &Outcome) -> Verdict {
    let mut chosen: BTreeMap<u64, (String, String)> = BTreeMap::new();
    let mut conflicts = Vec::new();
    let mut compared = 0;
    let logged = outcome.executed.iter().flat_map(|(node, list)| {
        list.iter()
            .map(move |(seq, digest)| (node, *seq, digest.clone()))
    });
    let final_logs = outcome.statuses.iter().flat_map(|(node, statuses)| {
        statuses.iter().enumerate().filter_map(move |(i, status)| {
            let digest = status["digest"]
                .as_str()
                .filter(|_| status["executed"] == true)?;
            Some((node, i as u64 + 1, digest.to_string()))
        })
    });
    for (node, seq, digest) in logged.chain(final_logs) {
        compared += 1;
        match chosen.get(&seq) {
            None => {
                chosen.insert(seq, (node.clone(), digest));
            }
            Some((first, d)) if *d != digest => conflicts.push(format!(
                "#{seq}: {first} executed {d:.8}, {node} {digest:.8}"
            )),
            Some(_) => {}
        }
    }
    let passed = conflicts.is_empty() && !chosen.is_empty();
    Verdict {
        name: "agreement",
        passed,
        detail: if !conflicts.is_empty() {
            conflicts.join("; ")
        } else if chosen.is_empty() {
            "no executions were observed".to_string()
        } else {
            format!(
                "{compared} executions of {} numbers compared across nodes, all equal",
                chosen.len()
            )
        },
    }
}

/// Convergence: once everything has settled, every live node executed at
/// least through the last checkpoint the most advanced node reached, so a
/// restarted or cut-off node has caught up. Numbers after that checkpoint
/// may still be missing at a node that lost their messages: it fetches
/// them when it next asks its peers (see docs/scenarios.md), which can take
/// longer than the quiet period. With a Byzantine replica, an honest one may trail further (PBFT
/// promises progress to a quorum), so the check then only reports.
pub fn convergence(outcome: &Outcome, interval: u64, byzantine: bool) -> Verdict {
    let executed_through = |statuses: &Vec<serde_json::Value>| {
        statuses
            .iter()
            .take_while(|s| s["executed"] == true)
            .count()
    };
    let reached: BTreeMap<&String, usize> = outcome
        .statuses
        .iter()
        .map(|(node, statuses)| (node, executed_through(statuses)))
        .collect();
    let most = reached.values().copied().max().unwrap_or(0);
    let interval = interval.max(1) as usize;
    let required = most - most % interval;
    let behind: Vec<String> = reached
        .iter()
        .filter(|(_, n)| **n < required)
        .map(|(node, n)| format!("{node} at {n}"))
        .collect();
    let least = reached.values().copied().min().unwrap_or(0);
    let detail = if behind.is_empty() {
        format!(
            "{} live honest nodes executed through #{least} to #{most}, all past checkpoint #{required}",
            reached.len()
        )
    } else {
        format!("behind checkpoint #{required}: {}", behind.join(", "))
    };
    Verdict {
        name: "convergence",
        passed: (behind.is_empty() || byzantine) && most > 0,
        detail: if byzantine && !behind.is_empty() {
            format!("{detail} (reported only: a Byzantine replica may leave one behind)")
        } else {
            detail
        },
    }
}

/// Liveness: every operation was issued and answered within the settle
/// bound after the last heal, with a definite outcome (errors 20 and 22
/// are outcomes of lin-kv; any other error is not).
pub fn liveness(outcome: &Outcome, settle_ms: u64) -> Verdict {
    let unanswered: Vec<String> = outcome
        .ops
        .iter()
        .filter(|op| op.completed.is_none())
        .map(|op| format!("{}#{}", op.client, op.msg_id))
        .collect();
    let failed: Vec<String> = outcome
        .ops
        .iter()
        .filter_map(|op| op.completed.as_ref().map(|(_, reply)| (op, reply)))
        .filter(|(_, reply)| {
            reply["type"] == "error" && !matches!(reply["code"].as_u64(), Some(20 | 22))
        })
        .map(|(op, reply)| format!("{}#{}: {}", op.client, op.msg_id, reply["text"]))
        .collect();
    let missing = outcome.planned.saturating_sub(outcome.ops.len() as u64);
    let passed = unanswered.is_empty() && failed.is_empty() && missing == 0;
    let detail = if passed {
        answered_detail(outcome.planned, settle_ms, outcome.last_heal_ms)
    } else if !unanswered.is_empty() || missing > 0 {
        format!(
            "{} unanswered, {missing} never issued: {:?}",
            unanswered.len(),
            unanswered
        )
    } else {
        format!("answered with errors: {}", failed.join("; "))
    };
    Verdict {
        name: "liveness",
        passed,
        detail,
    }
}

/// The liveness check's words when every operation was answered: the
/// bound counts from the last heal if something healed, and otherwise from
/// the last fault or the end of the workload.
fn answered_detail(planned: u64, settle_ms: u64, last_heal_ms: Option<u64>) -> String {
    match last_heal_ms {
        Some(at) => format!(
            "all {planned} operations answered within {settle_ms} ms of the last heal \
             (at {at} ms)"
        ),
        None => format!(
            "all {planned} operations answered (nothing healed; the run allowed \
             {settle_ms} ms after the last fault or operation)"
        ),
    }
}

/// The linearizability check's words: `checked` of the `issued` lin-kv
/// operations had a definite outcome, on `keys` keys.
fn linearizable_detail(checked: usize, keys: usize, issued: usize) -> String {
    let mut detail = format!("{checked} lin-kv operations on {keys} keys have a linearization");
    if checked < issued {
        detail.push_str(&format!(
            "; {} without a definite outcome were left out (see liveness)",
            issued - checked
        ));
    }
    detail
}

/// Linearizability of the lin-kv history (see `linearizable.rs`).
pub fn linearizability(outcome: &Outcome) -> Verdict {
    match super::linearizable::check(&outcome.ops) {
        Ok((checked, keys)) => Verdict {
            name: "linearizability",
            passed: true,
            detail: linearizable_detail(checked, keys, linkv_issued(outcome)),
        },
        Err(problem) => Verdict {
            name: "linearizability",
            passed: false,
            detail: problem,
        },
    }
}

/// How many of the operations were lin-kv's (the others are
/// seed-protocol requests, which have no register to check).
fn linkv_issued(outcome: &Outcome) -> usize {
    outcome
        .ops
        .iter()
        .filter(|op| matches!(op.body["type"].as_str(), Some("read" | "write" | "cas")))
        .count()
}

/// Percentile of sorted values (nearest rank).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::scenario::clients::Op;

    #[test]
    fn liveness_names_the_heal_only_when_something_healed() {
        let healed = answered_detail(40, 8000, Some(1200));
        assert_eq!(
            healed,
            "all 40 operations answered within 8000 ms of the last heal (at 1200 ms)"
        );
        let unhealed = answered_detail(40, 8000, None);
        assert!(!unhealed.contains("heal (at"), "{unhealed}");
        assert!(unhealed.contains("nothing healed"), "{unhealed}");
    }

    #[test]
    fn unanswered_operations_are_not_counted_as_checked() {
        assert_eq!(
            linearizable_detail(38, 3, 38),
            "38 lin-kv operations on 3 keys have a linearization"
        );
        let detail = linearizable_detail(38, 3, 40);
        assert!(detail.starts_with("38 lin-kv operations"), "{detail}");
        assert!(detail.contains("2 without a definite outcome"), "{detail}");
    }

    #[test]
    fn an_unanswered_operation_fails_liveness() {
        let now = std::time::Instant::now();
        let mut outcome = Outcome {
            planned: 2,
            ..Outcome::default()
        };
        let body = serde_json::json!({"type": "write", "key": 1, "value": 1});
        let reply = serde_json::json!({"type": "write_ok"});
        outcome
            .ops
            .push(Op::completed_for_test("c1", body.clone(), now, now, reply));
        let mut pending = Op::completed_for_test("c2", body, now, now, Value::Null);
        pending.completed = None;
        outcome.ops.push(pending);
        let verdict = liveness(&outcome, 8000);
        assert!(!verdict.passed);
        assert!(
            verdict.detail.starts_with("1 unanswered"),
            "{}",
            verdict.detail
        );
    }
}
