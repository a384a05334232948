//! `pbft-node serve`: one replica of a deployed cluster, over TCP.
//!
//! The cluster file (see [`cluster`](crate::cluster)) names the members,
//! their addresses and public keys, the signing clients and the protocol
//! settings; the key file holds this replica's secret key. Both are
//! checked against each other before anything listens ([`Deployment::check`]).
//! The replica then runs the same loop as replica mode over stdio
//! ([`runtime::drive`]), with the transport of `pbft-net` as its source
//! and sink: a message arrives with a sender the handshake proved, and the
//! envelope inside must name that sender as its `src`.
//!
//! Each frame's payload is one JSON envelope, the same text replica mode
//! reads and writes as a line (docs/protocol.md, "Messages over TCP").

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use crossbeam_channel::Receiver;
use log::{debug, info, warn};
use pbft_core::{ClientId, ReplicaId};
use pbft_net::{Event, Identity, NetConfig, PeerId, SendError, Transport};
use pbft_wire::Envelope;

use crate::byzantine::Behaviour;
use crate::cluster::ClusterFile;
use crate::keys::KeyFile;
use crate::replica_node::{Auth, ReplicaNode, Settings};
use crate::runtime::{self, Incoming, Sink, Source};

/// One replica of a cluster file, checked and ready to serve.
#[derive(Debug)]
pub struct Deployment {
    cluster: ClusterFile,
    keys: KeyFile,
    me: ReplicaId,
    /// Every member's address, resolved, in member order.
    addresses: Vec<SocketAddr>,
    /// Where to listen: the member's own address unless overridden.
    listen: SocketAddr,
    byzantine: Option<Behaviour>,
    /// The data directory of a durable replica (`--data-dir`).
    data_dir: Option<std::path::PathBuf>,
}

impl Deployment {
    /// Checks that `keys` belongs to `cluster`: its node is a member, and
    /// the public key it holds for every member is the cluster file's.
    /// Resolves every member's address, and `listen` if given (otherwise
    /// the replica listens on its own address). Each error names the file
    /// and the value at fault.
    pub fn check(
        cluster: ClusterFile,
        cluster_path: &Path,
        keys: KeyFile,
        listen: Option<&str>,
        byzantine: Option<Behaviour>,
    ) -> Result<Deployment, String> {
        let keys_path = keys.path().display().to_string();
        let me = cluster
            .members
            .iter()
            .position(|m| m.id == keys.node_id)
            .ok_or_else(|| {
                format!(
                    "key file {keys_path} is for {:?}, which is not a member of cluster file {}",
                    keys.node_id,
                    cluster_path.display()
                )
            })?;
        for member in &cluster.members {
            match keys.public_key_of(&member.id) {
                Some(key) if key == member.public_key => {}
                Some(_) => {
                    return Err(format!(
                        "key file {keys_path} holds a public key for {:?} that is not the one in \
                         cluster file {}",
                        member.id,
                        cluster_path.display()
                    ))
                }
                None => {
                    return Err(format!(
                    "key file {keys_path} holds no public key for member {:?} of cluster file {}",
                    member.id,
                    cluster_path.display()
                ))
                }
            }
        }
        if let Some(stranger) = keys
            .nodes()
            .find(|n| !cluster.members.iter().any(|m| m.id == *n))
        {
            return Err(format!(
                "key file {keys_path} holds a public key for {stranger:?}, which is not a member \
                 of cluster file {}",
                cluster_path.display()
            ));
        }
        let addresses = cluster.resolve()?;
        let listen = match listen {
            Some(text) => resolve(text).map_err(|e| format!("--listen: {e}"))?,
            None => addresses[me],
        };
        Ok(Deployment {
            cluster,
            keys,
            me: ReplicaId(me as u32),
            addresses,
            listen,
            byzantine,
            data_dir: None,
        })
    }

    /// The same replica, durable: it keeps its records in `dir` and starts
    /// again from them (see [`storage`](crate::storage)).
    pub fn with_data_dir(self, dir: Option<std::path::PathBuf>) -> Deployment {
        Deployment {
            data_dir: dir,
            ..self
        }
    }

    /// This replica's node id.
    pub fn node_id(&self) -> &str {
        &self.keys.node_id
    }

    /// The replica-mode settings the cluster file gives.
    fn settings(&self) -> Settings {
        Settings {
            client_keys: self.cluster.client_keys(),
            byzantine: self.byzantine,
            answer_every_client: true,
            data_dir: self.data_dir.clone(),
            ..self
                .cluster
                .protocol
                .settings(Auth::Keys(self.keys.clone()))
        }
    }
}

/// The first address `text` (`HOST:PORT`) resolves to.
fn resolve(text: &str) -> Result<SocketAddr, String> {
    text.to_socket_addrs()
        .map_err(|e| format!("{text:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

/// Runs the replica until the process is killed (or the transport fails
/// to start, or writing fails).
pub fn serve(deployment: Deployment, net: NetConfig) -> io::Result<()> {
    let names: Vec<String> = deployment
        .cluster
        .members
        .iter()
        .map(|m| m.id.clone())
        .collect();
    let node = ReplicaNode::started(deployment.settings(), deployment.node_id(), names.clone())
        .map_err(io::Error::other)?;
    let roster = deployment
        .cluster
        .roster(&deployment.addresses)
        .map_err(io::Error::other)?;
    let identity = Identity::new(
        PeerId::Replica(deployment.me),
        deployment.keys.secret(),
        &roster,
    )
    .map_err(|e| io::Error::other(e.to_string()))?;
    let listener = TcpListener::bind(deployment.listen).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on {}: {e}", deployment.listen),
        )
    })?;
    let (transport, events) = Transport::start(identity, roster, Some(listener), net)
        .map_err(|e| io::Error::other(e.to_string()))?;
    info!(
        "{} listening on {} for a cluster of {}",
        deployment.node_id(),
        deployment.listen,
        names.len()
    );
    let tick = Duration::from_millis(deployment.cluster.protocol.tick_ms);
    let sink = NetSink {
        transport,
        names: names.clone(),
        dropped: 0,
    };
    runtime::drive(node, tick, NetSource { events, names }, sink)
}

/// Frames from the transport, each with its authenticated sender.
struct NetSource {
    events: Receiver<Event>,
    names: Vec<String>,
}

impl Source for NetSource {
    fn next_message(&mut self) -> io::Result<Option<Incoming>> {
        // The transport logs connections, disconnections and refusals.
        while let Ok(event) = self.events.recv() {
            if let Some(message) = self.message(event) {
                return Ok(Some(message));
            }
        }
        Ok(None)
    }

    fn ready_message(&mut self) -> Option<Incoming> {
        while let Ok(event) = self.events.try_recv() {
            if let Some(message) = self.message(event) {
                return Some(message);
            }
        }
        None
    }
}

impl NetSource {
    /// The message an event carries, if it is a frame from a member.
    fn message(&self, event: Event) -> Option<Incoming> {
        let Event::Frame { from, frame } = event else {
            return None;
        };
        let sender = match &from {
            PeerId::Replica(r) => self.names.get(r.index())?.clone(),
            PeerId::Client(c) => c.as_str().to_string(),
        };
        match String::from_utf8(frame.into_vec()) {
            Ok(text) => Some(Incoming {
                sender: Some(sender),
                text,
            }),
            Err(_) => {
                warn!("skipped a frame from {sender} that is not UTF-8");
                None
            }
        }
    }
}

/// Envelopes out through the transport: to a member by its node id, to a
/// client by its id.
struct NetSink {
    transport: Transport,
    names: Vec<String>,
    /// Frames the transport refused so far, for rare logging.
    dropped: u64,
}

impl Sink for NetSink {
    fn emit(&mut self, envelopes: Vec<Envelope>) -> io::Result<()> {
        for envelope in envelopes {
            let to = match self.names.iter().position(|n| *n == envelope.dest) {
                Some(i) => PeerId::Replica(ReplicaId(i as u32)),
                None => PeerId::Client(ClientId::from(envelope.dest.as_str())),
            };
            let frame = pbft_wire::encode(&envelope).into_bytes();
            match self.transport.send(&to, frame) {
                Ok(()) => {}
                Err(SendError::UnknownPeer) => {
                    debug!("dropped a message to {}: not a member", envelope.dest)
                }
                Err(error) => {
                    self.dropped += 1;
                    if self.dropped.is_power_of_two() {
                        warn!(
                            "dropped a message to {}: {error} ({} dropped so far)",
                            envelope.dest, self.dropped
                        );
                    }
                }
            }
        }
        Ok(())
    }
}
