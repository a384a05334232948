//! Replica processes: started, killed and restarted, with every line they
//! print tagged with who printed it, as a real network would know.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use crossbeam_channel::{unbounded, Receiver, Sender};

/// A line a node printed: the node's index, the process generation (a
/// restarted node is a new generation) and the line.
pub type Printed = (usize, u64, String);

/// An execution a node logged: the node's index, the number and the
/// batch digest.
pub type Executed = (usize, u64, String);

/// How the processes run.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The nodes' `RUST_LOG`. At `info` they log every execution, which
    /// [`Processes::executed`] reports.
    pub log: &'static str,
    /// Lines a node addresses to another node (`n<i>`) go straight to it
    /// from the thread that read them, with no faults, and only the other
    /// lines reach [`Processes::lines`]. Otherwise every line does, for a
    /// router to pass on.
    ///
    /// The thread that reads a node's output blocks while the node it
    /// writes to has a full input pipe, and a node does not read its input
    /// while its own output is full, so pipes that all fill at once in a
    /// cycle would stop the run. A closed-loop benchmark keeps far less in
    /// flight than a pipe holds (64 KiB on Linux); anything that could
    /// flood the nodes should route through [`Processes::lines`] instead.
    pub direct: bool,
    /// With [`direct`](Self::direct): lines between nodes lost, per mille,
    /// on every link alike, decided by a generator seeded from `seed` and
    /// the sending node.
    pub loss_per_mille: u32,
    /// The seed of the loss.
    pub seed: u64,
    /// With [`direct`](Self::direct): each node's input is written by a
    /// thread of its own from an unbounded queue, so that the thread
    /// reading a node's output never blocks on another node's full input.
    /// This costs a hand-over between threads per line, but pipes can no
    /// longer all fill in a cycle: for runs whose traffic is not bounded
    /// by a closed loop (retransmissions, view changes).
    pub queued: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            log: "info",
            direct: false,
            loss_per_mille: 0,
            seed: 0,
            queued: false,
        }
    }
}

/// Each node's standard input, shared with the threads that route to it.
type Stdins = Arc<Vec<Mutex<Option<ChildStdin>>>>;

/// The running replica processes.
pub struct Processes {
    binary: PathBuf,
    flags: Vec<Vec<String>>,
    options: Options,
    children: Vec<Option<Child>>,
    stdins: Stdins,
    routed: Arc<AtomicU64>,
    lost: Arc<AtomicU64>,
    highest_view: Arc<AtomicU64>,
    /// With [`Options::queued`]: each node's input queue.
    queues: Option<Arc<Vec<Sender<String>>>>,
    generation: Vec<u64>,
    send: Sender<Printed>,
    send_executed: Sender<Executed>,
    /// Every line any node prints.
    pub lines: Receiver<Printed>,
    /// Every execution any node logs on stderr.
    pub executed: Receiver<Executed>,
}

impl Processes {
    /// Starts one process per entry of `flags`, logging at `info`, every
    /// line for a router.
    pub fn start(binary: &Path, flags: Vec<Vec<String>>) -> Result<Processes, String> {
        Processes::start_with(binary, flags, Options::default())
    }

    /// Starts one process per entry of `flags`, run as `options` says.
    pub fn start_with(
        binary: &Path,
        flags: Vec<Vec<String>>,
        options: Options,
    ) -> Result<Processes, String> {
        let (send, lines) = unbounded();
        let (send_executed, executed) = unbounded();
        let n = flags.len();
        let mut processes = Processes {
            binary: binary.to_path_buf(),
            flags,
            options,
            children: (0..n).map(|_| None).collect(),
            stdins: Arc::new((0..n).map(|_| Mutex::new(None)).collect()),
            routed: Arc::new(AtomicU64::new(0)),
            lost: Arc::new(AtomicU64::new(0)),
            highest_view: Arc::new(AtomicU64::new(0)),
            queues: None,
            generation: vec![0; n],
            send,
            send_executed,
            lines,
            executed,
        };
        if options.direct && options.queued {
            let mut queues = Vec::new();
            for i in 0..n {
                let (send, receive) = unbounded::<String>();
                let stdins = processes.stdins.clone();
                thread::spawn(move || {
                    for line in receive {
                        write_line(&stdins[i], &line);
                    }
                });
                queues.push(send);
            }
            processes.queues = Some(Arc::new(queues));
        }
        for i in 0..n {
            processes.spawn(i)?;
        }
        Ok(processes)
    }

    fn spawn(&mut self, i: usize) -> Result<(), String> {
        let mut child = Command::new(&self.binary)
            .args(&self.flags[i])
            .env("RUST_LOG", self.options.log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let send_executed = self.send_executed.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if std::env::var_os("SCENARIO_NODE_LOGS").is_some() {
                    eprintln!("n{}: {line}", i + 1);
                }
                if let Some(executed) = parse_executed(&line) {
                    if send_executed.send((i, executed.0, executed.1)).is_err() {
                        return;
                    }
                }
            }
        });
        self.generation[i] += 1;
        let generation = self.generation[i];
        let send = self.send.clone();
        let direct = self.options.direct.then(|| {
            (
                self.stdins.clone(),
                self.routed.clone(),
                self.lost.clone(),
                self.highest_view.clone(),
            )
        });
        let loss = self.options.loss_per_mille;
        let queues = self.queues.clone();
        let mut rng = Loss::new(self.options.seed ^ (i as u64).wrapping_mul(0x9e37_79b9));
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some((stdins, routed, lost, highest_view)) = &direct {
                    if let Some(to) = node_dest(&line).filter(|to| *to < stdins.len()) {
                        if let Some(view) = view_change_to(&line) {
                            highest_view.fetch_max(view, Ordering::Relaxed);
                        }
                        if loss > 0 && rng.chance(loss) {
                            lost.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        routed.fetch_add(1, Ordering::Relaxed);
                        match &queues {
                            Some(queues) => {
                                let _ = queues[to].send(line);
                            }
                            None => {
                                write_line(&stdins[to], &line);
                            }
                        }
                        continue;
                    }
                }
                if send.send((i, generation, line)).is_err() {
                    return;
                }
            }
        });
        *lock(&self.stdins[i]) = Some(stdin);
        self.children[i] = Some(child);
        Ok(())
    }

    /// How many lines went straight from node to node (see
    /// [`Options::direct`]).
    pub fn routed(&self) -> u64 {
        self.routed.load(Ordering::Relaxed)
    }

    /// How many lines between nodes the router lost on purpose (see
    /// [`Options::loss_per_mille`]).
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// The highest view any node sent a view change for, routed directly:
    /// 0 when no view changed.
    pub fn highest_view(&self) -> u64 {
        self.highest_view.load(Ordering::Relaxed)
    }

    /// Whether node `i` is running.
    pub fn alive(&self, i: usize) -> bool {
        self.children[i].is_some()
    }

    /// The operating system's process id of node `i`, if it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.children[i].as_ref().map(Child::id)
    }

    /// The current generation of node `i`.
    pub fn generation(&self, i: usize) -> u64 {
        self.generation[i]
    }

    /// Writes a line to node `i`, if it runs.
    pub fn write(&mut self, i: usize, line: &str) {
        if !write_line(&self.stdins[i], line) {
            self.kill(i);
        }
    }

    /// Kills node `i`.
    pub fn kill(&mut self, i: usize) {
        // The process first: a thread blocked writing to its full input
        // holds the input's lock until the write fails.
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        drop(lock(&self.stdins[i]).take());
    }

    /// Starts node `i` again with empty memory.
    pub fn restart(&mut self, i: usize) -> Result<(), String> {
        self.kill(i);
        self.spawn(i)
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}

/// Writes `line` to a node's input in one write (the pipe is unbuffered).
/// False if the node is gone.
fn write_line(stdin: &Mutex<Option<ChildStdin>>, line: &str) -> bool {
    match lock(stdin).as_mut() {
        Some(stdin) => stdin.write_all(format!("{line}\n").as_bytes()).is_ok(),
        None => true,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The node index `i` of a line addressed to `n<i + 1>`, read from its
/// `dest` without decoding the rest.
fn node_dest(line: &str) -> Option<usize> {
    #[derive(serde::Deserialize)]
    struct Dest<'a> {
        #[serde(borrow)]
        dest: std::borrow::Cow<'a, str>,
    }
    let dest: Dest = serde_json::from_str(line).ok()?;
    let i: usize = dest.dest.strip_prefix('n')?.parse().ok()?;
    i.checked_sub(1)
}

/// Reads `executed #N digest D ...` from a node's log line.
fn parse_executed(line: &str) -> Option<(u64, String)> {
    let rest = line.split_once("executed #")?.1;
    let (seq, rest) = rest.split_once(' ')?;
    let digest = rest.strip_prefix("digest ")?.split(' ').next()?;
    Some((seq.parse().ok()?, digest.to_string()))
}

/// The view a `pbft_view_change` line asks for, read without decoding it.
fn view_change_to(line: &str) -> Option<u64> {
    if !line.contains("\"type\":\"pbft_view_change\"") {
        return None;
    }
    let rest = line.split_once("\"new_view\":")?.1;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The router's loss: SplitMix64, seeded, one generator per sending node.
struct Loss(u64);

impl Loss {
    fn new(seed: u64) -> Loss {
        Loss(seed)
    }

    fn chance(&mut self, per_mille: u32) -> bool {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % 1000 < u64::from(per_mille)
    }
}
