//! `pbft-client bench`: a closed-loop load from several clients of one
//! deployment, with a progress bar.

use std::path::Path;
use std::time::Duration;

use pbft_client::load::{self, Until};
use pbft_client::{Client, Timing};
use pbft_node::client_keys::ClientKey;
use pbft_node::cluster::ClusterFile;

use crate::kept::{self, Kept};

/// The timestamps reserved for each client per run: the most requests it
/// makes in one. Well under the 2^20 that replicas accept ahead of a
/// client's last executed timestamp.
const RESERVED: u64 = 1 << 16;

/// Runs `clients` clients for `limit` and prints what they measured.
pub fn run(
    cluster_path: &Path,
    keys: &Path,
    clients: usize,
    limit: Duration,
    timeout_ms: u64,
) -> Result<(), String> {
    let cluster = ClusterFile::load(cluster_path).map_err(|e| e.to_string())?;
    let first = ClientKey::load(keys).map_err(|e| e.to_string())?;
    let dir = keys.parent().unwrap_or(Path::new("."));
    // This client first, then the cluster file's others, by id.
    let mut paths = vec![keys.to_path_buf()];
    for id in cluster.clients.keys() {
        if id != first.client.as_str() && paths.len() < clients {
            let path = dir.join(format!("{id}.client-key.json"));
            if path.exists() {
                paths.push(path);
            }
        }
    }
    if paths.len() < clients {
        return Err(format!(
            "bench --clients {clients} needs {clients} client key files beside {}, of \
             clients in the cluster file; found {} (keygen --clients makes more)",
            keys.display(),
            paths.len()
        ));
    }
    let timing = Timing {
        retry: Duration::from_millis(cluster.protocol.view_change_timeout_ms.max(1)),
        deadline: Duration::from_millis(timeout_ms),
    };
    // Each client's timestamps for the run are reserved before it starts,
    // so that an interrupted run never leaves a timestamp the replicas
    // executed unkept; the file gets the last one used after the run.
    let stamps: Vec<_> = paths.iter().map(|p| kept::path_beside(p)).collect();
    let mut opened = Vec::with_capacity(paths.len());
    for (path, stamp) in paths.iter().zip(&stamps) {
        let key = ClientKey::load(path).map_err(|e| e.to_string())?;
        let before = Kept::load(stamp)?;
        Kept::new(before.timestamp + RESERVED, before.view).store(stamp)?;
        let client = Client::new(&cluster, key, before.timestamp).map_err(|e| e.to_string())?;
        opened.push(client.with_timing(timing.clone()).with_view(before.view));
    }
    let bar = indicatif::ProgressBar::new(limit.as_secs());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {elapsed}/{len}s {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let progress = |done: u64| {
        if done.is_multiple_of(64) {
            let secs = started.elapsed().as_secs_f64();
            bar.set_position(secs as u64);
            bar.set_message(format!("{done} requests, {:.0}/s", done as f64 / secs));
        }
    };
    let report = load::run(&mut opened, Until::Elapsed(limit, RESERVED), &progress);
    bar.finish_and_clear();
    for (stamp, client) in stamps.iter().zip(&opened) {
        Kept::new(client.last_timestamp(), client.view()).store(stamp)?;
    }
    let ms = |d: Option<Duration>| {
        d.map_or("-".to_string(), |d| {
            format!("{:.2} ms", d.as_secs_f64() * 1e3)
        })
    };
    println!(
        "{} clients, {:.1} s: {} requests, {:.0} requests/s, p50 {}, p99 {}",
        clients,
        report.elapsed.as_secs_f64(),
        report.completed,
        report.throughput(),
        ms(report.percentile(50.0)),
        ms(report.percentile(99.0)),
    );
    match report.failed.first() {
        Some(first) => Err(format!(
            "{} clients failed, the first: {first}",
            report.failed.len()
        )),
        None => Ok(()),
    }
}
