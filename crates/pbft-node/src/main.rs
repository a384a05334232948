//! `pbft-node`: see the crate documentation of the `pbft_node` library.

use std::io::{self, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use pbft_node::keys::KeyFile;
use pbft_node::replica_node::{Auth, Settings};

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
    /// `embedded` hosts every replica in this process (the default);
    /// `replica` runs exactly one replica, the `node_id` from init, which
    /// talks to its peers in JSON lines.
    #[arg(long, env = "PBFT_MODE", value_enum, default_value_t = Mode::Embedded)]
    mode: Mode,
    /// Replica mode: this replica's key file, from `pbft-node keygen`.
    #[arg(long, env = "PBFT_KEYS")]
    keys: Option<PathBuf>,
    /// Replica mode: `none` runs without signatures. Only for a transport
    /// that vouches for every sender: NOT safe against Byzantine peers.
    #[arg(long, env = "PBFT_AUTH", value_enum)]
    auth: Option<AuthMode>,
    /// Replica mode: milliseconds per tick of the core's clock.
    #[arg(long, default_value_t = 10)]
    tick_ms: u64,
    /// Replica mode: how long a backup waits for a request to execute
    /// before it suspects the primary, in milliseconds.
    #[arg(long, default_value_t = 500)]
    view_change_timeout_ms: u64,
    /// Replica mode: take a checkpoint every this many sequence numbers.
    #[arg(long, default_value_t = pbft_core::DEFAULT_CHECKPOINT_INTERVAL)]
    checkpoint_interval: u64,
    /// Replica mode: the most client requests the primary puts in one
    /// pre-prepare.
    #[arg(long, default_value_t = pbft_core::DEFAULT_MAX_BATCH)]
    max_batch: usize,
    /// Replica mode: the most sequence numbers the primary keeps in flight
    /// before it holds requests back to batch them.
    #[arg(long, default_value_t = pbft_core::DEFAULT_MAX_IN_FLIGHT)]
    max_in_flight: u64,
    /// TESTING AID ONLY: make this replica Byzantine (silent, equivocate,
    /// bad-digest, forge-votes, stale-view or fabricate-certificate), to
    /// test that the others survive it.
    #[arg(long, value_name = "BEHAVIOUR")]
    byzantine: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Embedded,
    Replica,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum AuthMode {
    None,
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
    match (&args.command, args.mode) {
        (Some(Command::Keygen { node_ids, out }), _) => keygen(node_ids, out.clone()),
        (None, Mode::Embedded)
            if args.keys.is_some() || args.auth.is_some() || args.byzantine.is_some() =>
        {
            eprintln!(
                "pbft-node: --keys, --auth and --byzantine apply to --mode replica; the \
                 embedded default hosts every replica in one process and signs nothing"
            );
            ExitCode::from(2)
        }
        (None, Mode::Embedded) => serve(),
        (None, Mode::Replica) => match replica_settings(&args) {
            Ok(settings) => serve_replica(settings, &args),
            Err(message) => {
                eprintln!("pbft-node: {message}");
                ExitCode::from(2)
            }
        },
    }
}

/// Checks replica mode's flags: authentication must be chosen knowingly.
fn replica_settings(args: &Args) -> Result<Settings, String> {
    let auth = match (&args.keys, args.auth) {
        (Some(_), Some(_)) => {
            return Err("give either --keys FILE or --auth none, not both".to_string())
        }
        (Some(path), None) => Auth::Keys(KeyFile::load(path).map_err(|e| e.to_string())?),
        (None, Some(AuthMode::None)) => {
            log::warn!(
                "running WITHOUT authentication (--auth none): any sender can speak for any \
                 replica; this is not safe against Byzantine peers"
            );
            Auth::None
        }
        (None, None) => {
            return Err(
                "replica mode needs to know how to authenticate its peers: generate \
                 keys with `pbft-node keygen --node-ids n1,n2,n3,n4 --out keys/` and pass \
                 --keys keys/<node>.keys.json, or pass --auth none to run unsigned over a \
                 trusted transport"
                    .to_string(),
            )
        }
    };
    if args.tick_ms == 0 {
        return Err("--tick-ms must be at least 1".to_string());
    }
    if args.checkpoint_interval == 0 {
        return Err("--checkpoint-interval must be at least 1".to_string());
    }
    if args.max_batch == 0 || args.max_batch > pbft_core::MAX_BATCH {
        return Err(format!(
            "--max-batch must be between 1 and {}",
            pbft_core::MAX_BATCH
        ));
    }
    if args.max_in_flight == 0 {
        return Err("--max-in-flight must be at least 1".to_string());
    }
    let byzantine = match &args.byzantine {
        None => None,
        Some(name) => {
            let behaviour = pbft_node::byzantine::Behaviour::parse(name).ok_or_else(|| {
                format!(
                    "unknown --byzantine behaviour {name:?}: silent, equivocate, bad-digest, \
                     forge-votes, stale-view or fabricate-certificate"
                )
            })?;
            log::warn!("TESTING AID: this replica is Byzantine ({name}); never use in production");
            Some(behaviour)
        }
    };
    Ok(Settings {
        byzantine,
        auth,
        checkpoint_interval: args.checkpoint_interval,
        max_batch: args.max_batch,
        max_in_flight: args.max_in_flight,
        view_change_timeout: (args.view_change_timeout_ms / args.tick_ms).max(1),
    })
}

fn serve_replica(settings: Settings, args: &Args) -> ExitCode {
    let stdin = BufReader::new(io::stdin().lock());
    // Standard output is shared with the tick thread, so it is not locked
    // here; each input's lines go out in one write.
    let tick = Duration::from_millis(args.tick_ms);
    match pbft_node::runtime::serve(settings, tick, stdin, io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("stopping: {error}");
            ExitCode::FAILURE
        }
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
