//! `pbft-node`: see the crate documentation of the `pbft_node` library.

use std::io::{self, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A PBFT node speaking JSON lines on stdin and stdout.
///
/// With no flags it runs the embedded default: after `init` it hosts every
/// replica of `node_ids` in this process and answers clients as `node_id`.
/// Logs go to stderr; set RUST_LOG (for example RUST_LOG=debug) for more.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Writes one Ed25519 key file per replica into a directory.
    ///
    /// Each file, `<node>.keys.json`, holds that replica's secret key and
    /// every replica's public key (format in docs/protocol.md). Give each
    /// replica only its own file. Existing files are never overwritten.
    Keygen {
        /// The replicas, in init order, comma-separated: n1,n2,n3,n4.
        #[arg(long, value_delimiter = ',', required = true)]
        node_ids: Vec<String>,
        /// The directory to write the key files into (created if needed).
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .target(env_logger::Target::Stderr)
        .init();
    match args.command {
        Some(Command::Keygen { node_ids, out }) => keygen(&node_ids, out),
        None => serve(),
    }
}

fn serve() -> ExitCode {
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

fn keygen(node_ids: &[String], out: PathBuf) -> ExitCode {
    let result = pbft_node::keys::check_node_ids(node_ids)
        .and_then(|()| pbft_node::keys::generate(node_ids))
        .and_then(|files| pbft_node::keys::write_set(&out, &files).map_err(|e| e.to_string()));
    match result {
        Ok(paths) => {
            for path in paths {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("pbft-node keygen: {error}");
            ExitCode::FAILURE
        }
    }
}
