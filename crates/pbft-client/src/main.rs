//! `pbft-client`: run lin-kv operations against a deployed cluster from
//! the command line. See the crate documentation of `pbft_client`.

use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

mod bench;
mod kept;

use clap::{Parser, Subcommand};
use kept::Kept;
use pbft_client::{Client, ClientError, Operation, Timing};
use serde_json::Value;

/// A PBFT client that trusts no single replica: each result is one that
/// f + 1 replicas agree on.
///
/// Values are JSON when they parse as JSON (`42`, `"text"`, `[1,2]`),
/// and strings otherwise. The client's last timestamp (and the view it
/// last saw) is kept in a file beside its key file (`--timestamp-file`),
/// since replicas refuse a timestamp at or below the last they executed.
/// Use one client key in one process at a time.
#[derive(Parser, Debug)]
#[command(name = "pbft-client", version, about, long_about)]
struct Args {
    /// The cluster file, `cluster.toml`, from `pbft-node keygen --addresses`.
    #[arg(long, value_name = "FILE")]
    cluster: PathBuf,
    /// This client's key file, `<client>.client-key.json`.
    #[arg(long, value_name = "FILE")]
    keys: PathBuf,
    /// Where the client's last timestamp and view are kept (default: the
    /// key file's path with `.timestamp` appended).
    #[arg(long, value_name = "FILE")]
    timestamp_file: Option<PathBuf>,
    /// Milliseconds before an operation fails.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug, Clone)]
enum Command {
    /// Sets KEY to VALUE.
    Write {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Prints the value of KEY.
    Read {
        /// The key.
        key: String,
    },
    /// Sets KEY to TO if it holds FROM.
    Cas {
        /// The key.
        key: String,
        /// The value expected.
        from: String,
        /// The value to set.
        to: String,
    },
    /// Reads commands (`write K V`, `read K`, `cas K FROM TO`, `quit`)
    /// from standard input, one per line.
    Repl,
    /// Runs a closed-loop load of writes and prints throughput and p50 and
    /// p99 latency. Each client needs its own key file: the clients are
    /// this one and the other clients of the cluster file whose key files
    /// are beside its key file.
    Bench {
        /// Concurrent closed-loop clients.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
        clients: u64,
        /// How long to run, in seconds.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        seconds: u64,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .target(env_logger::Target::Stderr)
        .init();
    if let Command::Bench { clients, seconds } = args.command {
        let limit = Duration::from_secs(seconds);
        return match bench::run(
            &args.cluster,
            &args.keys,
            clients as usize,
            limit,
            args.timeout_ms,
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        };
    }
    let stamps = args
        .timestamp_file
        .clone()
        .unwrap_or_else(|| kept::path_beside(&args.keys));
    let kept = match Kept::load(&stamps) {
        Ok(kept) => kept,
        Err(e) => return fail(&e),
    };
    let client = Client::open(&args.cluster, &args.keys, kept.timestamp).map(|c| {
        let timing = Timing {
            deadline: Duration::from_millis(args.timeout_ms),
            ..c.timing().clone()
        };
        c.with_timing(timing).with_view(kept.view)
    });
    let mut session = match client {
        Ok(client) => Session { client, stamps },
        Err(e) => return fail(&e.to_string()),
    };
    match args.command {
        Command::Repl => session.repl(),
        command => match operation(&command).map_err(|e| e.to_string()) {
            Ok(op) => match session.run(op) {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            },
            Err(e) => fail(&e),
        },
    }
}

fn fail(text: &str) -> ExitCode {
    eprintln!("pbft-client: {text}");
    ExitCode::FAILURE
}

/// A client and where its timestamps are kept.
struct Session {
    client: Client,
    stamps: PathBuf,
}

impl Session {
    /// Runs one operation; the line to print.
    fn run(&mut self, operation: Operation) -> Result<String, String> {
        // Kept before the request goes out, so that a crash never reuses a
        // timestamp for another request; the view after it comes back.
        let view = self.client.view();
        Kept::new(self.client.last_timestamp() + 1, view).store(&self.stamps)?;
        let result = self.client.invoke(operation);
        if self.client.view() != view {
            Kept::new(self.client.last_timestamp(), self.client.view()).store(&self.stamps)?;
        }
        match result {
            Ok(pbft_client::Answer::Value(value)) => Ok(value.to_string()),
            Ok(_) => Ok("ok".to_string()),
            Err(ClientError::Refused { code, text }) => Err(format!("error {code}: {text}")),
            Err(e) => Err(e.to_string()),
        }
    }

    fn repl(&mut self) -> ExitCode {
        let stdin = io::stdin();
        let mut failed = false;
        prompt();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            let words: Vec<&str> = line.split_whitespace().collect();
            let command = match words.as_slice() {
                [] => {
                    prompt();
                    continue;
                }
                ["quit" | "exit"] => break,
                ["write", key, value] => Command::Write {
                    key: key.to_string(),
                    value: value.to_string(),
                },
                ["read", key] => Command::Read {
                    key: key.to_string(),
                },
                ["cas", key, from, to] => Command::Cas {
                    key: key.to_string(),
                    from: from.to_string(),
                    to: to.to_string(),
                },
                _ => {
                    eprintln!("commands: write KEY VALUE | read KEY | cas KEY FROM TO | quit");
                    failed = true;
                    prompt();
                    continue;
                }
            };
            let result = operation(&command).and_then(|op| self.run(op));
            match result {
                Ok(text) => println!("{text}"),
                Err(e) => {
                    eprintln!("{e}");
                    failed = true;
                }
            }
            prompt();
        }
        if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }
}

fn prompt() {
    print!("> ");
    let _ = io::stdout().flush();
}

fn operation(command: &Command) -> Result<Operation, String> {
    Ok(match command {
        Command::Write { key, value } => Operation::Write {
            key: value_of(key),
            value: value_of(value),
        },
        Command::Read { key } => Operation::Read { key: value_of(key) },
        Command::Cas { key, from, to } => Operation::Cas {
            key: value_of(key),
            from: value_of(from),
            to: value_of(to),
        },
        Command::Repl | Command::Bench { .. } => {
            return Err("repl and bench are not operations".into())
        }
    })
}

/// A command-line word as a JSON value: itself if it parses, else a string.
fn value_of(word: &str) -> Value {
    serde_json::from_str(word).unwrap_or_else(|_| Value::from(word))
}
