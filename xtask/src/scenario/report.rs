//! What a scenario run prints: a readable summary per scenario (or one
//! JSON object), and one line over them all.

use serde_json::json;

use super::check::{self, Verdict};
use super::run::Outcome;
use super::spec::{FaultKind, Scenario};

/// Prints the report of one scenario.
pub fn scenario(scenario: &Scenario, outcome: &Outcome, verdicts: &[Verdict], as_json: bool) {
    let mut latencies: Vec<u64> = outcome
        .ops
        .iter()
        .filter_map(|op| {
            op.completed
                .as_ref()
                .map(|(at, _)| at.duration_since(op.invoked).as_millis() as u64)
        })
        .collect();
    latencies.sort_unstable();
    let (p50, p99) = (
        check::percentile(&latencies, 50.0),
        check::percentile(&latencies, 99.0),
    );
    let answered = latencies.len();
    let per_request = outcome.messages as f64 / outcome.planned.max(1) as f64;
    if as_json {
        let value = json!({
            "scenario": scenario.name,
            "elapsed_ms": outcome.elapsed_ms,
            "operations": outcome.planned,
            "answered": answered,
            "latency_ms": {"p50": p50, "p99": p99},
            "messages_per_request": per_request,
            "faults": scenario.faults.iter().map(|f| format!("at {} ms: {}", f.at_ms, fault(&f.kind, scenario.durable))).collect::<Vec<_>>(),
            "checks": verdicts.iter().map(|v| json!({"name": v.name, "passed": v.passed, "detail": v.detail})).collect::<Vec<_>>(),
        });
        println!("{value}");
        return;
    }
    println!("scenario: {} ({} ms)", scenario.name, outcome.elapsed_ms);
    if !scenario.description.is_empty() {
        println!("  {}", scenario.description);
    }
    println!(
        "  {} nodes, auth {}, {}; latency p50 {p50} ms, p99 {p99} ms; {per_request:.1} messages per operation",
        scenario.nodes,
        scenario.auth,
        operations(outcome.planned, answered),
    );
    if let Some(b) = &scenario.byzantine {
        println!("  {}", byzantine(&b.node, &b.behaviour));
    }
    for f in &scenario.faults {
        println!("  at {} ms: {}", f.at_ms, fault(&f.kind, scenario.durable));
    }
    for v in verdicts {
        println!(
            "  {} {}: {}",
            if v.passed { "ok  " } else { "FAIL" },
            v.name,
            v.detail
        );
    }
}

/// The line that ends a run: `13 scenarios: 13 passed, 0 failed`.
pub fn summary(total: usize, failed: usize) -> String {
    let noun = if total == 1 { "scenario" } else { "scenarios" };
    format!(
        "{total} {noun}: {} passed, {failed} failed",
        total.saturating_sub(failed)
    )
}

/// How many operations ran, and how many were answered.
fn operations(planned: u64, answered: usize) -> String {
    if answered as u64 == planned {
        format!("{planned} operations, all answered")
    } else {
        format!("{planned} operations, {answered} answered")
    }
}

/// The Byzantine replica, in words.
fn byzantine(node: &str, behaviour: &str) -> String {
    format!("{node} is Byzantine: {behaviour}")
}

/// A fault, in words; `durable` when the nodes keep data directories.
pub fn fault(kind: &FaultKind, durable: bool) -> String {
    match kind {
        FaultKind::Kill { node } => format!("kill {node}"),
        FaultKind::Restart { node } if durable => format!("restart {node} from its data directory"),
        FaultKind::Restart { node } => format!("restart {node} with empty memory"),
        FaultKind::Partition { groups } => {
            let groups: Vec<String> = groups.iter().map(|g| g.join(" ")).collect();
            format!("partition {}", groups.join(" | "))
        }
        FaultKind::Heal => "heal the partition".to_string(),
        FaultKind::Network {
            from,
            to,
            drop,
            duplicate,
            max_delay_ms,
        } => {
            let mut effects = Vec::new();
            if *drop > 0.0 {
                effects.push(format!("drop {}", percent(*drop)));
            }
            if *duplicate > 0.0 {
                effects.push(format!("duplicate {}", percent(*duplicate)));
            }
            if *max_delay_ms > 0 {
                effects.push(format!("delay up to {max_delay_ms} ms"));
            }
            if effects.is_empty() {
                effects.push("no effect".to_string());
            }
            let side = |node: &str| {
                if node == "*" {
                    "every node".to_string()
                } else {
                    node.to_string()
                }
            };
            format!(
                "links from {} to {}: {}",
                side(from),
                side(to),
                effects.join(", ")
            )
        }
        FaultKind::NetworkOk => "every link reliable again".to_string(),
    }
}

/// A chance from 0 to 1 as a percentage, to a tenth at most.
fn percent(chance: f64) -> String {
    let tenths = (chance * 1000.0).round() / 10.0;
    format!("{tenths}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_read_as_words() {
        let node = || "n1".to_string();
        assert_eq!(fault(&FaultKind::Kill { node: node() }, false), "kill n1");
        assert_eq!(
            fault(&FaultKind::Restart { node: node() }, false),
            "restart n1 with empty memory"
        );
        assert_eq!(
            fault(&FaultKind::Restart { node: node() }, true),
            "restart n1 from its data directory"
        );
        let groups = vec![
            vec!["n1".into(), "n2".into()],
            vec!["n3".into(), "n4".into()],
        ];
        assert_eq!(
            fault(&FaultKind::Partition { groups }, false),
            "partition n1 n2 | n3 n4"
        );
        assert_eq!(fault(&FaultKind::Heal, false), "heal the partition");
        let lossy = FaultKind::Network {
            from: "*".into(),
            to: "n3".into(),
            drop: 0.1,
            duplicate: 0.125,
            max_delay_ms: 20,
        };
        assert_eq!(
            fault(&lossy, false),
            "links from every node to n3: drop 10%, duplicate 12.5%, delay up to 20 ms"
        );
        assert_eq!(
            fault(&FaultKind::NetworkOk, false),
            "every link reliable again"
        );
    }

    #[test]
    fn no_debug_forms_leak_into_the_summary() {
        for kind in [
            FaultKind::Kill { node: "n1".into() },
            FaultKind::Partition {
                groups: vec![vec!["n1".into()]],
            },
            FaultKind::Network {
                from: "n1".into(),
                to: "*".into(),
                drop: 1.0,
                duplicate: 0.0,
                max_delay_ms: 0,
            },
        ] {
            let text = fault(&kind, false);
            assert!(!text.contains(['{', '"', '[']), "{text}");
        }
    }

    #[test]
    fn the_byzantine_replica_reads_as_words() {
        assert_eq!(byzantine("n1", "equivocate"), "n1 is Byzantine: equivocate");
    }

    #[test]
    fn unanswered_operations_are_not_counted_as_answered() {
        assert_eq!(operations(40, 40), "40 operations, all answered");
        assert_eq!(operations(40, 38), "40 operations, 38 answered");
    }

    #[test]
    fn the_run_ends_with_one_overall_line() {
        assert_eq!(summary(13, 0), "13 scenarios: 13 passed, 0 failed");
        assert_eq!(summary(13, 2), "13 scenarios: 11 passed, 2 failed");
        assert_eq!(summary(1, 1), "1 scenario: 0 passed, 1 failed");
    }
}
