//! Latency percentiles from a fixed-size histogram, so that a run of a
//! million requests measures without its own memory growing.
//!
//! Buckets are log-linear: exact below 128 ns, then 64 buckets per power of
//! two, so a percentile (a bucket's middle) is within 1% of the true value.

use std::time::Duration;

/// Values below this are counted exactly.
const EXACT: u64 = 128;
/// Buckets per power of two above [`EXACT`].
const PER_OCTAVE: u64 = 64;
/// Enough buckets for any `u64` of nanoseconds.
const BUCKETS: usize = (EXACT + (64 - 7) * PER_OCTAVE) as usize;

/// Counts of latencies, in nanoseconds.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    /// Counts one latency.
    pub fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.counts[bucket(nanos)] += 1;
        self.total += 1;
        self.max = self.max.max(nanos);
    }

    /// How many latencies were counted.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// The `p`-th percentile (0 to 100), or `None` with no latencies.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let nanos = middle(index).min(self.max);
                return Some(Duration::from_nanos(nanos));
            }
        }
        Some(Duration::from_nanos(self.max))
    }
}

/// The bucket of a value.
fn bucket(nanos: u64) -> usize {
    if nanos < EXACT {
        return nanos as usize;
    }
    let octave = u64::from(63 - nanos.leading_zeros()); // at least 7
    let top = nanos >> (octave - 6); // the top 7 bits: 64..128
    (EXACT + (octave - 7) * PER_OCTAVE + (top - PER_OCTAVE)) as usize
}

/// The middle of a bucket's range.
fn middle(index: usize) -> u64 {
    let index = index as u64;
    if index < EXACT {
        return index;
    }
    let octave = 7 + (index - EXACT) / PER_OCTAVE;
    let top = PER_OCTAVE + (index - EXACT) % PER_OCTAVE;
    let width = 1u64 << (octave - 6);
    (top << (octave - 6)).saturating_add(width / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for nanos in (0..100_000).chain([u64::MAX / 2, u64::MAX]) {
            let b = bucket(nanos);
            assert!(b >= last && b < BUCKETS, "{nanos} -> {b}");
            last = b;
        }
    }

    #[test]
    fn percentiles_are_close() {
        let mut h = Histogram::default();
        assert_eq!(h.percentile(50.0), None);
        for micros in 1..=1000u64 {
            h.record(Duration::from_micros(micros));
        }
        assert_eq!(h.len(), 1000);
        let p50 = h.percentile(50.0).unwrap().as_nanos() as f64;
        let p99 = h.percentile(99.0).unwrap().as_nanos() as f64;
        assert!((p50 / 500_000.0 - 1.0).abs() < 0.016, "{p50}");
        assert!((p99 / 990_000.0 - 1.0).abs() < 0.016, "{p99}");
        assert_eq!(h.percentile(100.0), Some(Duration::from_micros(1000)));
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::default();
        h.record(Duration::from_nanos(42));
        assert_eq!(h.percentile(99.0), Some(Duration::from_nanos(42)));
    }
}
