//! Four `pbft-node serve` processes on loopback TCP, used through the
//! client library: writes and reads; the primary killed and the client
//! served in a new view; a backup killed, restarted, caught up and needed;
//! and Byzantine replicas that cannot make the client accept a wrong
//! result.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use pbft_client::{Client, ClientError, Timing};
use serde_json::json;

/// A deployment written by keygen, and its replica processes.
struct Cluster {
    dir: PathBuf,
    replicas: Vec<Option<Child>>,
    /// How many times each replica was started, for its log's name.
    starts: Vec<usize>,
}

const NODES: [&str; 4] = ["n1", "n2", "n3", "n4"];

impl Cluster {
    /// Writes a deployment on free loopback ports and starts every replica,
    /// `byzantine[i]` the behaviour of replica `i`, if any.
    fn start(name: &str, byzantine: &[(usize, &str)]) -> Cluster {
        // A port found free may be taken by another process before a
        // replica binds it; then the replica stops, and the cluster is
        // made again on other ports.
        for _ in 0..3 {
            let mut cluster = Cluster::start_once(name, byzantine);
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

    fn start_once(name: &str, byzantine: &[(usize, &str)]) -> Cluster {
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
        };
        for i in 0..NODES.len() {
            let behaviour = byzantine.iter().find(|(r, _)| *r == i).map(|(_, b)| *b);
            cluster.spawn(i, behaviour);
        }
        cluster
    }

    fn spawn(&mut self, i: usize, byzantine: Option<&str>) {
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
        self.replicas[i] = Some(command.spawn().expect("serve starts"));
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir
            .join(format!("{}.{}.log", NODES[i], self.starts[i]))
    }

    /// Kills replica `i` with SIGKILL.
    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.replicas[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn client(&self, name: &str) -> Client {
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
    fn executed(&self, i: usize) -> u64 {
        highest_executed(&self.log_path(i))
    }

    fn logs(&self) -> String {
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

#[test]
fn the_client_is_served_through_a_primary_crash_and_a_backup_restart() {
    let mut cluster = Cluster::start("crashes", &[]);
    let mut client = cluster.client("c1");
    client.write("x", 1).expect("first write");
    assert_eq!(client.read("x").expect("read"), json!(1));
    assert_eq!(client.view(), 0);

    // The primary of view 0 dies: the client's next operations succeed in
    // a new view, and the client learns it.
    cluster.kill(0);
    client
        .write("x", 2)
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert!(client.view() >= 1, "view {}", client.view());
    assert_eq!(client.read("x").expect("read"), json!(2));

    // It comes back; then a backup dies and misses some operations.
    cluster.spawn(0, None);
    cluster.kill(2);
    for value in 3..=6 {
        client
            .write("x", value)
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    }
    cluster.spawn(2, None);
    let target = cluster.executed(1).max(cluster.executed(3));
    let started = Instant::now();
    while cluster.executed(2) < target {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "n3 never caught up to #{target}\n{}",
            cluster.logs()
        );
        // Traffic drives the catch-up, as a live cluster has.
        client.write("y", value_of_time()).expect("a write");
        thread::sleep(Duration::from_millis(50));
    }

    // With n2 dead too, the cluster needs n3: it is a working replica
    // again, and the state it caught up on is the cluster's.
    cluster.kill(1);
    client
        .cas("x", 6, 7)
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(client.read("x").expect("read"), json!(7));
}

fn value_of_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[test]
fn a_primary_that_lies_to_clients_cannot_make_the_client_accept_a_wrong_result() {
    // The primary of view 0 answers first, and wrongly: forged values,
    // successes as failures and failures as successes.
    let cluster = Cluster::start("wrong-results", &[(0, "wrong-results")]);
    let mut client = cluster.client("c1");
    client.write("k", 10).expect("write");
    assert_eq!(client.read("k").expect("read"), json!(10));
    client.cas("k", 10, 11).expect("a cas that holds");
    assert!(
        matches!(
            client.cas("k", 10, 12),
            Err(ClientError::Refused { code: 22, .. })
        ),
        "a cas that does not hold fails"
    );
    assert!(
        matches!(
            client.read("missing"),
            Err(ClientError::Refused { code: 20, .. })
        ),
        "a missing key is missing"
    );
    assert_eq!(client.read("k").expect("read"), json!(11));
}

#[test]
fn an_equivocating_primary_cannot_make_the_client_accept_a_wrong_result() {
    let cluster = Cluster::start("equivocate", &[(0, "equivocate")]);
    let mut client = cluster.client("c2");
    for value in 0..5 {
        client
            .write("e", value)
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        assert_eq!(client.read("e").expect("read"), json!(value));
    }
}
