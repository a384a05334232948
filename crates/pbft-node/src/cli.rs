//! The command line of `pbft-node`, checked in full when the process
//! starts: a flag the chosen mode would ignore, or a setting the replica
//! could not use, is refused at once with a message that names the flag.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use pbft_core::{ReplicaId, MAX_BATCH, MAX_WINDOW};

use crate::byzantine::Behaviour;
use crate::cluster::ClusterFile;
use crate::keys::KeyFile;
use crate::replica_node::{Auth, Settings};
use crate::tcp::Deployment;

/// The default `--tick-ms`.
pub const DEFAULT_TICK_MS: u64 = 10;

/// The default `--view-change-timeout-ms`.
pub const DEFAULT_VIEW_CHANGE_TIMEOUT_MS: u64 = 500;

/// The largest `--checkpoint-interval`: the log window is two intervals,
/// and at most [`MAX_WINDOW`] numbers.
pub const MAX_CHECKPOINT_INTERVAL: u64 = MAX_WINDOW / 2;

/// The largest `--max-batch-bytes`: a pre-prepare of such a batch stays
/// well inside the 16 MiB line the transport reads.
pub const MAX_BATCH_BYTES_FLAG: usize = 8 << 20;

/// A PBFT node speaking JSON lines on stdin and stdout.
///
/// With no flags it runs the embedded default: after `init` it hosts every
/// replica of `node_ids` in this process and answers clients as `node_id`.
/// Logs go to stderr; set RUST_LOG (for example RUST_LOG=debug) for more.
#[derive(Parser, Debug)]
#[command(name = "pbft-node", version, about, long_about)]
pub struct Args {
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
    /// Replica mode: the clients that sign their requests, a JSON object
    /// of client id to hex Ed25519 public key (format in
    /// docs/protocol.md). Their requests are ordered only with a valid
    /// signature; other clients are accepted unsigned.
    #[arg(long, env = "PBFT_CLIENT_KEYS", value_name = "FILE")]
    client_keys: Option<PathBuf>,
    /// Replica mode: milliseconds per tick of the core's clock.
    #[arg(long, default_value_t = DEFAULT_TICK_MS)]
    tick_ms: u64,
    /// Replica mode: how long a backup waits for a request to execute
    /// before it suspects the primary, in milliseconds (whole ticks).
    #[arg(long, default_value_t = DEFAULT_VIEW_CHANGE_TIMEOUT_MS)]
    view_change_timeout_ms: u64,
    /// Replica mode: take a checkpoint every this many sequence numbers
    /// (1 to 32768).
    #[arg(long, default_value_t = pbft_core::DEFAULT_CHECKPOINT_INTERVAL)]
    checkpoint_interval: u64,
    /// Replica mode: the most client requests the primary puts in one
    /// pre-prepare (1 to 4096).
    #[arg(long, default_value_t = pbft_core::DEFAULT_MAX_BATCH)]
    max_batch: usize,
    /// Replica mode: the most sequence numbers the primary keeps in flight
    /// before it holds requests back to batch them.
    #[arg(long, default_value_t = pbft_core::DEFAULT_MAX_IN_FLIGHT)]
    max_in_flight: u64,
    /// Replica mode: the largest client request accepted, in bytes of its
    /// client and operation with JSON escaping counted (plus 64); larger
    /// ones are refused with error 12. At most --max-batch-bytes.
    #[arg(long, default_value_t = pbft_core::DEFAULT_MAX_REQUEST_BYTES)]
    max_request_bytes: usize,
    /// Replica mode: the largest batch the primary proposes and a backup
    /// accepts, in the same bytes. At most 8 MiB, half the 16 MiB line.
    #[arg(long, default_value_t = pbft_core::DEFAULT_MAX_BATCH_BYTES)]
    max_batch_bytes: usize,
    /// TESTING AID ONLY: make this replica Byzantine towards its peers
    /// (silent, equivocate, bad-digest, forge-votes, stale-view or
    /// fabricate-certificate) or its clients (wrong-results), to test that
    /// the others survive it.
    #[arg(long, value_name = "BEHAVIOUR")]
    byzantine: Option<String>,
    /// Replica mode: keep the replica's records in this directory and
    /// start again from them after a crash (created if missing). Without
    /// it the replica keeps everything in memory, and one that restarts
    /// must catch up from the others: if more than f replicas restart at
    /// once, what they had agreed can be lost.
    #[arg(long, env = "PBFT_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// The flags only replica mode uses, by their clap ids.
const REPLICA_ONLY: [&str; 12] = [
    "keys",
    "auth",
    "client_keys",
    "tick_ms",
    "view_change_timeout_ms",
    "checkpoint_interval",
    "max_batch",
    "max_in_flight",
    "max_request_bytes",
    "max_batch_bytes",
    "byzantine",
    "data_dir",
];

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
    /// Writes one Ed25519 key file per replica into a directory, or with
    /// --client one client's key file.
    ///
    /// Each replica file, `<node>.keys.json`, holds that replica's secret
    /// key and every replica's public key (format in docs/protocol.md).
    /// Give each replica only its own file. A client's file,
    /// `<client>.client-key.json`, holds its secret key and public key; the
    /// public key, printed too, goes into the replicas' --client-keys
    /// table. With --addresses (and optionally --clients) it writes a whole
    /// deployment: the replica key files, one client key file per client,
    /// and `cluster.toml`, the public cluster file (members in order, their
    /// addresses and public keys, the clients' public keys and the
    /// protocol settings; format in docs/protocol.md). Existing files are
    /// never overwritten.
    Keygen {
        /// The replicas, in init order, comma-separated: n1,n2,n3,n4.
        #[arg(
            long,
            value_delimiter = ',',
            required_unless_present = "client",
            conflicts_with = "client"
        )]
        node_ids: Vec<String>,
        /// With --node-ids: the address each replica listens on, one
        /// `HOST:PORT` per node id in the same order, comma-separated; keygen
        /// then also writes the cluster file, `cluster.toml`.
        #[arg(
            long,
            value_delimiter = ',',
            requires = "node_ids",
            conflicts_with = "client"
        )]
        addresses: Vec<String>,
        /// With --addresses: the signing clients, comma-separated: c1,c2.
        /// Each gets a client key file, and its public key goes into
        /// `cluster.toml`.
        #[arg(
            long,
            value_delimiter = ',',
            requires = "addresses",
            conflicts_with = "client"
        )]
        clients: Vec<String>,
        /// Make a key for this client instead of replica keys.
        #[arg(long)]
        client: Option<String>,
        /// The directory to write the key files into (created if needed).
        #[arg(long)]
        out: PathBuf,
    },
    /// Runs one replica of a cluster over TCP.
    ///
    /// The cluster file (from `keygen --addresses`) names every member,
    /// its address and public key, the signing clients and the protocol
    /// settings; the key file names this replica. The replica listens on
    /// its own address in the cluster file, dials the members after it,
    /// and serves clients that connect with a key the cluster file lists.
    /// It runs until killed.
    Serve {
        /// The cluster file, `cluster.toml`.
        #[arg(long, value_name = "FILE")]
        cluster: PathBuf,
        /// This replica's key file, `<node>.keys.json`.
        #[arg(long, value_name = "FILE")]
        keys: PathBuf,
        /// Listen on this `HOST:PORT` instead of the member's address (for
        /// example `0.0.0.0:7000` behind a name other machines resolve).
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<String>,
        /// TESTING AID ONLY: make this replica Byzantine (see the same flag
        /// of replica mode).
        #[arg(long, value_name = "BEHAVIOUR")]
        byzantine: Option<String>,
        /// Keep the replica's records in this directory and start again
        /// from them after a crash (see the same flag of replica mode).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

/// What the process is to do, every setting checked.
#[derive(Debug)]
pub enum Plan {
    /// Write a key set.
    Keygen {
        /// The replicas.
        node_ids: Vec<String>,
        /// The directory.
        out: PathBuf,
    },
    /// Write a key set, client keys and the cluster file.
    KeygenCluster {
        /// The replicas, in order.
        node_ids: Vec<String>,
        /// Their addresses, in the same order.
        addresses: Vec<String>,
        /// The signing clients.
        clients: Vec<String>,
        /// The directory.
        out: PathBuf,
    },
    /// Write one client's key.
    KeygenClient {
        /// The client.
        client: String,
        /// The directory.
        out: PathBuf,
    },
    /// Serve one replica of a cluster file over TCP.
    Serve(Box<crate::tcp::Deployment>),
    /// Serve the embedded default.
    Embedded,
    /// Serve one replica.
    Replica {
        /// Its settings.
        settings: Settings,
        /// The wall time of one tick.
        tick: Duration,
    },
}

/// The parsed command line, and where each value came from.
pub struct CommandLine {
    args: Args,
    matches: ArgMatches,
}

impl CommandLine {
    /// Parses `argv` (its first item is the program's name). The error is
    /// clap's: usage, `--help` or `--version`, ready to print and exit with.
    pub fn parse_from<I, T>(argv: I) -> Result<CommandLine, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Args::command().try_get_matches_from(argv)?;
        let args = Args::from_arg_matches(&matches)?;
        Ok(CommandLine { args, matches })
    }

    /// Checks the command line as a whole and says what to run. The error
    /// names the flag at fault; replica mode also reads its key file here.
    pub fn plan(&self) -> Result<Plan, String> {
        let args = &self.args;
        if let Some(Command::Keygen {
            node_ids,
            addresses,
            clients,
            client,
            out,
        }) = &args.command
        {
            self.refuse_top_level_flags(
                "keygen takes only --node-ids (with --addresses and --clients) or --client, \
                 and --out, not",
            )?;
            return Ok(match client {
                Some(client) => Plan::KeygenClient {
                    client: client.clone(),
                    out: out.clone(),
                },
                None if !addresses.is_empty() => Plan::KeygenCluster {
                    node_ids: node_ids.clone(),
                    addresses: addresses.clone(),
                    clients: clients.clone(),
                    out: out.clone(),
                },
                None => Plan::Keygen {
                    node_ids: node_ids.clone(),
                    out: out.clone(),
                },
            });
        }
        if let Some(Command::Serve {
            cluster,
            keys,
            listen,
            byzantine,
            data_dir,
        }) = &args.command
        {
            self.refuse_top_level_flags(
                "serve takes its settings from the cluster file, not from",
            )?;
            let byzantine = parse_byzantine(byzantine.as_deref())?;
            let file = ClusterFile::load(cluster).map_err(|e| e.to_string())?;
            let key_file = KeyFile::load(keys).map_err(|e| e.to_string())?;
            let deployment =
                Deployment::check(file, cluster, key_file, listen.as_deref(), byzantine)?
                    .with_data_dir(data_dir.clone());
            if let Some(behaviour) = byzantine {
                log::warn!(
                    "TESTING AID: this replica is Byzantine ({behaviour}); never use in production"
                );
            }
            return Ok(Plan::Serve(Box::new(deployment)));
        }
        match args.mode {
            Mode::Embedded => {
                let given = self.given(&REPLICA_ONLY, true);
                if given.is_empty() {
                    Ok(Plan::Embedded)
                } else {
                    Err(format!(
                        "{} {} only to --mode replica; the embedded default hosts every \
                         replica in one process, with no clock, no signatures and the \
                         core's default settings",
                        given.join(", "),
                        if given.len() == 1 { "applies" } else { "apply" }
                    ))
                }
            }
            Mode::Replica => Ok(Plan::Replica {
                settings: replica_settings(args)?,
                tick: Duration::from_millis(args.tick_ms),
            }),
        }
    }

    /// Refuses the mode and replica-mode flags on the command line of a
    /// subcommand, which has its own: the error is `refusal` and the
    /// flags given.
    fn refuse_top_level_flags(&self, refusal: &str) -> Result<(), String> {
        let given = [
            self.given(&["mode"], false),
            self.given(&REPLICA_ONLY, false),
        ]
        .concat();
        if given.is_empty() {
            Ok(())
        } else {
            Err(format!("{refusal} {}", given.join(", ")))
        }
    }

    /// The flags among `ids` that the user set: on the command line, or
    /// also through their environment variable if `env` holds.
    fn given(&self, ids: &[&str], env: bool) -> Vec<String> {
        let command = Args::command();
        ids.iter()
            .filter_map(|id| {
                let source = self.matches.value_source(id)?;
                let arg = command.get_arguments().find(|a| a.get_id() == id)?;
                let flag = format!("--{}", arg.get_long().unwrap_or(id));
                match (source, arg.get_env()) {
                    (ValueSource::CommandLine, _) => Some(flag),
                    (ValueSource::EnvVariable, Some(var)) if env => {
                        Some(format!("{flag} (set by {})", var.to_string_lossy()))
                    }
                    _ => None,
                }
            })
            .collect()
    }
}

/// Checks replica mode's flags: authentication must be chosen knowingly,
/// and every setting must be one the replica can use.
fn replica_settings(args: &Args) -> Result<Settings, String> {
    if args.tick_ms == 0 {
        return Err("--tick-ms must be at least 1".to_string());
    }
    let view_change_timeout = view_change_ticks(args.view_change_timeout_ms, args.tick_ms)?;
    if !(1..=MAX_CHECKPOINT_INTERVAL).contains(&args.checkpoint_interval) {
        return Err(format!(
            "--checkpoint-interval {} is out of range: it must be 1 to \
             {MAX_CHECKPOINT_INTERVAL} (the log holds two intervals of numbers, at most \
             {MAX_WINDOW})",
            args.checkpoint_interval
        ));
    }
    if !(1..=MAX_BATCH).contains(&args.max_batch) {
        return Err(format!(
            "--max-batch {} is out of range: it must be 1 to {MAX_BATCH}",
            args.max_batch
        ));
    }
    if args.max_in_flight == 0 {
        return Err("--max-in-flight must be at least 1".to_string());
    }
    if !(1..=MAX_BATCH_BYTES_FLAG).contains(&args.max_batch_bytes) {
        return Err(format!(
            "--max-batch-bytes {} is out of range: it must be 1 to {MAX_BATCH_BYTES_FLAG} \
             (a pre-prepare of the batch must fit the 16 MiB line)",
            args.max_batch_bytes
        ));
    }
    if !(1..=args.max_batch_bytes).contains(&args.max_request_bytes) {
        return Err(format!(
            "--max-request-bytes {} is out of range: it must be 1 to --max-batch-bytes \
             ({}), so that any one request fits a batch",
            args.max_request_bytes, args.max_batch_bytes
        ));
    }
    let byzantine = parse_byzantine(args.byzantine.as_deref())?;
    let auth = match (&args.keys, args.auth) {
        (Some(_), Some(_)) => {
            return Err("give either --keys FILE or --auth none, not both".to_string())
        }
        (Some(path), None) => Auth::Keys(KeyFile::load(path).map_err(|e| e.to_string())?),
        (None, Some(AuthMode::None)) => Auth::None,
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
    let client_keys = match &args.client_keys {
        Some(path) => crate::client_keys::load(path).map_err(|e| format!("--client-keys: {e}"))?,
        None => Default::default(),
    };
    let settings = Settings {
        byzantine,
        client_keys,
        checkpoint_interval: args.checkpoint_interval,
        max_batch: args.max_batch,
        max_in_flight: args.max_in_flight,
        max_request_bytes: args.max_request_bytes,
        max_batch_bytes: args.max_batch_bytes,
        view_change_timeout,
        data_dir: args.data_dir.clone(),
        ..Settings::new(auth)
    };
    // What init will check again with the real cluster size; the checks
    // above should leave nothing for it to find.
    settings
        .config(1)
        .validate(ReplicaId(0))
        .map_err(|e| format!("these settings cannot be used: {e}"))?;
    if matches!(settings.auth, Auth::None) {
        log::warn!(
            "running WITHOUT authentication (--auth none): any sender can speak for any \
             replica; this is not safe against Byzantine peers"
        );
    }
    if let Some(behaviour) = byzantine {
        log::warn!("TESTING AID: this replica is Byzantine ({behaviour}); never use in production");
    }
    Ok(settings)
}

/// The `--byzantine` behaviour named, if one is.
fn parse_byzantine(name: Option<&str>) -> Result<Option<Behaviour>, String> {
    let Some(name) = name else {
        return Ok(None);
    };
    Behaviour::parse(name).map(Some).ok_or_else(|| {
        let names: Vec<&str> = Behaviour::EVERY.iter().map(|b| b.name()).collect();
        format!(
            "unknown --byzantine behaviour {name:?}: it is one of {}",
            names.join(", ")
        )
    })
}

/// The view-change timeout in ticks. Less than one tick is refused; a
/// timeout that is not a whole number of ticks is rounded down, with a
/// warning.
fn view_change_ticks(timeout_ms: u64, tick_ms: u64) -> Result<u64, String> {
    if timeout_ms < tick_ms {
        return Err(format!(
            "--view-change-timeout-ms {timeout_ms} is shorter than one tick (--tick-ms \
             {tick_ms}): it must be at least {tick_ms}"
        ));
    }
    let ticks = timeout_ms / tick_ms;
    if !timeout_ms.is_multiple_of(tick_ms) {
        log::warn!(
            "--view-change-timeout-ms {timeout_ms} is not a whole number of {tick_ms} ms \
             ticks: using {} ms ({ticks} ticks)",
            ticks * tick_ms
        );
    }
    Ok(ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(argv: &[&str]) -> Result<Plan, String> {
        let argv = std::iter::once("pbft-node").chain(argv.iter().copied());
        CommandLine::parse_from(argv)
            .map_err(|e| e.to_string())?
            .plan()
    }

    fn refusal(argv: &[&str]) -> String {
        match plan(argv) {
            Err(message) => message,
            Ok(plan) => panic!("{argv:?} was accepted: {plan:?}"),
        }
    }

    fn replica(argv: &[&str]) -> Settings {
        let argv = [&["--mode", "replica", "--auth", "none"][..], argv].concat();
        match plan(&argv) {
            Ok(Plan::Replica { settings, .. }) => settings,
            other => panic!("{argv:?}: {other:?}"),
        }
    }

    #[test]
    fn the_embedded_default_refuses_every_replica_flag_by_name() {
        assert!(matches!(plan(&[]), Ok(Plan::Embedded)));
        for (argv, flag) in [
            (&["--tick-ms", "0"][..], "--tick-ms"),
            (&["--checkpoint-interval", "1"], "--checkpoint-interval"),
            (
                &["--view-change-timeout-ms", "100"],
                "--view-change-timeout-ms",
            ),
            (&["--max-batch", "2"], "--max-batch"),
            (&["--max-in-flight", "2"], "--max-in-flight"),
            (&["--max-request-bytes", "1000"], "--max-request-bytes"),
            (&["--max-batch-bytes", "100000"], "--max-batch-bytes"),
            (&["--byzantine", "silent"], "--byzantine"),
            (&["--auth", "none"], "--auth"),
            (&["--keys", "n1.keys.json"], "--keys"),
            (&["--client-keys", "clients.json"], "--client-keys"),
        ] {
            let message = refusal(argv);
            assert!(
                message.contains(flag) && message.contains("--mode replica"),
                "{message}"
            );
        }
        let message = refusal(&["--tick-ms", "5", "--max-batch", "2"]);
        assert!(
            message.starts_with("--tick-ms, --max-batch apply"),
            "{message}"
        );
    }

    #[test]
    fn keygen_with_addresses_plans_a_cluster() {
        let argv = [
            "keygen",
            "--node-ids",
            "n1,n2",
            "--addresses",
            "a:1,b:2",
            "--clients",
            "c1",
            "--out",
            "d",
        ];
        match plan(&argv) {
            Ok(Plan::KeygenCluster {
                node_ids,
                addresses,
                clients,
                ..
            }) => {
                assert_eq!((node_ids.len(), addresses.len()), (2, 2));
                assert_eq!(clients, ["c1"]);
            }
            other => panic!("{other:?}"),
        }
        // --addresses belongs with --node-ids, not with --client.
        assert!(plan(&[
            "keygen",
            "--client",
            "c1",
            "--addresses",
            "a:1",
            "--out",
            "d"
        ])
        .is_err());
        let message = refusal(&[&["--tick-ms", "5"][..], &argv].concat());
        assert!(message.contains("--tick-ms"), "{message}");
    }

    #[test]
    fn keygen_takes_only_its_own_flags() {
        let keygen = ["keygen", "--node-ids", "n1", "--out", "keys"];
        assert!(matches!(plan(&keygen), Ok(Plan::Keygen { .. })));
        let message = refusal(&[&["--tick-ms", "5"][..], &keygen].concat());
        assert!(message.contains("--tick-ms"), "{message}");
        let client = ["keygen", "--client", "c1", "--out", "keys"];
        assert!(matches!(
            plan(&client),
            Ok(Plan::KeygenClient { client, .. }) if client == "c1"
        ));
        let message = refusal(&[&["--client-keys", "clients.json"][..], &client].concat());
        assert!(message.contains("--client-keys"), "{message}");
        let message = refusal(&["keygen", "--client", "c1", "--node-ids", "n1", "--out", "k"]);
        assert!(
            message.contains("--client") && message.contains("--node-ids"),
            "{message}"
        );
    }

    #[test]
    fn a_client_key_table_that_cannot_be_read_names_its_flag() {
        let message = refusal(&[
            "--mode",
            "replica",
            "--auth",
            "none",
            "--client-keys",
            "no/such/clients.json",
        ]);
        assert!(
            message.starts_with("--client-keys: cannot read client keys"),
            "{message}"
        );
        assert!(message.contains("no/such/clients.json"), "{message}");
    }

    #[test]
    fn the_checkpoint_interval_is_checked_at_startup_in_its_own_terms() {
        for k in ["0", "32769", "18446744073709551615"] {
            let message = refusal(&[
                "--mode",
                "replica",
                "--auth",
                "none",
                "--checkpoint-interval",
                k,
            ]);
            assert!(
                message.starts_with(&format!("--checkpoint-interval {k} is out of range")),
                "{message}"
            );
            assert!(message.contains("1 to 32768"), "{message}");
        }
        assert_eq!(
            replica(&["--checkpoint-interval", "32768"]).checkpoint_interval,
            32768
        );
        assert_eq!(
            replica(&["--checkpoint-interval", "1"]).checkpoint_interval,
            1
        );
    }

    #[test]
    fn the_view_change_timeout_is_at_least_one_tick() {
        for (timeout, tick) in [("0", "10"), ("9", "10"), ("0", "1")] {
            let message = refusal(&[
                "--mode",
                "replica",
                "--auth",
                "none",
                "--view-change-timeout-ms",
                timeout,
                "--tick-ms",
                tick,
            ]);
            assert!(
                message.starts_with(&format!(
                    "--view-change-timeout-ms {timeout} is shorter than one tick"
                )),
                "{message}"
            );
        }
        let ticks = |ms: &str, tick: &str| {
            replica(&["--view-change-timeout-ms", ms, "--tick-ms", tick]).view_change_timeout
        };
        assert_eq!(ticks("10", "10"), 1);
        assert_eq!(ticks("25", "10"), 2, "rounded down, with a warning");
        assert_eq!(
            replica(&[]).view_change_timeout,
            50,
            "500 ms of 10 ms ticks"
        );
    }

    #[test]
    fn other_settings_name_their_flag() {
        let base = ["--mode", "replica", "--auth", "none"];
        for (argv, start) in [
            (&["--tick-ms", "0"][..], "--tick-ms must be"),
            (&["--max-batch", "0"], "--max-batch 0 is out of range"),
            (&["--max-batch", "4097"], "--max-batch 4097 is out of range"),
            (&["--max-in-flight", "0"], "--max-in-flight must be"),
            (
                &["--max-batch-bytes", "0"],
                "--max-batch-bytes 0 is out of range",
            ),
            (
                &["--max-batch-bytes", "8388609"],
                "--max-batch-bytes 8388609 is out of range",
            ),
            (
                &["--max-request-bytes", "0"],
                "--max-request-bytes 0 is out of range",
            ),
            (
                &["--max-request-bytes", "2000", "--max-batch-bytes", "1000"],
                "--max-request-bytes 2000 is out of range",
            ),
            (
                &["--byzantine", "loud"],
                "unknown --byzantine behaviour \"loud\"",
            ),
        ] {
            let message = refusal(&[&base[..], argv].concat());
            assert!(message.starts_with(start), "{message}");
        }
        let message = refusal(&["--mode", "replica"]);
        assert!(message.contains("--auth none"), "{message}");
    }

    #[test]
    fn the_size_limits_reach_the_replica() {
        let defaults = replica(&[]);
        assert_eq!(
            defaults.max_request_bytes,
            pbft_core::DEFAULT_MAX_REQUEST_BYTES
        );
        assert_eq!(defaults.max_batch_bytes, pbft_core::DEFAULT_MAX_BATCH_BYTES);
        let set = replica(&["--max-request-bytes", "1000", "--max-batch-bytes", "1000"]);
        assert_eq!((set.max_request_bytes, set.max_batch_bytes), (1000, 1000));
        let largest = replica(&["--max-batch-bytes", "8388608"]);
        assert_eq!(largest.max_batch_bytes, MAX_BATCH_BYTES_FLAG);
    }

    #[test]
    fn default_settings_are_the_flags_defaults() {
        let parsed = replica(&[]);
        let built = Settings::new(Auth::None);
        assert_eq!(format!("{built:?}"), format!("{parsed:?}"));
    }

    #[test]
    fn every_byzantine_behaviour_is_accepted_by_its_name() {
        for behaviour in Behaviour::EVERY {
            let settings = replica(&["--byzantine", behaviour.name()]);
            assert_eq!(settings.byzantine, Some(behaviour));
        }
    }
}
