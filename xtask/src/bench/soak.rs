//! The memory mode: a long loaded run of the in-process cluster that
//! samples this process's resident memory as it goes, to show that memory
//! does not grow with the number of requests (checkpoints collect the log).
//!
//! The clients and keys are bounded, so the replicated state is too; only
//! the protocol's own bookkeeping could grow. Memory is called flat when
//! the resident size after 100% of the requests is within 10% (or 2 MiB,
//! whichever is more) of the size after 10%.

use super::embedded::{self, InMemory};
use super::memory::{self, Kib};
use super::report::{MemoryCheck, Row};

/// Growth from the 10% sample to the 100% one still called flat, at least.
const SLACK_KIB: Kib = 2 * 1024;

/// Pushes `requests` requests through the cluster from `clients` clients,
/// sampling resident memory.
pub fn run(clients: usize, requests: u64) -> Result<(Row, MemoryCheck), String> {
    memory::reset_own_peak();
    let marks = [10u8, 50, 100].map(|pct| (pct, (requests * u64::from(pct) / 100).max(1)));
    let mut rss: [(u8, Option<Kib>); 3] = marks.map(|(pct, _)| (pct, None));
    let mut peak = None;
    let mut progress = |done: u64| {
        for (slot, (_, at)) in rss.iter_mut().zip(marks) {
            if done == at {
                slot.1 = memory::own_rss();
            }
        }
        if done == requests {
            peak = memory::own_peak();
        }
    };
    let outcome = embedded::run(clients, requests, &mut InMemory, &mut progress)?;
    // The kernel's peak is the larger of its record and the current size,
    // which the samples may have seen go higher.
    let sampled = rss.iter().filter_map(|(_, kib)| *kib).max();
    let peak = peak.max(memory::own_peak()).max(sampled);
    let verdict = verdict(rss[0].1, rss[2].1);
    let mut row = Row::new("memory", "loaded", clients, &outcome.latency);
    row.elapsed = outcome.elapsed;
    row.messages = outcome.messages;
    row.peak = peak;
    let check = MemoryCheck {
        requests: outcome.completed,
        rss,
        peak,
        verdict,
    };
    Ok((row, check))
}

/// `flat` unless memory grew from `early` to `late` by more than the slack.
fn verdict(early: Option<Kib>, late: Option<Kib>) -> &'static str {
    match (early, late) {
        (Some(early), Some(late)) if late <= early + (early / 10).max(SLACK_KIB) => "flat",
        (Some(_), Some(_)) => "growing",
        _ => "n/a",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_growth_against_the_early_sample() {
        assert_eq!(verdict(Some(100_000), Some(105_000)), "flat");
        assert_eq!(verdict(Some(10_000), Some(12_000)), "flat");
        assert_eq!(verdict(Some(100_000), Some(120_000)), "growing");
        assert_eq!(verdict(None, Some(1)), "n/a");
    }

    #[test]
    fn samples_at_each_mark() {
        let (row, check) = run(4, 100).unwrap();
        assert_eq!(row.requests, 100);
        assert_eq!(check.requests, 100);
        if cfg!(target_os = "linux") {
            assert!(check.rss.iter().all(|(_, kib)| kib.is_some()));
        }
    }
}
