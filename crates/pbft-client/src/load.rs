//! A closed-loop load: each client writes, waits for its result, and
//! writes again, on a thread of its own, until a number of requests or a
//! time is reached. `pbft-client bench` and `cargo xtask bench --mode tcp`
//! both run it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::Client;

/// When a load stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// After this many requests have been started in all.
    Requests(u64),
    /// After this long, or when a client has made this many requests (it
    /// stops; the others go on).
    Elapsed(Duration, u64),
}

/// What a load measured.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// Requests with a result.
    pub completed: u64,
    /// Requests without one (the first failure of each client ends its
    /// loop), with the first error's text.
    pub failed: Vec<String>,
    /// From the start to the last client's end.
    pub elapsed: Duration,
    /// Every completed request's latency, in no order.
    pub latencies: Vec<Duration>,
}

impl LoadReport {
    /// Completed requests per second.
    pub fn throughput(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p`-th percentile latency (0 to 100), if any completed.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
    }
}

/// Runs `clients` in a closed loop, each writing its own key, until
/// `until`; `progress` is called with the number completed so far after
/// each result (from the clients' threads). The clients are left as the
/// run leaves them: keep their last timestamps for their next runs.
pub fn run(clients: &mut [Client], until: Until, progress: &(dyn Fn(u64) + Sync)) -> LoadReport {
    let started = Instant::now();
    let begun = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let reports: Vec<(Vec<Duration>, Option<String>)> = thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter_mut()
            .enumerate()
            .map(|(k, client)| {
                let (begun, done) = (&begun, &done);
                scope.spawn(move || {
                    let mut latencies = Vec::new();
                    let mut value = 0u64;
                    loop {
                        let go = match until {
                            Until::Requests(n) => begun.fetch_add(1, Ordering::Relaxed) < n,
                            Until::Elapsed(limit, most) => {
                                started.elapsed() < limit && (latencies.len() as u64) < most
                            }
                        };
                        if !go {
                            return (latencies, None);
                        }
                        value += 1;
                        let sent = Instant::now();
                        if let Err(e) = client.write(json!(format!("load{k}")), value) {
                            return (latencies, Some(e.to_string()));
                        }
                        latencies.push(sent.elapsed());
                        progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| (Vec::new(), Some("a client thread panicked".into())))
            })
            .collect()
    });
    let mut report = LoadReport {
        elapsed: started.elapsed(),
        ..LoadReport::default()
    };
    for (latencies, failure) in reports {
        report.completed += latencies.len() as u64;
        report.latencies.extend(latencies);
        report.failed.extend(failure);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_by_rank() {
        let report = LoadReport {
            completed: 4,
            latencies: [4, 1, 3, 2].map(Duration::from_millis).to_vec(),
            elapsed: Duration::from_secs(2),
            ..LoadReport::default()
        };
        assert_eq!(report.percentile(50.0), Some(Duration::from_millis(2)));
        assert_eq!(report.percentile(99.0), Some(Duration::from_millis(4)));
        assert_eq!(report.percentile(0.0), Some(Duration::from_millis(1)));
        assert_eq!(report.throughput(), 2.0);
        assert_eq!(LoadReport::default().percentile(50.0), None);
    }
}
