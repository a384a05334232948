//! `pbft-node`: see the crate documentation of the `pbft_node` library.

use std::io::{self, BufReader};
use std::process::ExitCode;

use clap::Parser;

/// A PBFT node speaking JSON lines on stdin and stdout.
///
/// With no flags it runs the embedded default: after `init` it hosts every
/// replica of `node_ids` in this process and answers clients as `node_id`.
/// Logs go to stderr; set RUST_LOG (for example RUST_LOG=debug) for more.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {}

fn main() -> ExitCode {
    let _args = Args::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .target(env_logger::Target::Stderr)
        .init();
    let stdin = BufReader::new(io::stdin().lock());
    let stdout = io::stdout().lock();
    match pbft_node::run(stdin, stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("stopping: {error}");
            ExitCode::FAILURE
        }
    }
}
