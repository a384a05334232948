//! The figures of a bench run, as a table for people or JSON for machines.

use std::time::Duration;

use serde_json::{json, Value};

use super::latency::Histogram;
use super::memory::{self, Kib};

/// The figures of one run.
#[derive(Clone, Debug)]
pub struct Row {
    /// The mode: `embedded`, `embedded-wire`, `processes` or `memory`.
    pub mode: &'static str,
    /// Which run of the mode, for example `loaded`.
    pub run: String,
    /// Concurrent closed-loop clients.
    pub clients: usize,
    /// Requests completed.
    pub requests: u64,
    /// How long they took.
    pub elapsed: Duration,
    /// Median latency.
    pub p50: Option<Duration>,
    /// 99th-percentile latency.
    pub p99: Option<Duration>,
    /// Replica-to-replica messages.
    pub messages: u64,
    /// Peak resident memory.
    pub peak: Option<Kib>,
    /// Anything else worth saying.
    pub notes: Vec<String>,
}

impl Row {
    /// A row from a run's measurements.
    pub fn new(mode: &'static str, run: &str, clients: usize, latency: &Histogram) -> Row {
        Row {
            mode,
            run: run.to_string(),
            clients,
            requests: latency.len(),
            elapsed: Duration::ZERO,
            p50: latency.percentile(50.0),
            p99: latency.percentile(99.0),
            messages: 0,
            peak: None,
            notes: Vec::new(),
        }
    }

    /// Requests completed per second.
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Messages per completed request.
    pub fn per_request(&self) -> f64 {
        self.messages as f64 / self.requests.max(1) as f64
    }
}

/// The memory mode's verdict.
#[derive(Clone, Debug)]
pub struct MemoryCheck {
    /// Requests pushed through.
    pub requests: u64,
    /// Resident memory after 10%, 50% and 100% of them.
    pub rss: [(u8, Option<Kib>); 3],
    /// Peak resident memory over the run.
    pub peak: Option<Kib>,
    /// `flat`, `growing`, or `n/a`.
    pub verdict: &'static str,
}

/// Everything a bench run measured.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// `release` or `debug`.
    pub build: &'static str,
    /// One row per run.
    pub rows: Vec<Row>,
    /// The memory mode's verdict, if it ran.
    pub memory: Option<MemoryCheck>,
    /// The whole bench run.
    pub elapsed: Duration,
    /// What the run ran on.
    pub machine: Machine,
    /// Runs that did not complete, and why.
    pub failures: Vec<String>,
}

/// The machine, as far as it matters to the figures.
#[derive(Clone, Debug, Default)]
pub struct Machine {
    /// Logical CPUs this process may use.
    pub cpus: Option<usize>,
    /// The one-minute load average when the run started (Linux only): how
    /// busy the machine already was.
    pub load: Option<f64>,
}

impl Machine {
    /// The machine now.
    pub fn now() -> Machine {
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse().ok());
        Machine {
            cpus: std::thread::available_parallelism().ok().map(usize::from),
            load,
        }
    }

    fn describe(&self) -> String {
        let cpus = self
            .cpus
            .map_or("? CPUs".to_string(), |n| format!("{n} CPUs"));
        match self.load {
            Some(load) => format!("{cpus}, load average {load:.2} at the start"),
            None => cpus,
        }
    }
}

/// Microseconds with one decimal, or "-".
fn micros(latency: Option<Duration>) -> String {
    latency.map_or_else(
        || "-".to_string(),
        |d| format!("{:.1}", d.as_secs_f64() * 1e6),
    )
}

/// A whole number with thousands separators.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Report {
    /// Adds a run's row, and its failure if it failed.
    pub fn push(&mut self, (row, failure): (Row, Option<String>)) {
        self.rows.push(row);
        self.failures.extend(failure);
    }

    /// The table, notes and memory verdict, as printed.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<14} {:<20} {:>7} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9}\n",
            "mode",
            "run",
            "clients",
            "requests",
            "req/s",
            "p50 µs",
            "p99 µs",
            "msgs/req",
            "peak MiB"
        );
        for row in &self.rows {
            out += &format!(
                "{:<14} {:<20} {:>7} {:>10} {:>10} {:>9} {:>9} {:>9.1} {:>9}\n",
                row.mode,
                row.run,
                row.clients,
                thousands(row.requests),
                thousands(row.throughput().round() as u64),
                micros(row.p50),
                micros(row.p99),
                row.per_request(),
                memory::show(row.peak),
            );
        }
        for row in self.rows.iter().filter(|r| !r.notes.is_empty()) {
            out += &format!("{} {}: {}\n", row.mode, row.run, row.notes.join("; "));
        }
        if let Some(m) = &self.memory {
            let samples: Vec<String> = m
                .rss
                .iter()
                .map(|(pct, kib)| format!("{pct}%: {} MiB", memory::show(*kib)))
                .collect();
            out += &format!(
                "memory: {} requests, resident {}, peak {} MiB: {}\n",
                thousands(m.requests),
                samples.join(", "),
                memory::show(m.peak),
                m.verdict
            );
        }
        out += &format!(
            "{} build on {}, {:.0?} in all. Latency: embedded modes from submit to the \
             f+1-th execution; processes from writing the request line to reading n1's \
             reply line; tcp from signing the request to the f+1-th matching reply.",
            self.build,
            self.machine.describe(),
            self.elapsed
        );
        if self.build != "release" {
            out += "\nNOT an optimised build: these figures mean nothing.";
        }
        out
    }

    /// The same as one JSON object.
    pub fn json(&self) -> Value {
        let us = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e6);
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "mode": r.mode,
                    "run": r.run,
                    "clients": r.clients,
                    "requests": r.requests,
                    "elapsed_s": r.elapsed.as_secs_f64(),
                    "throughput_rps": r.throughput(),
                    "latency_us": {"p50": us(r.p50), "p99": us(r.p99)},
                    "messages_per_request": r.per_request(),
                    "peak_memory_kib": r.peak,
                    "notes": r.notes,
                })
            })
            .collect();
        let memory = self.memory.as_ref().map(|m| {
            json!({
                "requests": m.requests,
                "rss_kib": m.rss.iter().map(|(pct, kib)| json!({"percent": pct, "kib": kib})).collect::<Vec<_>>(),
                "peak_kib": m.peak,
                "verdict": m.verdict,
            })
        });
        json!({
            "build": self.build,
            "cpus": self.machine.cpus,
            "load_average_at_start": self.machine.load,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "runs": rows,
            "memory": memory,
            "failures": self.failures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(micros(Some(Duration::from_nanos(1550))), "1.6");
        assert_eq!(micros(None), "-");
    }

    #[test]
    fn table_and_json_carry_each_row() {
        let mut latency = Histogram::default();
        latency.record(Duration::from_micros(10));
        let mut row = Row::new("embedded", "unbatched", 1, &latency);
        row.elapsed = Duration::from_millis(1);
        row.messages = 25;
        let report = Report {
            build: "release",
            rows: vec![row],
            memory: None,
            elapsed: Duration::from_secs(1),
            machine: Machine::default(),
            failures: Vec::new(),
        };
        assert!(report.table().contains("unbatched"));
        let json = report.json();
        assert_eq!(json["runs"][0]["throughput_rps"], 1000.0);
        assert_eq!(json["runs"][0]["messages_per_request"], 25.0);
        assert_eq!(json["runs"][0]["peak_memory_kib"], Value::Null);
    }
}
