//! A whole deployment on disk, as `pbft-node keygen --node-ids ...
//! --addresses ... --clients ...` writes it: one key file per replica, one
//! per client, and the cluster file.

use std::path::{Path, PathBuf};

use crate::cluster::{self, Member, Protocol};

/// Writes the replica key files, the client key files and the cluster
/// file, having checked first that none of them exists.
pub fn write(
    node_ids: &[String],
    addresses: &[String],
    clients: &[String],
    out: &Path,
) -> Result<Vec<PathBuf>, String> {
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
    let files = crate::keys::generate(node_ids)?;
    let mut members = Vec::with_capacity(files.len());
    for ((node, text), address) in files.iter().zip(addresses) {
        let path = out.join(format!("{node}.keys.json"));
        let key = crate::keys::KeyFile::parse(text, &path).map_err(|e| e.to_string())?;
        members.push(Member {
            id: node.clone(),
            address: address.clone(),
            public_key: key.public_key(),
        });
    }
    let mut client_files = Vec::with_capacity(clients.len());
    let mut client_keys = Vec::with_capacity(clients.len());
    for client in clients {
        let (text, public) = crate::client_keys::generate(client)?;
        let key = pbft_core::hex::parse(&public).map_err(|e| e.to_string())?;
        client_keys.push((client.clone(), key));
        client_files.push(text);
    }
    let text = cluster::render(&members, &client_keys, &Protocol::default())?;
    let mut written = crate::keys::write_set(out, &files).map_err(|e| e.to_string())?;
    for (client, text) in clients.iter().zip(&client_files) {
        written.push(crate::client_keys::write(out, client, text).map_err(|e| e.to_string())?);
    }
    cluster::write_new(&cluster_path, &text).map_err(|e| e.to_string())?;
    written.push(cluster_path);
    Ok(written)
}
