//! `pbft-node`: see the crate documentation of the `pbft_node` library.

use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use pbft_node::cli::{CommandLine, Plan};
use pbft_node::replica_node::Settings;

fn main() -> ExitCode {
    let command_line = CommandLine::parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit());
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .target(env_logger::Target::Stderr)
        .init();
    match command_line.plan() {
        Ok(Plan::Keygen { node_ids, out }) => keygen(&node_ids, out),
        Ok(Plan::KeygenCluster {
            node_ids,
            addresses,
            clients,
            out,
        }) => keygen_cluster(&node_ids, &addresses, &clients, &out),
        Ok(Plan::KeygenClient { client, out }) => keygen_client(&client, &out),
        Ok(Plan::Embedded) => serve(),
        Ok(Plan::Replica { settings, tick }) => serve_replica(settings, tick),
        Ok(Plan::Serve(deployment)) => serve_tcp(*deployment),
        Err(message) => {
            eprintln!("pbft-node: {message}");
            ExitCode::from(2)
        }
    }
}

fn serve_replica(settings: Settings, tick: Duration) -> ExitCode {
    let stdin = BufReader::new(io::stdin().lock());
    // Standard output is shared with the tick thread, so it is not locked
    // here; each input's lines go out in one write.
    match pbft_node::runtime::serve(settings, tick, stdin, io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("stopping: {error}");
            ExitCode::FAILURE
        }
    }
}

fn serve_tcp(deployment: pbft_node::tcp::Deployment) -> ExitCode {
    match pbft_node::tcp::serve(deployment, pbft_net::NetConfig::default()) {
        Ok(()) => ExitCode::SUCCESS,
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

fn keygen_client(client: &str, out: &Path) -> ExitCode {
    let result = pbft_node::keys::check_node_ids(&[client.to_string()])
        .and_then(|()| pbft_node::client_keys::generate(client))
        .and_then(|(text, public)| {
            pbft_node::client_keys::write(out, client, &text)
                .map(|path| (path, public))
                .map_err(|e| e.to_string())
        });
    match result {
        Ok((path, public)) => {
            println!("{}", path.display());
            println!("{{\"{client}\": \"{public}\"}}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("pbft-node keygen: {error}");
            ExitCode::FAILURE
        }
    }
}

fn keygen(node_ids: &[String], out: PathBuf) -> ExitCode {
    let result = pbft_node::keys::check_node_ids(node_ids)
        .and_then(|()| pbft_node::keys::generate(node_ids))
        .and_then(|files| pbft_node::keys::write_set(&out, &files).map_err(|e| e.to_string()));
    report_written(result)
}

fn keygen_cluster(
    node_ids: &[String],
    addresses: &[String],
    clients: &[String],
    out: &Path,
) -> ExitCode {
    report_written(pbft_node::deploy::write(node_ids, addresses, clients, out))
}

/// Prints the files keygen wrote, one per line, or its error.
fn report_written(result: Result<Vec<PathBuf>, String>) -> ExitCode {
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
