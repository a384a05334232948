//! Replica processes: started, killed and restarted, with every line they
//! print tagged with who printed it, as a real network would know.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;

use crossbeam_channel::{unbounded, Receiver, Sender};

/// A line a node printed: the node's index, the process generation (a
/// restarted node is a new generation) and the line.
pub type Printed = (usize, u64, String);

/// An execution a node logged: the node's index, the number and the
/// batch digest.
pub type Executed = (usize, u64, String);

/// The running replica processes.
pub struct Processes {
    binary: PathBuf,
    flags: Vec<Vec<String>>,
    children: Vec<Option<(Child, ChildStdin)>>,
    generation: Vec<u64>,
    send: Sender<Printed>,
    send_executed: Sender<Executed>,
    /// Every line any node prints.
    pub lines: Receiver<Printed>,
    /// Every execution any node logs on stderr.
    pub executed: Receiver<Executed>,
}

impl Processes {
    /// Starts one process per entry of `flags`.
    pub fn start(binary: &Path, flags: Vec<Vec<String>>) -> Result<Processes, String> {
        let (send, lines) = unbounded();
        let (send_executed, executed) = unbounded();
        let n = flags.len();
        let mut processes = Processes {
            binary: binary.to_path_buf(),
            flags,
            children: (0..n).map(|_| None).collect(),
            generation: vec![0; n],
            send,
            send_executed,
            lines,
            executed,
        };
        for i in 0..n {
            processes.spawn(i)?;
        }
        Ok(processes)
    }

    fn spawn(&mut self, i: usize) -> Result<(), String> {
        let mut child = Command::new(&self.binary)
            .args(&self.flags[i])
            .env("RUST_LOG", "info")
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
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if send.send((i, generation, line)).is_err() {
                    return;
                }
            }
        });
        self.children[i] = Some((child, stdin));
        Ok(())
    }

    /// Whether node `i` is running.
    pub fn alive(&self, i: usize) -> bool {
        self.children[i].is_some()
    }

    /// The operating system's process id of node `i`, if it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.children[i].as_ref().map(|(child, _)| child.id())
    }

    /// The current generation of node `i`.
    pub fn generation(&self, i: usize) -> u64 {
        self.generation[i]
    }

    /// Writes a line to node `i`, if it runs.
    pub fn write(&mut self, i: usize, line: &str) {
        let broken = match self.children[i].as_mut() {
            // One write per line: the pipe is unbuffered.
            Some((_, stdin)) => stdin.write_all(format!("{line}\n").as_bytes()).is_err(),
            None => false,
        };
        if broken {
            self.kill(i);
        }
    }

    /// Kills node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some((mut child, stdin)) = self.children[i].take() {
            drop(stdin);
            let _ = child.kill();
            let _ = child.wait();
        }
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

/// Reads `executed #N digest D ...` from a node's log line.
fn parse_executed(line: &str) -> Option<(u64, String)> {
    let rest = line.split_once("executed #")?.1;
    let (seq, rest) = rest.split_once(' ')?;
    let digest = rest.strip_prefix("digest ")?.split(' ').next()?;
    Some((seq.parse().ok()?, digest.to_string()))
}
