//! The cluster file, `cluster.toml`: the public description of a deployed
//! cluster that every replica and client is given. It lists the members in
//! order (their index is their `ReplicaId`), the address each listens on,
//! every replica's and signing client's public key, and the protocol
//! settings the replicas must agree on. It holds no secret.
//!
//! ```toml
//! version = 1
//!
//! [protocol]
//! checkpoint_interval = 128
//! # ... every setting of [`Protocol`]
//!
//! [[members]]
//! id = "n1"
//! address = "10.0.0.1:7000"
//! public_key = "<64 hex characters>"
//!
//! [[clients]]
//! id = "c1"
//! public_key = "<64 hex characters>"
//! ```
//!
//! `pbft-node keygen --node-ids ... --addresses ...` writes one
//! ([`write_new`], with the settings of [`Protocol::default`]);
//! [`ClusterFile::load`] reads and checks one. Every problem is a
//! [`ClusterFileError`] that names the file and what is wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use std::net::{SocketAddr, ToSocketAddrs};

use pbft_core::{hex, ClientId, Config, Ed25519Auth, ReplicaId};
use pbft_net::{ReplicaEntry, Roster};
use serde::{Deserialize, Serialize};

use crate::cli::{DEFAULT_TICK_MS, DEFAULT_VIEW_CHANGE_TIMEOUT_MS};
use crate::replica_node::{Auth, Settings};

/// The `version` of the cluster files this version reads and writes.
pub const VERSION: u32 = 1;

/// The name of the cluster file keygen writes.
pub const FILE_NAME: &str = "cluster.toml";

/// The protocol settings every replica of a cluster must agree on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    /// Milliseconds per tick of the core's clock.
    pub tick_ms: u64,
    /// How long a backup waits for a request to execute before it
    /// suspects the primary, in milliseconds (§4.4).
    pub view_change_timeout_ms: u64,
    /// `K`: a checkpoint every this many sequence numbers (§4.3).
    pub checkpoint_interval: u64,
    /// `L`: the log window, a multiple of `K`.
    pub window: u64,
    /// The most requests in one pre-prepare (§5.1).
    pub max_batch: usize,
    /// The most sequence numbers the primary keeps in flight.
    pub max_in_flight: u64,
    /// The largest client request, in `Request::size` bytes.
    pub max_request_bytes: usize,
    /// The largest batch, in `Batch::size` bytes.
    pub max_batch_bytes: usize,
    /// The size of the chunks a checkpoint's state is cut into.
    pub state_chunk_bytes: usize,
    /// How far ahead of its client's last timestamp a request may be.
    pub max_timestamp_gap: u64,
}

impl Default for Protocol {
    /// The node's defaults: those of its replica-mode flags, and the
    /// core's for the settings that have no flag.
    fn default() -> Protocol {
        let core = Config::new(1);
        Protocol {
            tick_ms: DEFAULT_TICK_MS,
            view_change_timeout_ms: DEFAULT_VIEW_CHANGE_TIMEOUT_MS,
            checkpoint_interval: core.checkpoint_interval,
            window: core.window,
            max_batch: core.max_batch,
            max_in_flight: core.max_in_flight,
            max_request_bytes: core.max_request_bytes,
            max_batch_bytes: core.max_batch_bytes,
            state_chunk_bytes: core.state_chunk_bytes,
            max_timestamp_gap: core.max_timestamp_gap,
        }
    }
}

impl Protocol {
    /// The replica-mode settings these protocol settings make, with peers
    /// authenticated by `auth` (and no signing clients: see
    /// [`ClusterFile::client_keys`]).
    pub fn settings(&self, auth: Auth) -> Settings {
        Settings {
            checkpoint_interval: self.checkpoint_interval,
            window: Some(self.window),
            view_change_timeout: self.view_change_timeout_ms / self.tick_ms.max(1),
            max_batch: self.max_batch,
            max_in_flight: self.max_in_flight,
            max_request_bytes: self.max_request_bytes,
            max_batch_bytes: self.max_batch_bytes,
            state_chunk_bytes: self.state_chunk_bytes,
            max_timestamp_gap: self.max_timestamp_gap,
            ..Settings::new(auth)
        }
    }

    /// The core's configuration for `n` replicas with these settings.
    pub fn config(&self, n: usize) -> Config {
        self.settings(Auth::None).config(n)
    }
}

/// One replica of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its node id.
    pub id: String,
    /// The `HOST:PORT` it listens on.
    pub address: String,
    /// Its Ed25519 public key.
    pub public_key: [u8; 32],
}

/// A loaded, checked cluster file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterFile {
    /// The replicas, in order: the `i`-th is `ReplicaId(i)`.
    pub members: Vec<Member>,
    /// The signing clients' public keys, by client id.
    pub clients: BTreeMap<String, [u8; 32]>,
    /// The protocol settings.
    pub protocol: Protocol,
}

/// What is wrong with a cluster file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for ClusterFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cluster file {}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for ClusterFileError {}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    version: u32,
    protocol: Protocol,
    members: Vec<MemberOnDisk>,
    #[serde(default)]
    clients: Vec<ClientOnDisk>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberOnDisk {
    id: String,
    address: String,
    public_key: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientOnDisk {
    id: String,
    public_key: String,
}

impl ClusterFile {
    /// Reads and checks the cluster file at `path`.
    pub fn load(path: &Path) -> Result<ClusterFile, ClusterFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| ClusterFileError {
            path: path.to_path_buf(),
            problem: format!("cannot read it: {e}"),
        })?;
        ClusterFile::parse(&text, path)
    }

    /// Checks the text of a cluster file read from `path`: its version,
    /// that member and client ids are distinct and usable, every address
    /// is a distinct `HOST:PORT`, every key is a valid Ed25519 public key
    /// in hex, and the protocol settings are ones a replica can use.
    pub fn parse(text: &str, path: &Path) -> Result<ClusterFile, ClusterFileError> {
        let fail = |problem: String| ClusterFileError {
            path: path.to_path_buf(),
            problem,
        };
        // The version first, so that a future format is named as such.
        let version = toml::from_str::<toml::Table>(text)
            .map_err(|e| fail(format!("not TOML: {e}")))?
            .get("version")
            .cloned();
        match version {
            Some(toml::Value::Integer(v)) if v == i64::from(VERSION) => {}
            Some(v) => {
                return Err(fail(format!(
                    "version {v} is not supported; this version reads {VERSION}"
                )))
            }
            None => return Err(fail("version is missing".into())),
        }
        let disk: OnDisk = toml::from_str(text).map_err(|e| fail(e.message().to_string()))?;
        let ids: Vec<String> = disk.members.iter().map(|m| m.id.clone()).collect();
        check_ids("member", &ids).map_err(&fail)?;
        let addresses: Vec<String> = disk.members.iter().map(|m| m.address.clone()).collect();
        check_addresses(&addresses).map_err(&fail)?;
        let mut members = Vec::with_capacity(disk.members.len());
        for member in disk.members {
            let public_key = public_key(&member.public_key)
                .map_err(|e| fail(format!("the public key of member {:?} {e}", member.id)))?;
            members.push(Member {
                id: member.id,
                address: member.address,
                public_key,
            });
        }
        let client_ids: Vec<String> = disk.clients.iter().map(|c| c.id.clone()).collect();
        check_clients(&ids, &client_ids).map_err(&fail)?;
        let mut clients = BTreeMap::new();
        for client in disk.clients {
            let key = public_key(&client.public_key)
                .map_err(|e| fail(format!("the public key of client {:?} {e}", client.id)))?;
            clients.insert(client.id, key);
        }
        let protocol = disk.protocol;
        if protocol.tick_ms == 0
            || protocol.view_change_timeout_ms < protocol.tick_ms
            || !protocol
                .view_change_timeout_ms
                .is_multiple_of(protocol.tick_ms)
        {
            return Err(fail(format!(
                "protocol: view_change_timeout_ms {} must be a whole number of ticks of \
                 tick_ms {}, at least one",
                protocol.view_change_timeout_ms, protocol.tick_ms
            )));
        }
        protocol
            .config(members.len())
            .validate(ReplicaId(0))
            .map_err(|e| fail(format!("protocol: {e}")))?;
        Ok(ClusterFile {
            members,
            clients,
            protocol,
        })
    }
}

impl ClusterFile {
    /// Every member's address, resolved to the first socket address its
    /// `HOST:PORT` gives, in member order.
    pub fn resolve(&self) -> Result<Vec<SocketAddr>, String> {
        self.members
            .iter()
            .map(|m| {
                m.address
                    .to_socket_addrs()
                    .map_err(|e| e.to_string())
                    .and_then(|mut a| a.next().ok_or_else(|| "no address".to_string()))
                    .map_err(|e| {
                        format!(
                            "cannot resolve {:?}, the address of member {:?}: {e}",
                            m.address, m.id
                        )
                    })
            })
            .collect()
    }

    /// The signing clients' public keys, as the core and the transport
    /// take them.
    pub fn client_keys(&self) -> BTreeMap<ClientId, [u8; 32]> {
        self.clients
            .iter()
            .map(|(id, key)| (ClientId::from(id.as_str()), *key))
            .collect()
    }

    /// Who the transport admits: every member at its address in
    /// `addresses` (from [`ClusterFile::resolve`]), and every signing
    /// client.
    pub fn roster(&self, addresses: &[SocketAddr]) -> Result<Roster, String> {
        let replicas = self
            .members
            .iter()
            .zip(addresses)
            .map(|(m, addr)| ReplicaEntry {
                name: m.id.clone(),
                addr: *addr,
                public_key: m.public_key,
            })
            .collect();
        Roster::new(replicas, self.client_keys()).map_err(|e| e.to_string())
    }
}

fn public_key(text: &str) -> Result<[u8; 32], String> {
    let key: [u8; 32] = hex::parse(text).map_err(|e| format!("is invalid: {e}"))?;
    if !Ed25519Auth::is_valid_public_key(&key) {
        return Err("is not a valid Ed25519 public key".into());
    }
    Ok(key)
}

/// Checks that `ids`, of the given `kind` (`member` or `client`), are
/// there, distinct and usable as file names.
fn check_ids(kind: &str, ids: &[String]) -> Result<(), String> {
    if ids.is_empty() {
        return match kind {
            "client" => Ok(()),
            _ => Err(format!("there are no {kind}s")),
        };
    }
    let mut seen = BTreeSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(format!("{kind} id {id:?} appears twice"));
        }
    }
    crate::keys::check_node_ids(ids)
}

/// Checks the signing clients' ids: distinct, usable, and none a member's.
fn check_clients(members: &[String], clients: &[String]) -> Result<(), String> {
    check_ids("client", clients)?;
    if let Some(id) = clients.iter().find(|c| members.contains(c)) {
        return Err(format!("client id {id:?} is also a member's id"));
    }
    Ok(())
}

/// Checks one address: `HOST:PORT`, the host a name, an IPv4 address or
/// an IPv6 one in brackets, the port 1 to 65535.
fn check_address(address: &str) -> Result<(), String> {
    let bad = |why: &str| format!("address {address:?} is not HOST:PORT: {why}");
    let (host, port) = address.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    match port.parse::<u16>() {
        Ok(p) if p > 0 => {}
        _ => return Err(bad("the port must be 1 to 65535")),
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(|| bad("unclosed '['"))?;
        inner
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| bad("not an IPv6 address in brackets"))?;
        return Ok(());
    }
    let usable = !host.is_empty()
        && !host.starts_with(['-', '.'])
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
    if !usable {
        return Err(bad("the host must be a name or an IP address"));
    }
    Ok(())
}

/// Checks that every address is a `HOST:PORT` and that no two are the same
/// (host names compared without case).
fn check_addresses(addresses: &[String]) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for address in addresses {
        check_address(address)?;
        if !seen.insert(address.to_ascii_lowercase()) {
            return Err(format!("address {address:?} appears twice"));
        }
    }
    Ok(())
}

/// Checks what `keygen --node-ids --addresses --clients` was given: one
/// distinct `HOST:PORT` per distinct node id, and distinct client ids that
/// are not node ids. The error names the offending value.
pub fn check_layout(
    node_ids: &[String],
    addresses: &[String],
    clients: &[String],
) -> Result<(), String> {
    check_ids("node", node_ids)?;
    if addresses.len() != node_ids.len() {
        return Err(format!(
            "--addresses has {} addresses ({}) for {} node ids ({}): give one HOST:PORT \
             per node id, in the same order",
            addresses.len(),
            addresses.join(","),
            node_ids.len(),
            node_ids.join(",")
        ));
    }
    check_addresses(addresses)?;
    check_clients(node_ids, clients)
}

/// The text of a new cluster file for `members` (id, address, public key)
/// and `clients` (id, public key), with `protocol`.
pub fn render(
    members: &[Member],
    clients: &[(String, [u8; 32])],
    protocol: &Protocol,
) -> Result<String, String> {
    let disk = OnDisk {
        version: VERSION,
        protocol: protocol.clone(),
        members: members
            .iter()
            .map(|m| MemberOnDisk {
                id: m.id.clone(),
                address: m.address.clone(),
                public_key: hex::encode(&m.public_key),
            })
            .collect(),
        clients: clients
            .iter()
            .map(|(id, key)| ClientOnDisk {
                id: id.clone(),
                public_key: hex::encode(key),
            })
            .collect(),
    };
    toml::to_string(&disk).map_err(|e| e.to_string())
}

/// Writes `text` as a new file at `path`; refuses to overwrite one.
pub fn write_new(path: &Path, text: &str) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create {}: {e}; not overwriting", path.display()),
            )
        })?;
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> [u8; 32] {
        Ed25519Auth::public_key([seed; 32])
    }

    fn valid() -> String {
        let members: Vec<Member> = (1..=4)
            .map(|i| Member {
                id: format!("n{i}"),
                address: format!("10.0.0.{i}:7000"),
                public_key: key(i),
            })
            .collect();
        render(&members, &[("c1".into(), key(9))], &Protocol::default()).expect("renders")
    }

    fn problem(text: &str) -> String {
        match ClusterFile::parse(text, Path::new("x/cluster.toml")) {
            Err(e) => {
                let shown = e.to_string();
                assert!(
                    shown.starts_with("cluster file x/cluster.toml: "),
                    "{shown}"
                );
                e.problem
            }
            Ok(file) => panic!("accepted: {file:?}"),
        }
    }

    #[test]
    fn a_rendered_file_loads_back_as_written() {
        let file = ClusterFile::parse(&valid(), Path::new("cluster.toml")).expect("loads");
        let ids: Vec<&str> = file.members.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["n1", "n2", "n3", "n4"]);
        assert_eq!(file.members[2].address, "10.0.0.3:7000");
        assert_eq!(file.members[2].public_key, key(3));
        assert_eq!(file.clients.get("c1"), Some(&key(9)));
        assert_eq!(file.protocol, Protocol::default());
    }

    #[test]
    fn the_default_protocol_is_the_nodes_defaults() {
        let protocol = Protocol::default();
        assert_eq!(protocol.tick_ms, DEFAULT_TICK_MS);
        assert_eq!(
            protocol.view_change_timeout_ms,
            DEFAULT_VIEW_CHANGE_TIMEOUT_MS
        );
        assert_eq!(
            protocol.checkpoint_interval,
            pbft_core::DEFAULT_CHECKPOINT_INTERVAL
        );
        assert_eq!(
            protocol.state_chunk_bytes,
            pbft_core::DEFAULT_STATE_CHUNK_BYTES
        );
        assert!(protocol.config(4).validate(ReplicaId(0)).is_ok());
    }

    #[test]
    fn another_version_is_named() {
        let text = valid().replace("version = 1", "version = 2");
        assert!(problem(&text).contains("version 2 is not supported"));
        let text = valid().replace("version = 1\n", "");
        assert!(problem(&text).contains("version is missing"));
    }

    #[test]
    fn a_cluster_needs_members() {
        let text = format!(
            "version = 1\nmembers = []\n[protocol]\n{}",
            valid()
                .split("[protocol]\n")
                .nth(1)
                .and_then(|rest| rest.split("[[members]]").next())
                .expect("a protocol table")
        );
        assert_eq!(problem(&text), "there are no members");
        let text = valid().replace("[[members]]", "[[member]]");
        assert!(problem(&text).contains("member"), "{}", problem(&text));
    }

    #[test]
    fn an_unknown_field_is_named() {
        let text = valid().replace("[[members]]\n", "[[members]]\nweight = 3\n");
        assert!(problem(&text).contains("weight"), "{}", problem(&text));
        let text = valid().replace("version = 1\n", "version = 1\nleader = \"n1\"\n");
        assert!(problem(&text).contains("leader"), "{}", problem(&text));
    }

    #[test]
    fn duplicate_members_and_addresses_are_named() {
        let text = valid().replace("id = \"n2\"", "id = \"n1\"");
        assert!(
            problem(&text).contains("\"n1\" appears twice"),
            "{}",
            problem(&text)
        );
        let text = valid().replace("10.0.0.2:7000", "10.0.0.1:7000");
        assert!(
            problem(&text).contains("address \"10.0.0.1:7000\" appears twice"),
            "{}",
            problem(&text)
        );
        let text = valid().replace("id = \"c1\"", "id = \"n3\"");
        assert!(
            problem(&text).contains("\"n3\" is also a member"),
            "{}",
            problem(&text)
        );
    }

    #[test]
    fn bad_addresses_and_keys_are_named() {
        let text = valid().replace("10.0.0.2:7000", "10.0.0.2");
        assert!(problem(&text).contains("\"10.0.0.2\" is not HOST:PORT"));
        let text = valid().replace("10.0.0.2:7000", "10.0.0.2:99999");
        assert!(problem(&text).contains("\"10.0.0.2:99999\""));
        let hex = hex::encode(&key(2));
        let text = valid().replace(&hex, "zz");
        assert!(
            problem(&text).contains("public key of member \"n2\" is invalid"),
            "{}",
            problem(&text)
        );
        let hex = hex::encode(&key(9));
        let text = valid().replace(&hex, &"0".repeat(63));
        assert!(
            problem(&text).contains("client \"c1\""),
            "{}",
            problem(&text)
        );
    }

    #[test]
    fn unusable_protocol_settings_are_named() {
        let text = valid().replace("max_batch = 256", "max_batch = 0");
        assert!(
            problem(&text).starts_with("protocol:"),
            "{}",
            problem(&text)
        );
        let text = valid().replace("tick_ms = 10", "tick_ms = 0");
        assert!(problem(&text).contains("tick_ms 0"), "{}", problem(&text));
        let text = valid().replace("tick_ms = 10", "tick_ms = 7");
        assert!(
            problem(&text).contains("whole number"),
            "{}",
            problem(&text)
        );
    }

    #[test]
    fn the_layout_keygen_is_given_is_checked_by_value() {
        let ids = |s: &str| s.split(',').map(String::from).collect::<Vec<_>>();
        let nodes = ids("n1,n2");
        assert!(check_layout(&nodes, &ids("a:1,b:2"), &ids("c1")).is_ok());
        let e = check_layout(&nodes, &ids("a:1"), &[]).unwrap_err();
        assert!(e.contains("1 addresses (a:1) for 2 node ids"), "{e}");
        let e = check_layout(&nodes, &ids("a:1,b"), &[]).unwrap_err();
        assert!(e.contains("\"b\""), "{e}");
        let e = check_layout(&nodes, &ids("a:1,A:1"), &[]).unwrap_err();
        assert!(e.contains("\"A:1\" appears twice"), "{e}");
        let e = check_layout(&ids("n1,n1"), &ids("a:1,b:2"), &[]).unwrap_err();
        assert!(e.contains("\"n1\" appears twice"), "{e}");
        let e = check_layout(&nodes, &ids("a:1,b:2"), &ids("c1,c1")).unwrap_err();
        assert!(e.contains("\"c1\" appears twice"), "{e}");
        assert_eq!(check_layout(&nodes, &ids("[::1]:7,b:2"), &[]), Ok(()));
    }
}
