//! Four `pbft-node serve` processes on loopback TCP, driven by closed-loop
//! clients of the client library (`pbft_client::load`): every request is
//! signed by its client, every replica message by its replica, and a
//! result counts once f + 1 replicas sent it. A request's latency is the
//! client's, from signing it to the (f + 1)-th matching reply.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use pbft_client::load::{self, LoadReport, Until};
use pbft_client::Client;

use super::memory::{self, Kib};
use crate::children::KillOnDrop;

const NODES: [&str; 4] = ["n1", "n2", "n3", "n4"];

/// The longest the unmeasured first requests may take.
const WARM_UP: Duration = Duration::from_secs(60);

/// What a run measured.
pub struct Outcome {
    /// The clients' measurements.
    pub report: LoadReport,
    /// CPU time (user and system) the four replicas used in the run.
    pub replica_cpu: Option<Duration>,
    /// CPU time this process (the clients) used in the run.
    pub client_cpu: Option<Duration>,
    /// The largest peak resident memory of the four replicas.
    pub peak: Option<Kib>,
    /// The write calls the four replicas made in the run (`syscw` of
    /// `/proc/<pid>/io`). With data directories their log writes each of
    /// its syncs in one call; whatever else is counted shows in the runs
    /// without.
    pub log_writes: Option<u64>,
}

/// Runs `clients` clients for `requests` requests in all against four
/// fresh replicas of `binary`, each with a data directory if `durable`.
pub fn run(binary: &Path, clients: usize, requests: u64, durable: bool) -> Result<Outcome, String> {
    let dir = std::env::temp_dir().join(format!("pbft-bench-tcp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let outcome = run_in(binary, clients, requests, durable, &dir);
    let _ = fs::remove_dir_all(&dir);
    outcome
}

fn run_in(
    binary: &Path,
    clients: usize,
    requests: u64,
    durable: bool,
    dir: &Path,
) -> Result<Outcome, String> {
    let listeners: Vec<TcpListener> = NODES
        .iter()
        .map(|_| TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}")))
        .collect::<Result<_, _>>()?;
    let addresses: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    drop(listeners);
    let names: Vec<String> = (1..=clients).map(|c| format!("c{c}")).collect();
    let nodes: Vec<String> = NODES.iter().map(|n| n.to_string()).collect();
    pbft_node::deploy::write(&nodes, &addresses, &names, dir)?;
    let cluster_path = dir.join("cluster.toml");
    let mut replicas = KillOnDrop(Vec::new());
    for node in NODES {
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--cluster")
            .arg(&cluster_path)
            .arg("--keys")
            .arg(dir.join(format!("{node}.keys.json")));
        if durable {
            command
                .arg("--data-dir")
                .arg(dir.join(format!("data-{node}")));
        }
        let child = command
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {node}: {e}"))?;
        replicas.0.push(child);
    }
    let cluster =
        pbft_node::cluster::ClusterFile::load(&cluster_path).map_err(|e| e.to_string())?;
    let mut opened = names
        .iter()
        .map(|name| {
            let path = dir.join(format!("{name}.client-key.json"));
            let key = pbft_node::client_keys::ClientKey::load(&path).map_err(|e| e.to_string())?;
            Client::new(&cluster, key, 0).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, String>>()?;
    // One request from each client first, unmeasured: the clients connect
    // (dialing until the replicas listen) and the replicas warm up.
    let warm = load::run(&mut opened, Until::Elapsed(WARM_UP, 1), &|_| {});
    if let Some(why) = warm.failed.first() {
        return Err(format!("the warm-up failed: {why}"));
    }
    let pids = replicas.pids();
    let replica_cpu =
        |pids: &[u32]| -> Option<Duration> { pids.iter().map(|p| cpu_of(&p.to_string())).sum() };
    let writes = |pids: &[u32]| -> Option<u64> { pids.iter().map(|p| writes_of(*p)).sum() };
    let before = (replica_cpu(&pids), cpu_of("self"), writes(&pids));
    let report = load::run(&mut opened, Until::Requests(requests), &|_| {});
    let after = (replica_cpu(&pids), cpu_of("self"), writes(&pids));
    let peak = pids.iter().filter_map(|p| memory::peak_of(*p)).max();
    let since = |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?));
    Ok(Outcome {
        report,
        replica_cpu: since(before.0, after.0),
        client_cpu: since(before.1, after.1),
        peak,
        log_writes: match (before.2, after.2) {
            (Some(b), Some(a)) => Some(a.saturating_sub(b)),
            _ => None,
        },
    })
}

/// The write calls process `pid` made (`syscw` in `/proc/<pid>/io`).
fn writes_of(pid: u32) -> Option<u64> {
    let io = fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|line| line.strip_prefix("syscw:"))?
        .trim()
        .parse()
        .ok()
}

/// The user and system CPU time of process `who` (a pid or `self`), from
/// `/proc/<who>/stat`.
fn cpu_of(who: &str) -> Option<Duration> {
    parse_cpu(&fs::read_to_string(PathBuf::from(format!("/proc/{who}/stat"))).ok()?)
}

/// utime plus stime of a `/proc/<pid>/stat` line, in clock ticks of 10 ms
/// (Linux's `USER_HZ`).
fn parse_cpu(stat: &str) -> Option<Duration> {
    // The command name may hold spaces and parentheses; the fields after
    // its last `)` are plain. utime and stime are the 14th and 15th fields
    // of the line, the 12th and 13th after the name.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        let stat = "4242 (pbft node (x)) S 1 2 3 4 5 6 7 8 9 10 250 17 0 0 20 0";
        assert_eq!(parse_cpu(stat), Some(Duration::from_millis(2670)));
        assert_eq!(parse_cpu("4242 (short) S 1 2"), None);
        assert!(cpu_of("self").is_some(), "Linux has /proc/self/stat");
    }
}
