//! A four-replica `pbft-node serve` cluster on loopback TCP for the
//! tests, from keygen's files.
#![allow(dead_code)]

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use pbft_client::{Client, Timing};

/// A deployment written by keygen, and its replica processes.
pub struct Cluster {
    dir: PathBuf,
    replicas: Vec<Option<Child>>,
    /// How many times each replica was started, for its log's name.
    starts: Vec<usize>,
    /// Whether each replica keeps its records in `dir/data-<node>`.
    durable: bool,
}

pub const NODES: [&str; 4] = ["n1", "n2", "n3", "n4"];

impl Cluster {
    /// Writes a deployment on free loopback ports and starts every replica,
    /// `byzantine[i]` the behaviour of replica `i`, if any.
    pub fn start(name: &str, byzantine: &[(usize, &str)]) -> Cluster {
        Cluster::start_with(name, byzantine, false)
    }

    /// The same with durable replicas: each keeps its records in a data
    /// directory of its own (`--data-dir`).
    pub fn start_durable(name: &str) -> Cluster {
        Cluster::start_with(name, &[], true)
    }

    fn start_with(name: &str, byzantine: &[(usize, &str)], durable: bool) -> Cluster {
        // A port found free may be taken by another process before a
        // replica binds it; then the replica stops, and the cluster is
        // made again on other ports.
        for _ in 0..3 {
            let mut cluster = Cluster::start_once(name, byzantine, durable);
            thread::sleep(Duration::from_millis(300));
            let stopped = cluster.replicas.iter_mut().any(|r| {
                r.as_mut()
                    .is_some_and(|c| !matches!(c.try_wait(), Ok(None)))
            });
            if !stopped {
                return cluster;
            }
            eprintln!("a replica could not start:\n{}", cluster.logs());
        }
        panic!("the cluster did not start three times");
    }

    fn start_once(name: &str, byzantine: &[(usize, &str)], durable: bool) -> Cluster {
        let dir = std::env::temp_dir().join(format!(
            "pbft-tcp-cluster-test-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        let addresses = free_ports(NODES.len())
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let output = Command::new(env!("CARGO_BIN_EXE_pbft-node"))
            .args(["keygen", "--node-ids", &NODES.join(",")])
            .args(["--addresses", &addresses, "--clients", "c1,c2"])
            .arg("--out")
            .arg(&dir)
            .output()
            .expect("keygen runs");
        assert!(output.status.success(), "keygen: {output:?}");
        let mut cluster = Cluster {
            dir,
            replicas: (0..NODES.len()).map(|_| None).collect(),
            starts: vec![0; NODES.len()],
            durable,
        };
        for i in 0..NODES.len() {
            let behaviour = byzantine.iter().find(|(r, _)| *r == i).map(|(_, b)| *b);
            cluster.spawn(i, behaviour);
        }
        cluster
    }

    pub fn spawn(&mut self, i: usize, byzantine: Option<&str>) {
        self.starts[i] += 1;
        let log = fs::File::create(self.log_path(i)).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_pbft-node"));
        command
            .arg("serve")
            .arg("--cluster")
            .arg(self.dir.join("cluster.toml"))
            .arg("--keys")
            .arg(self.dir.join(format!("{}.keys.json", NODES[i])))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(behaviour) = byzantine {
            command.args(["--byzantine", behaviour]);
        }
        if self.durable {
            command
                .arg("--data-dir")
                .arg(self.dir.join(format!("data-{}", NODES[i])));
        }
        self.replicas[i] = Some(command.spawn().expect("serve starts"));
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir
            .join(format!("{}.{}.log", NODES[i], self.starts[i]))
    }

    /// Kills replica `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.replicas[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn client(&self, name: &str) -> Client {
        let client = Client::open(
            &self.dir.join("cluster.toml"),
            &self.dir.join(format!("{name}.client-key.json")),
            0,
        )
        .expect("client starts");
        client.with_timing(Timing {
            retry: Duration::from_millis(500),
            deadline: Duration::from_secs(30),
        })
    }

    /// The highest sequence number replica `i`'s current log says it
    /// executed or restored.
    pub fn executed(&self, i: usize) -> u64 {
        highest_executed(&self.log_path(i))
    }

    /// Replica `i`'s log since it was last started.
    pub fn log(&self, i: usize) -> String {
        fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    pub fn logs(&self) -> String {
        (0..NODES.len())
            .map(|i| {
                let text = fs::read_to_string(self.log_path(i)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- {} ---\n{}", NODES[i], tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.replicas.len() {
            self.kill(i);
        }
        if !thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// `count` loopback ports that were free a moment ago.
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("bound").port())
        .collect()
}

fn highest_executed(log: &Path) -> u64 {
    pbft_node::replica_node::highest_executed(&fs::read_to_string(log).unwrap_or_default())
}

pub fn value_of_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
