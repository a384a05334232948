//! The client proxy: signs each request, sends it to the primary it
//! believes in, and on a timeout to every replica (§4.1); returns a result
//! once f + 1 replicas agree on it.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use log::{debug, info};
use pbft_core::{ReplicaId, RequestSigner};
use pbft_net::{Event, Identity, NetConfig, PeerId, Transport};
use pbft_node::client_keys::ClientKey;
use pbft_node::cluster::ClusterFile;
use pbft_wire::{Body, Envelope};
use serde_json::Value;

use crate::quorum::{answer_of, view_of, Answer, Kind, Replies, Views};

/// One lin-kv operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Operation {
    /// Read `key`.
    Read {
        /// The key.
        key: Value,
    },
    /// Set `key` to `value`.
    Write {
        /// The key.
        key: Value,
        /// The value.
        value: Value,
    },
    /// Set `key` to `to` if it holds `from`.
    Cas {
        /// The key.
        key: Value,
        /// The value expected.
        from: Value,
        /// The value to set.
        to: Value,
    },
}

/// Why an operation has no result.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientError {
    /// The cluster file, the key file or the network could not be set up.
    Setup(String),
    /// f + 1 replicas agreed that the operation failed, with this error
    /// code and text (for example 20: the key does not exist; 22: the
    /// value is not the one expected).
    Refused {
        /// The error code (docs/protocol.md).
        code: u32,
        /// What went wrong, as one of those replicas said it.
        text: String,
    },
    /// No f + 1 replicas agreed before the deadline.
    Timeout {
        /// How long the client waited.
        waited: Duration,
        /// How many replicas had answered at all.
        replies: usize,
    },
    /// The operation cannot be sent as a request (for example a key the
    /// service cannot store).
    Invalid(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Setup(text) => write!(f, "{text}"),
            ClientError::Refused { code, text } => write!(f, "error {code}: {text}"),
            ClientError::Timeout { waited, replies } => write!(
                f,
                "no answer that enough replicas agree on after {:.1} s ({replies} replied)",
                waited.as_secs_f64()
            ),
            ClientError::Invalid(text) => write!(f, "invalid operation: {text}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// How long the client waits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long to wait for the primary before sending to every replica,
    /// and then between sends to every replica.
    pub retry: Duration,
    /// How long an operation may take in all before it fails.
    pub deadline: Duration,
}

/// A client of one cluster.
pub struct Client {
    transport: Transport,
    events: Receiver<Event>,
    key: ClientKey,
    /// `key`'s signing half, kept so that each request costs one signature.
    signer: RequestSigner,
    names: Vec<String>,
    f: usize,
    /// The views the replicas said, and the one the client believes.
    views: Views,
    /// A view to start from, until the replicas say one.
    start_view: u64,
    /// The last timestamp used; each request takes the next.
    timestamp: u64,
    timing: Timing,
}

impl Client {
    /// A client of the cluster in the cluster file at `cluster`, as the
    /// client whose key file is at `keys`. Its first request carries
    /// timestamp `last_timestamp + 1`: a client's timestamps must grow
    /// across runs, since replicas refuse one at or below the last they
    /// executed (error 14).
    pub fn open(cluster: &Path, keys: &Path, last_timestamp: u64) -> Result<Client, ClientError> {
        let cluster = ClusterFile::load(cluster).map_err(|e| ClientError::Setup(e.to_string()))?;
        let key = ClientKey::load(keys).map_err(|e| ClientError::Setup(e.to_string()))?;
        Client::new(&cluster, key, last_timestamp)
    }

    /// A client of `cluster` with `key`; see [`Client::open`].
    pub fn new(
        cluster: &ClusterFile,
        key: ClientKey,
        last_timestamp: u64,
    ) -> Result<Client, ClientError> {
        let setup = |e: String| ClientError::Setup(e);
        match cluster.clients.get(key.client.as_str()) {
            Some(public) if *public == key.public_key() => {}
            Some(_) => {
                return Err(setup(format!(
                    "the cluster file lists another public key for client {}",
                    key.client
                )))
            }
            None => {
                return Err(setup(format!(
                    "client {} is not in the cluster file",
                    key.client
                )))
            }
        }
        let roster = cluster
            .roster(&cluster.resolve().map_err(setup)?)
            .map_err(setup)?;
        let identity = Identity::new(PeerId::Client(key.client.clone()), *key.secret(), &roster)
            .map_err(|e| setup(e.to_string()))?;
        let (transport, events) = Transport::start(identity, roster, None, NetConfig::default())
            .map_err(|e| setup(e.to_string()))?;
        let n = cluster.members.len();
        let timing = Timing {
            retry: Duration::from_millis(cluster.protocol.view_change_timeout_ms.max(1)),
            deadline: Duration::from_secs(30),
        };
        Ok(Client {
            transport,
            events,
            signer: RequestSigner::new(key.secret()),
            key,
            names: cluster.members.iter().map(|m| m.id.clone()).collect(),
            f: (n.saturating_sub(1)) / 3,
            views: Views::new((n.saturating_sub(1)) / 3),
            start_view: 0,
            timestamp: last_timestamp,
            timing,
        })
    }

    /// How long the client waits.
    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// Sets how long the client waits.
    pub fn with_timing(mut self, timing: Timing) -> Client {
        self.timing = timing;
        self
    }

    /// The last timestamp used: keep it, and pass it to the next
    /// [`Client::open`] for this client.
    pub fn last_timestamp(&self) -> u64 {
        self.timestamp
    }

    /// Starts from `view` (for example the view a last run ended in),
    /// until replies vouch for a later one.
    pub fn with_view(mut self, view: u64) -> Client {
        self.start_view = view;
        self
    }

    /// The view the client believes the cluster is in: the (f + 1)-th
    /// highest view the replicas' replies gave (see [`Views`]).
    pub fn view(&self) -> u64 {
        self.views.believed().max(self.start_view)
    }

    /// Reads `key`.
    pub fn read(&mut self, key: impl Into<Value>) -> Result<Value, ClientError> {
        match self.invoke(Operation::Read { key: key.into() })? {
            Answer::Value(v) => Ok(v),
            other => Err(ClientError::Invalid(format!(
                "replicas agreed on {other:?} for a read"
            ))),
        }
    }

    /// Sets `key` to `value`.
    pub fn write(
        &mut self,
        key: impl Into<Value>,
        value: impl Into<Value>,
    ) -> Result<(), ClientError> {
        self.invoke(Operation::Write {
            key: key.into(),
            value: value.into(),
        })
        .map(|_| ())
    }

    /// Sets `key` to `to` if it holds `from`.
    pub fn cas(
        &mut self,
        key: impl Into<Value>,
        from: impl Into<Value>,
        to: impl Into<Value>,
    ) -> Result<(), ClientError> {
        self.invoke(Operation::Cas {
            key: key.into(),
            from: from.into(),
            to: to.into(),
        })
        .map(|_| ())
    }

    /// Runs one operation: the answer f + 1 replicas agree on. An agreed
    /// error is [`ClientError::Refused`].
    pub fn invoke(&mut self, operation: Operation) -> Result<Answer, ClientError> {
        self.timestamp += 1;
        let timestamp = self.timestamp;
        let kind = match operation {
            Operation::Read { .. } => Kind::Read,
            Operation::Write { .. } => Kind::Write,
            Operation::Cas { .. } => Kind::Cas,
        };
        let body = self.signed_body(operation, timestamp)?;
        let started = Instant::now();
        let n = self.names.len();
        let primary = ReplicaId((self.view() % n as u64) as u32);
        self.send(primary, &body);
        let mut replies = Replies::new(self.f);
        let mut next_send = started + self.timing.retry;
        loop {
            let now = Instant::now();
            if now >= started + self.timing.deadline {
                return Err(ClientError::Timeout {
                    waited: now - started,
                    replies: replies.len(),
                });
            }
            if now >= next_send {
                debug!("request {timestamp}: no agreement yet; sending to every replica");
                for r in 0..n as u32 {
                    self.send(ReplicaId(r), &body);
                }
                next_send = now + self.timing.retry;
            }
            let wait = next_send.min(started + self.timing.deadline) - now;
            let event = match self.events.recv_timeout(wait) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(ClientError::Setup("the transport stopped".into()))
                }
            };
            let Some((from, reply)) = self.reply(event) else {
                continue;
            };
            // Any reply says where its replica is, even one to an earlier
            // request.
            if let Some(view) = view_of(&reply) {
                let before = self.view();
                self.views.note(from, view);
                if self.view() > before {
                    info!("the cluster is in view {}", self.view());
                }
            }
            if reply.in_reply_to() != Some(timestamp) {
                continue;
            }
            let Some(answer) = answer_of(kind, &reply) else {
                continue;
            };
            if let Some(decided) = replies.record(from, answer) {
                return match decided {
                    Answer::Error { code, text } => Err(ClientError::Refused { code, text }),
                    answer => Ok(answer),
                };
            }
        }
    }

    /// The request's body, signed as the replicas will check it.
    fn signed_body(&self, operation: Operation, msg_id: u64) -> Result<Body, ClientError> {
        let mut body = match operation {
            Operation::Read { key } => Body::Read {
                msg_id,
                key,
                signature: None,
            },
            Operation::Write { key, value } => Body::Write {
                msg_id,
                key,
                value,
                signature: None,
            },
            Operation::Cas { key, from, to } => Body::Cas {
                msg_id,
                key,
                from,
                to,
                signature: None,
            },
        };
        sign_body(&self.signer, self.key.client.as_str(), &mut body)?;
        Ok(body)
    }

    fn send(&self, to: ReplicaId, body: &Body) {
        let envelope = Envelope {
            src: self.key.client.as_str().to_string(),
            dest: self.names[to.index()].clone(),
            body: body.clone(),
        };
        let frame = pbft_wire::encode(&envelope).into_bytes();
        if let Err(e) = self.transport.send(&PeerId::Replica(to), frame) {
            debug!("could not send to {}: {e}", self.names[to.index()]);
        }
    }

    /// The reply `event` carries, with the replica that sent it: the
    /// transport proved the sender, and the envelope must say the same.
    fn reply(&self, event: Event) -> Option<(ReplicaId, Body)> {
        let Event::Frame { from, frame } = event else {
            return None;
        };
        let PeerId::Replica(from) = from else {
            return None;
        };
        let text = std::str::from_utf8(&frame).ok()?;
        let envelope = pbft_wire::decode(text).ok()?;
        let name = self.names.get(from.index())?;
        if envelope.src != *name || envelope.dest != self.key.client.as_str() {
            debug!("ignored a reply from {name} that names another sender or addressee");
            return None;
        }
        Some((from, envelope.body))
    }
}

/// Signs the lin-kv request `body` (a `read`, `write` or `cas`) of client
/// `client` with `signer`, over the request the replicas make of it, and
/// puts the signature in the body: what a client with a key sends.
pub fn sign_body(signer: &RequestSigner, client: &str, body: &mut Body) -> Result<(), ClientError> {
    let (request, _, _) = pbft_node::linkv::request(client, body)
        .ok_or_else(|| ClientError::Invalid("not a lin-kv operation".into()))?
        .map_err(ClientError::Invalid)?;
    let signature = signer.sign(request).signature().cloned();
    match body {
        Body::Read { signature: s, .. }
        | Body::Write { signature: s, .. }
        | Body::Cas { signature: s, .. } => *s = signature,
        _ => {}
    }
    Ok(())
}
