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
    report_written(write_cluster(node_ids, addresses, clients, out))
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

/// Writes the replica key files, the client key files and the cluster
/// file, having checked first that none of them exists.
fn write_cluster(
    node_ids: &[String],
    addresses: &[String],
    clients: &[String],
    out: &Path,
) -> Result<Vec<PathBuf>, String> {
    use pbft_node::cluster::{self, Member, Protocol};
    cluster::check_layout(node_ids, addresses, clients)?;
    let cluster_path = out.join(cluster::FILE_NAME);
    let client_paths: Vec<PathBuf> = clients
        .iter()
        .map(|c| out.join(format!("{c}.client-key.json")))
        .collect();
    let node_paths = node_ids.iter().map(|n| out.join(format!("{n}.keys.json")));
    // Every name is checked before any is written, so that a refusal
    // leaves no partial deployment behind.
    let taken = std::iter::once(cluster_path.clone())
        .chain(client_paths.iter().cloned())
        .chain(node_paths)
        .find(|p| p.exists());
    if let Some(path) = taken {
        return Err(format!(
            "{} already exists; not overwriting keys",
            path.display()
        ));
    }
    let files = pbft_node::keys::generate(node_ids)?;
    let mut members = Vec::with_capacity(files.len());
    for ((node, text), address) in files.iter().zip(addresses) {
        let path = out.join(format!("{node}.keys.json"));
        let key = pbft_node::keys::KeyFile::parse(text, &path).map_err(|e| e.to_string())?;
        members.push(Member {
            id: node.clone(),
            address: address.clone(),
            public_key: key.public_key(),
        });
    }
    let mut client_files = Vec::with_capacity(clients.len());
    let mut client_keys = Vec::with_capacity(clients.len());
    for client in clients {
        let (text, public) = pbft_node::client_keys::generate(client)?;
        let key = pbft_core::hex::parse(&public).map_err(|e| e.to_string())?;
        client_keys.push((client.clone(), key));
        client_files.push(text);
    }
    let text = cluster::render(&members, &client_keys, &Protocol::default())?;
    let mut written = pbft_node::keys::write_set(out, &files).map_err(|e| e.to_string())?;
    for (client, text) in clients.iter().zip(&client_files) {
        written.push(pbft_node::client_keys::write(out, client, text).map_err(|e| e.to_string())?);
    }
    cluster::write_new(&cluster_path, &text).map_err(|e| e.to_string())?;
    written.push(cluster_path);
    Ok(written)
}
