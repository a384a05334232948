//! Replica mode: this process is exactly one replica, the `node_id` from
//! `init`. Peer messages arrive on stdin as JSON lines from the other
//! replicas and leave on stdout addressed to them; clients talk to it as
//! to the embedded default, but results arrive when the cluster gets
//! there.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use log::{debug, info, warn};
use pbft_core::{
    Authenticator, ClientId, Config, ExecResult, Input, KvService, Output, Replica, ReplicaId,
    Request, Seq, Unauthenticated,
};
use pbft_wire::{decode, request_from_body, status_ok_body, Body, Directory, Envelope, ErrorCode};

use crate::keys::KeyFile;
use crate::linkv;
use crate::reply::{bad_line, dropped_elsewhere, refusal_code, MsgIds};
use crate::storage::Storage;

/// How replica mode authenticates its peers.
#[derive(Clone, Debug)]
pub enum Auth {
    /// Ed25519 with this node's key file.
    Keys(KeyFile),
    /// No signatures: only for a transport that vouches for every sender.
    None,
}

/// Replica-mode settings fixed at startup.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How peers are authenticated.
    pub auth: Auth,
    /// The public keys of the clients that sign their requests (see
    /// [`client_keys`](crate::client_keys)); empty when none do.
    pub client_keys: BTreeMap<ClientId, [u8; 32]>,
    /// Checkpoint interval `K`.
    pub checkpoint_interval: u64,
    /// The most requests in one batch.
    pub max_batch: usize,
    /// The most sequence numbers the primary keeps in flight.
    pub max_in_flight: u64,
    /// The largest client request accepted, in
    /// [`Request::size`](pbft_core::Request::size) bytes.
    pub max_request_bytes: usize,
    /// The largest batch proposed or accepted, in the same bytes.
    pub max_batch_bytes: usize,
    /// View-change timeout, in ticks.
    pub view_change_timeout: u64,
    /// `L`, the log window, a multiple of the checkpoint interval; `None`
    /// is two intervals.
    pub window: Option<u64>,
    /// The size of the chunks a checkpoint's state is cut into.
    pub state_chunk_bytes: usize,
    /// How far ahead of its client's last timestamp a request may be.
    pub max_timestamp_gap: u64,
    /// A testing aid: misbehave this way. `None` in any real use.
    pub byzantine: Option<crate::byzantine::Behaviour>,
    /// Answer every lin-kv request of a signing client that this replica
    /// executes, not only those the client sent here, and give the view in
    /// each answer: for clients that send to the primary and wait for
    /// f + 1 matching answers (§4.1), as over TCP. Off over stdio, whose
    /// clients expect one answer from the node they asked.
    pub answer_every_client: bool,
    /// Where the replica keeps its records (`--data-dir`): with one, it is
    /// durable and starts again from what it recorded there; without, it
    /// keeps everything in memory.
    pub data_dir: Option<PathBuf>,
}

impl Settings {
    /// Settings that authenticate peers by `auth`, with no signing clients
    /// and every other field at the default of its replica-mode flag (the
    /// view-change timeout in ticks of the default `--tick-ms`).
    pub fn new(auth: Auth) -> Settings {
        let core = Config::new(1);
        Settings {
            auth,
            client_keys: BTreeMap::new(),
            checkpoint_interval: pbft_core::DEFAULT_CHECKPOINT_INTERVAL,
            max_batch: pbft_core::DEFAULT_MAX_BATCH,
            max_in_flight: pbft_core::DEFAULT_MAX_IN_FLIGHT,
            max_request_bytes: pbft_core::DEFAULT_MAX_REQUEST_BYTES,
            max_batch_bytes: pbft_core::DEFAULT_MAX_BATCH_BYTES,
            view_change_timeout: crate::cli::DEFAULT_VIEW_CHANGE_TIMEOUT_MS
                / crate::cli::DEFAULT_TICK_MS,
            window: None,
            state_chunk_bytes: core.state_chunk_bytes,
            max_timestamp_gap: core.max_timestamp_gap,
            byzantine: None,
            answer_every_client: false,
            data_dir: None,
        }
    }

    /// The core's configuration for a cluster of `n` replicas.
    pub fn config(&self, n: usize) -> Config {
        let base = Config::new(n)
            .with_checkpoint_interval(self.checkpoint_interval)
            .with_batching(self.max_batch, self.max_in_flight)
            .with_client_keys(self.client_keys.clone());
        Config {
            view_change_timeout: self.view_change_timeout,
            max_request_bytes: self.max_request_bytes,
            max_batch_bytes: self.max_batch_bytes,
            window: self.window.unwrap_or(base.window),
            state_chunk_bytes: self.state_chunk_bytes,
            max_timestamp_gap: self.max_timestamp_gap,
            ..base
        }
    }
}

/// The replica this process hosts, once `init` arrives.
struct Hosted {
    directory: Directory,
    me: ReplicaId,
    replica: Replica<KvService>,
    /// Clients waiting here for a request's number: `(src, msg_id)`.
    waiting: HashMap<Request, Vec<(String, u64)>>,
    /// lin-kv clients waiting here for a request's result.
    executing: HashMap<Request, Vec<(String, u64, linkv::Kind)>>,
    /// The data directory, for a durable replica.
    storage: Option<Storage>,
}

/// A replica-mode node: turns input lines and ticks into output lines.
pub struct ReplicaNode {
    settings: Settings,
    hosted: Option<Hosted>,
    ids: MsgIds,
    outputs: Vec<Output>,
    /// Why the node cannot go on: its records cannot be stored, or its
    /// data directory cannot be used. It then sends nothing more.
    failure: Option<String>,
    /// The caller holds the output back until it syncs ([`hold_sync`]).
    ///
    /// [`hold_sync`]: ReplicaNode::hold_sync
    holding: bool,
}

impl ReplicaNode {
    /// A node waiting for `init`.
    pub fn new(settings: Settings) -> ReplicaNode {
        ReplicaNode {
            settings,
            hosted: None,
            ids: MsgIds::default(),
            outputs: Vec::new(),
            failure: None,
            holding: false,
        }
    }

    /// While `true`, the records of each input are written but not synced,
    /// and the caller must not send what the node returns; setting it back
    /// to `false` syncs them all at once (group commit), after which the
    /// held output may go unless [`failure`](Self::failure) says otherwise.
    pub fn hold_sync(&mut self, hold: bool) {
        self.holding = hold;
        if !hold {
            self.sync();
        }
    }

    /// Whether the replica keeps its records in a data directory.
    pub fn is_durable(&self) -> bool {
        self.hosted.as_ref().is_some_and(|h| h.storage.is_some())
    }

    /// Syncs the records written so far, noting a failure.
    fn sync(&mut self) {
        if let Some(storage) = self.hosted.as_mut().and_then(|h| h.storage.as_mut()) {
            if let Err(e) = storage.sync() {
                self.failure = Some(format!("cannot keep the replica's records: {e}"));
            }
        }
    }

    /// Why the node stopped, if it did: a durable replica that cannot keep
    /// its records must not send anything, so the driver ends it.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// A node already initialised as `node_id` of `node_ids`, as if by
    /// `init`: for a transport that knows the cluster from its own
    /// configuration. The error says why the cluster cannot be hosted.
    pub fn started(
        settings: Settings,
        node_id: &str,
        node_ids: Vec<String>,
    ) -> Result<ReplicaNode, String> {
        let (hosted, outputs) = Hosted::new(node_id, node_ids, &settings).map_err(|e| e.text)?;
        Ok(ReplicaNode {
            hosted: Some(hosted),
            outputs,
            ..ReplicaNode::new(settings)
        })
    }

    /// Handles one input line; returns the lines to write, client replies
    /// first. Never panics, whatever the line holds.
    pub fn handle_line(&mut self, line: &str) -> Vec<Envelope> {
        self.handle_text(None, line)
    }

    /// Handles one message that a transport has authenticated as coming
    /// from `sender` (a node id or client id). A message whose `src` is
    /// not `sender` is dropped with a warning: nobody may speak for
    /// another member.
    pub fn handle_from(&mut self, sender: &str, text: &str) -> Vec<Envelope> {
        self.handle_text(Some(sender), text)
    }

    fn handle_text(&mut self, sender: Option<&str>, line: &str) -> Vec<Envelope> {
        if line.trim().is_empty() {
            return Vec::new();
        }
        let impostor = |src: &str| match sender {
            Some(sender) if sender != src => {
                warn!("dropped a message from {sender} that claims to be from {src:?}");
                true
            }
            _ => false,
        };
        let envelope = match decode(line) {
            Ok(envelope) if impostor(&envelope.src) => return Vec::new(),
            Ok(envelope) => envelope,
            Err(error) => {
                let Some((code, header)) = bad_line(&error, |dest| self.elsewhere(dest)) else {
                    return Vec::new();
                };
                if impostor(&header.src) {
                    return Vec::new();
                }
                // Peers are never answered with errors, so that two nodes
                // cannot bounce errors forever.
                if self.is_peer(&header.src) {
                    return Vec::new();
                }
                let (src, dest, msg_id) = (
                    self.own_name(&header.dest),
                    header.src.clone(),
                    header.msg_id,
                );
                return vec![self.ids.error(src, dest, msg_id, code, error.to_string())];
            }
        };
        self.handle(envelope)
    }

    /// One tick of time: timers, and requests for state.
    pub fn tick(&mut self) -> Vec<Envelope> {
        let Some(hosted) = self.hosted.as_mut() else {
            return Vec::new();
        };
        hosted.replica.step(Input::Tick, &mut self.outputs);
        self.drain()
    }

    fn handle(&mut self, envelope: Envelope) -> Vec<Envelope> {
        let Envelope { src, dest, body } = envelope;
        if self.elsewhere(&dest) {
            dropped_elsewhere(&body, &src, &dest);
            return Vec::new();
        }
        let me = self.own_name(&dest);
        match body {
            Body::Init {
                msg_id,
                node_id,
                node_ids,
            } => vec![self.init(me, src, msg_id, node_id, node_ids)],
            Body::PbftRequest { msg_id, .. }
            | Body::PbftStatus { msg_id, .. }
            | Body::Read { msg_id, .. }
            | Body::Write { msg_id, .. }
            | Body::Cas { msg_id, .. }
                if self.hosted.is_none() =>
            {
                let text = "the node is not initialised yet: send init first".to_string();
                vec![self.ids.error(
                    me,
                    src,
                    Some(msg_id),
                    ErrorCode::TemporarilyUnavailable,
                    text,
                )]
            }
            Body::PbftRequest { msg_id, .. } => match request_from_body(&src, &body) {
                Ok(request) => self.request(src, msg_id, request),
                Err(problem) => vec![self.ids.error(
                    me,
                    src,
                    Some(msg_id),
                    ErrorCode::MalformedRequest,
                    problem.to_string(),
                )],
            },
            Body::PbftStatus {
                msg_id,
                sequence_number,
            } => {
                let Some(hosted) = self.hosted.as_ref() else {
                    return Vec::new();
                };
                let status = hosted.replica.status(Seq(sequence_number));
                let reply = status_ok_body(msg_id, self.ids.take(), &status);
                vec![Envelope {
                    src: me,
                    dest: src,
                    body: reply,
                }]
            }
            body @ (Body::Read { .. } | Body::Write { .. } | Body::Cas { .. }) => {
                match linkv::request(&src, &body) {
                    Some(Ok((request, kind, msg_id))) => self.linkv(src, msg_id, kind, request),
                    Some(Err(text)) => {
                        let msg_id = body.msg_id();
                        vec![self
                            .ids
                            .error(me, src, msg_id, ErrorCode::MalformedRequest, text)]
                    }
                    None => Vec::new(),
                }
            }
            reply if reply.is_reply() => {
                warn!("ignored an unsolicited {} from {src}", reply.type_name());
                Vec::new()
            }
            peer => self.peer(src, peer),
        }
    }

    fn init(
        &mut self,
        me: String,
        src: String,
        msg_id: u64,
        node_id: String,
        node_ids: Vec<String>,
    ) -> Envelope {
        if self.hosted.is_some() {
            let text = format!("already initialised as {me}");
            return self
                .ids
                .error(me, src, Some(msg_id), ErrorCode::MalformedRequest, text);
        }
        match Hosted::new(&node_id, node_ids, &self.settings) {
            Ok((hosted, outputs)) => {
                self.hosted = Some(hosted);
                // A restored replica's first outputs go with its next step.
                self.outputs = outputs;
                let reply = Body::InitOk {
                    in_reply_to: msg_id,
                    msg_id: self.ids.take(),
                };
                Envelope {
                    src: node_id,
                    dest: src,
                    body: reply,
                }
            }
            Err(HostError { text, storage }) => {
                if storage {
                    // The directory cannot be trusted or used: this node
                    // must not run as the replica at all.
                    self.failure = Some(text.clone());
                }
                warn!("init refused: {text}");
                self.ids
                    .error(me, src, Some(msg_id), ErrorCode::MalformedRequest, text)
            }
        }
    }

    fn request(&mut self, src: String, msg_id: u64, request: Request) -> Vec<Envelope> {
        let Some(hosted) = self.hosted.as_mut() else {
            return Vec::new();
        };
        hosted
            .waiting
            .entry(request.clone())
            .or_default()
            .push((src, msg_id));
        hosted
            .replica
            .step(Input::Request(request), &mut self.outputs);
        self.drain()
    }

    fn linkv(
        &mut self,
        src: String,
        msg_id: u64,
        kind: linkv::Kind,
        request: Request,
    ) -> Vec<Envelope> {
        let Some(hosted) = self.hosted.as_mut() else {
            return Vec::new();
        };
        // Answering every client, the node builds each answer from the
        // request itself and keeps no waiter, so that a client's resends
        // cost it nothing.
        if !self.settings.answer_every_client {
            hosted
                .executing
                .entry(request.clone())
                .or_default()
                .push((src, msg_id, kind));
        }
        hosted
            .replica
            .step(Input::Request(request), &mut self.outputs);
        self.drain()
    }

    fn peer(&mut self, src: String, body: Body) -> Vec<Envelope> {
        let Some(hosted) = self.hosted.as_mut() else {
            warn!(
                "dropped a {} from {src}: not initialised yet",
                body.type_name()
            );
            return Vec::new();
        };
        let Some(from) = hosted.directory.id_of(&src) else {
            warn!(
                "dropped a {} from {src}, which is not a replica",
                body.type_name()
            );
            return Vec::new();
        };
        match hosted.directory.body_to_message(&body) {
            Ok(signed) => {
                hosted
                    .replica
                    .step(Input::Message { from, signed }, &mut self.outputs);
                self.drain()
            }
            Err(problem) => {
                warn!("dropped a {} from {src}: {problem}", body.type_name());
                Vec::new()
            }
        }
    }

    /// Turns the replica's outputs into lines: client replies first, then
    /// messages to peers.
    fn drain(&mut self) -> Vec<Envelope> {
        let mut replies = Vec::new();
        let mut sends = Vec::new();
        if self.failure.is_some() {
            self.outputs.clear();
            return Vec::new();
        }
        let outputs = std::mem::take(&mut self.outputs);
        for output in outputs {
            match output {
                // Written now, synced below before anything is sent.
                Output::Persist(record) => {
                    let storage = self.hosted.as_mut().and_then(|h| h.storage.as_mut());
                    if let Some(Err(e)) = storage.map(|s| s.write(&record)) {
                        self.failure = Some(format!("cannot keep the replica's records: {e}"));
                    }
                }
                Output::Send { to, signed } => sends.push((to, signed)),
                Output::Ordered(o) => {
                    for (client, msg_id) in self.take_waiting(&o.request) {
                        let body = Body::PbftRequestOk {
                            in_reply_to: msg_id,
                            msg_id: self.ids.take(),
                            sequence_number: o.seq.0,
                            view: o.view.0,
                            phase: "pre-prepare".to_string(),
                        };
                        replies.push(self.envelope(client, body));
                    }
                }
                Output::Refused { request, reason } => {
                    let code = refusal_code(&reason);
                    let mut refused = self.take_waiting(&request);
                    while let Some((client, msg_id, _)) = self.take_executing(&request) {
                        refused.push((client, msg_id));
                    }
                    refused.extend(
                        self.asked_anywhere(&request)
                            .map(|(client, msg_id, _)| (client, msg_id)),
                    );
                    for (client, msg_id) in refused {
                        let me = self.own_name("");
                        let text = reason.to_string();
                        replies.push(self.ids.error(me, client, Some(msg_id), code, text));
                    }
                }
                Output::Executed(x) => {
                    // A stable format: scenario runs check agreement with it.
                    info!(
                        "executed {} digest {} ({} requests) in {}",
                        x.seq,
                        x.digest,
                        x.batch.len(),
                        x.view
                    );
                    for (request, result) in x.batch.requests().iter().zip(&x.results) {
                        self.answer_linkv(request, result, x.view.0, &mut replies);
                    }
                }
                Output::Answered {
                    request, result, ..
                } => {
                    let view = self.hosted.as_ref().map_or(0, |h| h.replica.view().0);
                    self.answer_linkv(&request, &result, view, &mut replies)
                }
                Output::Restored { seq, digest } => {
                    info!("restored checkpoint {seq} ({digest})")
                }
                Output::Rejected { from, kind, reason } => {
                    let name = self.name_of(from);
                    log_rejected("", kind, &name, &reason);
                }
            }
        }
        // Persist, then send: one sync for every record of this step, or,
        // while the caller holds the output back, of all the steps it holds.
        if !self.holding {
            self.sync();
        }
        if let Some(failure) = &self.failure {
            log::error!("{failure}: the replica stops and sends nothing more");
            return Vec::new();
        }
        for (to, signed) in sends {
            let Some(hosted) = self.hosted.as_ref() else {
                break;
            };
            let targets: Vec<ReplicaId> = match to {
                pbft_core::Destination::Replica(r) => vec![r],
                pbft_core::Destination::Others => (0..hosted.directory.len() as u32)
                    .map(ReplicaId)
                    .filter(|r| *r != hosted.me)
                    .collect(),
            };
            let outgoing = match self.settings.byzantine {
                Some(behaviour) => behaviour.apply(&hosted.replica, targets, signed),
                None => targets.into_iter().map(|t| (t, signed.clone())).collect(),
            };
            for (target, signed) in outgoing {
                let dest = self.name_of(target);
                let msg_id = self.ids.take();
                let body = self
                    .hosted
                    .as_ref()
                    .map(|h| h.directory.message_to_body(&signed, Some(msg_id)));
                match body {
                    Some(Ok(body)) => replies.push(self.envelope(dest, body)),
                    Some(Err(problem)) => warn!("could not encode a message: {problem}"),
                    None => {}
                }
            }
        }
        if let Some(behaviour) = self.settings.byzantine {
            replies = replies
                .into_iter()
                .map(|e| {
                    if self.is_peer(&e.dest) {
                        e
                    } else {
                        Envelope {
                            body: behaviour.alter_reply(e.body),
                            ..e
                        }
                    }
                })
                .collect();
        }
        replies
    }

    /// Answers the lin-kv client waiting for `request`, if one is, or with
    /// [`Settings::answer_every_client`] the signing client that sent it
    /// wherever it did.
    fn answer_linkv(
        &mut self,
        request: &Request,
        result: &ExecResult,
        view: u64,
        replies: &mut Vec<Envelope>,
    ) {
        let every = self.settings.answer_every_client;
        let waiting = self
            .take_executing(request)
            .or_else(|| self.asked_anywhere(request));
        let Some((client, in_reply_to, kind)) = waiting else {
            return;
        };
        let msg_id = self.ids.take();
        match linkv::reply(kind, result, in_reply_to, msg_id, every.then_some(view)) {
            Ok(body) => replies.push(self.envelope(client, body)),
            Err((code, text)) => {
                let me = self.own_name("");
                replies.push(self.ids.error(me, client, Some(in_reply_to), code, text));
            }
        }
    }

    /// With [`Settings::answer_every_client`], the signing lin-kv client
    /// that sent `request` (to this replica or another), the `msg_id` it
    /// sent it with (its timestamp) and its kind: whom to answer.
    fn asked_anywhere(&self, request: &Request) -> Option<(String, u64, linkv::Kind)> {
        let signing = self.settings.client_keys.contains_key(&request.client);
        if !(self.settings.answer_every_client && signing) {
            return None;
        }
        let kind = linkv::kind_of(&request.operation)?;
        Some((
            request.client.as_str().to_string(),
            request.timestamp?,
            kind,
        ))
    }

    /// The first lin-kv client waiting for `request` to execute.
    fn take_executing(&mut self, request: &Request) -> Option<(String, u64, linkv::Kind)> {
        let hosted = self.hosted.as_mut()?;
        let waiters = hosted.executing.get_mut(request)?;
        let first = (!waiters.is_empty()).then(|| waiters.remove(0));
        if waiters.is_empty() {
            hosted.executing.remove(request);
        }
        first
    }

    fn take_waiting(&mut self, request: &Request) -> Vec<(String, u64)> {
        self.hosted
            .as_mut()
            .and_then(|h| h.waiting.remove(request))
            .unwrap_or_default()
    }

    /// Whether a line addressed to `dest` is for another node. Until
    /// `init` this node has no id of its own, so every line is for it.
    fn elsewhere(&self, dest: &str) -> bool {
        self.hosted
            .as_ref()
            .is_some_and(|h| h.directory.name_of(h.me) != Some(dest))
    }

    fn is_peer(&self, src: &str) -> bool {
        self.hosted
            .as_ref()
            .is_some_and(|h| h.directory.id_of(src).is_some())
    }

    fn name_of(&self, id: ReplicaId) -> String {
        self.hosted
            .as_ref()
            .and_then(|h| h.directory.name_of(id))
            .unwrap_or("?")
            .to_string()
    }

    fn own_name(&self, addressed: &str) -> String {
        match &self.hosted {
            Some(h) => self.name_of(h.me),
            None => addressed.to_string(),
        }
    }

    fn envelope(&self, dest: String, body: Body) -> Envelope {
        Envelope {
            src: self.own_name(""),
            dest,
            body,
        }
    }
}

/// Why a replica cannot be hosted.
struct HostError {
    text: String,
    /// The data directory is at fault, not the request to host.
    storage: bool,
}

impl HostError {
    fn storage(text: String) -> HostError {
        HostError {
            text,
            storage: true,
        }
    }
}

impl From<String> for HostError {
    fn from(text: String) -> HostError {
        HostError {
            text,
            storage: false,
        }
    }
}

impl Hosted {
    /// The replica `node_id` of `node_ids`, and its first outputs: a
    /// durable one starts from its data directory.
    fn new(
        node_id: &str,
        node_ids: Vec<String>,
        settings: &Settings,
    ) -> Result<(Hosted, Vec<Output>), HostError> {
        let directory = Directory::new(node_ids).map_err(|e| format!("invalid node_ids: {e}"))?;
        let me = directory
            .id_of(node_id)
            .ok_or_else(|| format!("node_id {node_id:?} is not in node_ids"))?;
        let config = settings.config(directory.len());
        let auth: Box<dyn Authenticator> = match &settings.auth {
            Auth::Keys(file) => Box::new(
                file.authenticator(node_id, &directory)
                    .map_err(|e| e.to_string())?,
            ),
            Auth::None => Box::new(Unauthenticated),
        };
        let mut outputs = Vec::new();
        let (replica, storage) = match &settings.data_dir {
            None => (
                Replica::new(&config, me, KvService::default(), BoxedAuth(auth))
                    .map_err(|e| e.to_string())?,
                None,
            ),
            Some(dir) => {
                let (storage, records) =
                    Storage::open(dir, node_id, &directory).map_err(HostError::storage)?;
                let count = records.len();
                let replica = Replica::restore(
                    &config,
                    me,
                    KvService::default(),
                    BoxedAuth(auth),
                    records,
                    &mut outputs,
                )
                .map_err(|e| {
                    HostError::storage(format!("refusing to start from {}: {e}", dir.display()))
                })?;
                if count > 0 {
                    info!(
                        "restored from {}: executed through {}, stable checkpoint {}, now \
                         changing to {}",
                        dir.display(),
                        replica.last_executed(),
                        replica.stable_checkpoint().seq,
                        replica.view()
                    );
                }
                (replica, Some(storage))
            }
        };
        info!(
            "replica {node_id} of {} (f = {}), view {}",
            directory.len(),
            replica.quorums().f(),
            replica.view()
        );
        let hosted = Hosted {
            directory,
            me,
            replica,
            waiting: HashMap::new(),
            executing: HashMap::new(),
            storage,
        };
        Ok((hosted, outputs))
    }
}

/// The highest sequence number a replica-mode log says its replica
/// executed (`executed #N ...`) or restored (`restored checkpoint #N`): the
/// stable log lines this node writes at `info`, for harnesses that watch
/// a replica catch up. 0 when there is none.
pub fn highest_executed(log: &str) -> u64 {
    log.lines()
        .filter_map(|line| {
            let rest = line
                .split("executed #")
                .nth(1)
                .or_else(|| line.split("restored checkpoint #").nth(1))?;
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or(0)
}

/// Lets a boxed authenticator be handed to the core.
struct BoxedAuth(Box<dyn Authenticator>);

impl Authenticator for BoxedAuth {
    fn sign(&self, message: &pbft_core::Message) -> Option<pbft_core::Signature> {
        self.0.sign(message)
    }

    fn verify(
        &self,
        signer: ReplicaId,
        message: &pbft_core::Message,
        signature: Option<&pbft_core::Signature>,
    ) -> Result<(), pbft_core::AuthFailure> {
        self.0.verify(signer, message, signature)
    }
}

/// Logs a peer's message the core ignored: at debug level when a correct
/// peer's messages meet it in normal operation (a repeat, a vote beyond a
/// quorum), as a warning otherwise. `at` prefixes the line.
pub(crate) fn log_rejected(
    at: &str,
    kind: impl std::fmt::Display,
    from: &str,
    reason: &pbft_core::Rejection,
) {
    if reason.is_routine() {
        debug!("{at}ignored a {kind} from {from}: {reason}");
    } else {
        warn!("{at}ignored a {kind} from {from}: {reason}");
    }
}
