//! An in-process cluster with a deterministic network, for tests, tools and
//! the embedded node.
//!
//! Messages travel through one FIFO queue, so a run is a pure function of
//! the calls made on the cluster. Tests can inject messages as any sender
//! (to play a Byzantine replica) and filter what the network delivers.
//!
//! A [`durable`](Cluster::durable) cluster gives each replica a simulated
//! disk and keeps the persistence contract of [`Record`]: each record is
//! written when it comes out and synced before the first output after it
//! is carried out. [`crash_with_disk`](Cluster::crash_with_disk) then
//! restarts a replica from what it had synced.

use std::collections::VecDeque;
use std::fmt;

use crate::auth::{Ed25519Auth, KeyError, Unauthenticated};
use crate::config::{Config, ConfigError};
use crate::disk::Disk;
use crate::durable::{Record, RestoreError};
use crate::message::{Message, Signed};
use crate::network::{FaultyNetwork, NetworkFaults};
use crate::output::{Destination, Input, Output};
use crate::replica::Replica;
use crate::request::Request;
use crate::service::{KvService, Service};
use crate::types::ReplicaId;

/// A message in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The sender.
    pub from: ReplicaId,
    /// The recipient.
    pub to: ReplicaId,
    /// The message and its signature.
    pub signed: Signed,
}

/// An output of one replica other than a send, which the cluster routes
/// itself: client acknowledgements, refusals, executions and rejections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The replica that produced it.
    pub replica: ReplicaId,
    /// What it produced.
    pub output: Output,
}

/// How the replicas of a [`Cluster`] authenticate each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterAuth {
    /// No signatures ([`Unauthenticated`]): the replicas share one process
    /// and one trust domain.
    None,
    /// Ed25519 signatures with keys derived from this seed
    /// ([`Ed25519Auth::from_seed`]), so runs replay exactly.
    Seeded(u64),
}

/// Why a [`Cluster`] cannot be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterError {
    /// The configuration is invalid.
    Config(ConfigError),
    /// The keys are invalid.
    Keys(KeyError),
    /// A durable replica could not start again from its disk.
    Restore(RestoreError),
    /// The cluster has no disks: it was not built with
    /// [`Cluster::durable`].
    NotDurable,
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::Config(e) => e.fmt(f),
            ClusterError::Keys(e) => e.fmt(f),
            ClusterError::Restore(e) => write!(f, "cannot restore from disk: {e}"),
            ClusterError::NotDurable => f.write_str("the cluster's replicas have no disks"),
        }
    }
}

impl std::error::Error for ClusterError {}

/// Decides whether the network delivers an envelope (`true`) or drops it.
pub type Filter = Box<dyn FnMut(&Envelope) -> bool>;

/// `n` replicas wired together by a deterministic in-memory network.
pub struct Cluster<S> {
    config: Config,
    auth: ClusterAuth,
    replicas: Vec<Replica<S>>,
    in_flight: VecDeque<Envelope>,
    events: Vec<Event>,
    filter: Option<Filter>,
    faults: Option<FaultyNetwork>,
    delivered: u64,
    scratch: Vec<Output>,
    /// One disk per replica, in a durable cluster.
    disks: Option<Vec<Disk>>,
}

impl Cluster<KvService> {
    /// A cluster of `n` unauthenticated replicas running the default
    /// key-value service.
    pub fn kv(n: usize) -> Result<Cluster<KvService>, ClusterError> {
        Cluster::new(&Config::new(n), ClusterAuth::None, |_| KvService::default())
    }

    /// The same with Ed25519 signatures, keys derived from `seed`.
    pub fn kv_signed(n: usize, seed: u64) -> Result<Cluster<KvService>, ClusterError> {
        Cluster::new(&Config::new(n), ClusterAuth::Seeded(seed), |_| {
            KvService::default()
        })
    }
}

impl<S: Service> Cluster<S> {
    /// A cluster of `config.n` replicas authenticated as `auth` says;
    /// `service` builds each one's service.
    pub fn new(
        config: &Config,
        auth: ClusterAuth,
        service: impl FnMut(ReplicaId) -> S,
    ) -> Result<Cluster<S>, ClusterError> {
        Cluster::build(config, auth, service, false)
    }

    /// The same with durable replicas, each with a disk of its own: see
    /// [`crash_with_disk`](Self::crash_with_disk).
    pub fn durable(
        config: &Config,
        auth: ClusterAuth,
        service: impl FnMut(ReplicaId) -> S,
    ) -> Result<Cluster<S>, ClusterError> {
        Cluster::build(config, auth, service, true)
    }

    fn build(
        config: &Config,
        auth: ClusterAuth,
        mut service: impl FnMut(ReplicaId) -> S,
        durable: bool,
    ) -> Result<Cluster<S>, ClusterError> {
        config
            .validate(ReplicaId(0))
            .map_err(ClusterError::Config)?;
        let mut cluster = Cluster {
            config: config.clone(),
            auth,
            replicas: Vec::with_capacity(config.n),
            in_flight: VecDeque::new(),
            events: Vec::new(),
            filter: None,
            faults: None,
            delivered: 0,
            scratch: Vec::new(),
            disks: durable.then(|| vec![Disk::default(); config.n]),
        };
        let mut first = Vec::new();
        for i in 0..config.n {
            let id = ReplicaId(i as u32);
            let records = durable.then(Vec::new);
            let (replica, outputs) = cluster.start(id, service(id), records)?;
            cluster.replicas.push(replica);
            first.push(outputs);
        }
        for (i, outputs) in first.into_iter().enumerate() {
            cluster.carry_out(ReplicaId(i as u32), outputs);
        }
        Ok(cluster)
    }

    /// Starts replica `id`: fresh without `records`, durable from them
    /// with. Returns it and its first outputs.
    fn start(
        &self,
        id: ReplicaId,
        service: S,
        records: Option<Vec<Record>>,
    ) -> Result<(Replica<S>, Vec<Output>), ClusterError> {
        let config = &self.config;
        let mut out = Vec::new();
        let replica = match (self.auth, records) {
            (ClusterAuth::None, None) => {
                Replica::new(config, id, service, Unauthenticated).map_err(ClusterError::Config)
            }
            (ClusterAuth::None, Some(records)) => {
                Replica::restore(config, id, service, Unauthenticated, records, &mut out)
                    .map_err(ClusterError::Restore)
            }
            (ClusterAuth::Seeded(seed), records) => {
                let keys =
                    Ed25519Auth::from_seed(seed, config.n, id).map_err(ClusterError::Keys)?;
                match records {
                    None => Replica::new(config, id, service, keys).map_err(ClusterError::Config),
                    Some(records) => Replica::restore(config, id, service, keys, records, &mut out)
                        .map_err(ClusterError::Restore),
                }
            }
        }?;
        Ok((replica, out))
    }

    /// The number of replicas.
    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    /// Always false: a cluster has at least one replica.
    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    /// Replica `id`. Panics if `id` is not a member.
    pub fn replica(&self, id: ReplicaId) -> &Replica<S> {
        &self.replicas[id.index()]
    }

    /// Replica `id`, to change its state directly in the core's own tests.
    #[cfg(test)]
    pub(crate) fn replica_mut(&mut self, id: ReplicaId) -> &mut Replica<S> {
        &mut self.replicas[id.index()]
    }

    /// Replaces replica `id` with a fresh one, as after a crash and a
    /// restart with empty memory: same keys, nothing else (in a durable
    /// cluster, an empty disk too). Messages in flight to it are still
    /// delivered.
    pub fn restart(&mut self, id: ReplicaId, service: S) -> Result<(), ClusterError> {
        self.check_member(id)?;
        let records = self.disks.as_mut().map(|disks| {
            disks[id.index()] = Disk::default();
            Vec::new()
        });
        let (fresh, outputs) = self.start(id, service, records)?;
        self.replicas[id.index()] = fresh;
        self.carry_out(id, outputs);
        Ok(())
    }

    /// A crash of replica `id` that its disk survives: what it had synced
    /// stays, what it had only written is lost, and it starts again from
    /// the disk ([`Replica::restore`]).
    pub fn crash_with_disk(&mut self, id: ReplicaId, service: S) -> Result<(), ClusterError> {
        self.check_member(id)?;
        let disks = self.disks.as_mut().ok_or(ClusterError::NotDurable)?;
        let records = disks[id.index()].crash();
        let (restored, outputs) = self.start(id, service, Some(records))?;
        self.replicas[id.index()] = restored;
        self.carry_out(id, outputs);
        Ok(())
    }

    /// A crash of replica `id` in the middle of a step: it takes `input`,
    /// but only the first `carried` of the step's outputs are carried out
    /// (records written, and synced as the contract says before any other
    /// output); the rest are lost, and so is what the disk had not
    /// synced. Returns how many outputs the step had. The replica is then
    /// down: give it nothing more until [`crash_with_disk`] or
    /// [`restart`] starts it again.
    ///
    /// [`crash_with_disk`]: Self::crash_with_disk
    /// [`restart`]: Self::restart
    pub fn crash_in_step(
        &mut self,
        id: ReplicaId,
        input: Input,
        carried: usize,
    ) -> Result<usize, ClusterError> {
        self.check_member(id)?;
        if self.disks.is_none() {
            return Err(ClusterError::NotDurable);
        }
        let mut outputs = Vec::new();
        self.replicas[id.index()].step(input, &mut outputs);
        let total = outputs.len();
        outputs.truncate(carried);
        self.carry_out(id, outputs);
        if let Some(disk) = self.disks.as_mut().and_then(|d| d.get_mut(id.index())) {
            disk.crash();
        }
        Ok(total)
    }

    /// Syncs replica `id`'s disk now, as a caller may at any moment (a
    /// sync point earlier than the contract needs). Nothing happens in a
    /// cluster without disks.
    pub fn sync(&mut self, id: ReplicaId) {
        if let Some(disk) = self.disks.as_mut().and_then(|d| d.get_mut(id.index())) {
            disk.sync();
        }
    }

    /// The records replica `id` has synced, oldest first, in a durable
    /// cluster.
    pub fn disk(&self, id: ReplicaId) -> Option<&[Record]> {
        Some(self.disks.as_ref()?.get(id.index())?.synced())
    }

    /// How many syncs replica `id`'s disk made that wrote something.
    pub fn syncs(&self, id: ReplicaId) -> u64 {
        self.disks
            .as_ref()
            .and_then(|d| d.get(id.index()))
            .map_or(0, Disk::syncs)
    }

    fn check_member(&self, id: ReplicaId) -> Result<(), ClusterError> {
        if id.index() < self.replicas.len() {
            return Ok(());
        }
        Err(ClusterError::Config(ConfigError::UnknownReplica {
            id,
            n: self.config.n,
        }))
    }

    /// Every replica, in id order.
    pub fn replicas(&self) -> &[Replica<S>] {
        &self.replicas
    }

    /// A client hands `request` to replica `to`. Nothing is delivered yet.
    pub fn submit(&mut self, to: ReplicaId, request: Request) {
        self.step(to, Input::Request(request));
    }

    /// Gives every replica one tick.
    pub fn tick_all(&mut self) {
        for i in 0..self.replicas.len() {
            self.step(ReplicaId(i as u32), Input::Tick);
        }
    }

    /// Puts a message on the network as if `from` had sent it, signed with
    /// `from`'s own key: how tests play a Byzantine replica that lies in
    /// what it says. `from` need not be a member; a non-member's message
    /// goes unsigned.
    pub fn inject(&mut self, from: ReplicaId, to: ReplicaId, message: Message) {
        let signed = match self.replicas.get(from.index()) {
            Some(replica) => replica.sign(message),
            None => Signed {
                message,
                signature: None,
            },
        };
        self.inject_signed(from, to, signed);
    }

    /// Puts a message on the network exactly as given, signature and all:
    /// how tests forge or tamper with messages.
    pub fn inject_signed(&mut self, from: ReplicaId, to: ReplicaId, signed: Signed) {
        self.in_flight.push_back(Envelope { from, to, signed });
    }

    /// Installs a filter that every envelope passes before delivery.
    pub fn set_filter(&mut self, filter: impl FnMut(&Envelope) -> bool + 'static) {
        self.filter = Some(Box::new(filter));
    }

    /// Removes the filter: everything is delivered again.
    pub fn clear_filter(&mut self) {
        self.filter = None;
    }

    /// Makes the network lose, duplicate and reorder messages as `faults`
    /// says, or (with `None`) deliver every message once, in order.
    pub fn set_faults(&mut self, faults: Option<NetworkFaults>) {
        self.faults = faults.map(FaultyNetwork::new);
    }

    /// Takes every message in flight off the network, oldest first, for a
    /// caller that runs its own network (a simulator). Deliver them with
    /// [`deliver`](Self::deliver).
    pub fn take_in_flight(&mut self) -> Vec<Envelope> {
        self.in_flight.drain(..).collect()
    }

    /// Delivers `envelope` now, bypassing the network's queue, filter and
    /// faults. An envelope to a non-member is dropped.
    pub fn deliver(&mut self, envelope: Envelope) {
        if envelope.to.index() < self.replicas.len() {
            self.delivered += 1;
            let input = Input::Message {
                from: envelope.from,
                signed: envelope.signed,
            };
            self.step(envelope.to, input);
        }
    }

    /// Gives replica `id` one tick.
    pub fn tick(&mut self, id: ReplicaId) {
        if id.index() < self.replicas.len() {
            self.step(id, Input::Tick);
        }
    }

    /// Delivers the next message in flight: the oldest, unless faults
    /// reorder them. Returns false when none is in flight.
    pub fn deliver_next(&mut self) -> bool {
        let envelope = match self.faults.as_mut() {
            None => self.in_flight.pop_front(),
            Some(network) if !self.in_flight.is_empty() => {
                let decision = network.decide(self.in_flight.len());
                let envelope = self.in_flight.remove(decision.index);
                if decision.drop {
                    return true;
                }
                if decision.duplicate {
                    if let Some(copy) = envelope.clone() {
                        self.in_flight.push_back(copy);
                    }
                }
                envelope
            }
            Some(_) => None,
        };
        let Some(envelope) = envelope else {
            return false;
        };
        if let Some(filter) = self.filter.as_mut() {
            if !filter(&envelope) {
                return true;
            }
        }
        self.deliver(envelope);
        true
    }

    /// Delivers messages until none is in flight, and returns how many were
    /// delivered. The normal case always quiesces; a run that does not
    /// within ten million deliveries is a bug and panics.
    pub fn stabilize(&mut self) -> u64 {
        let before = self.delivered;
        while self.deliver_next() {
            assert!(
                self.delivered - before < 10_000_000,
                "cluster did not quiesce"
            );
        }
        self.delivered - before
    }

    /// Messages waiting to be delivered, oldest first.
    pub fn in_flight(&self) -> impl Iterator<Item = &Envelope> {
        self.in_flight.iter()
    }

    /// Events produced so far and not yet taken.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Takes the events produced so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Total messages delivered since the cluster was built.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    fn step(&mut self, id: ReplicaId, input: Input) {
        let mut outputs = std::mem::take(&mut self.scratch);
        self.replicas[id.index()].step(input, &mut outputs);
        self.carry_out(id, outputs.drain(..));
        self.scratch = outputs;
    }

    /// Carries out replica `id`'s outputs in order: a record goes to its
    /// disk, and the disk syncs before the next output that is not one.
    fn carry_out(&mut self, id: ReplicaId, outputs: impl IntoIterator<Item = Output>) {
        for output in outputs {
            let disk = self.disks.as_mut().and_then(|d| d.get_mut(id.index()));
            match (output, disk) {
                (Output::Persist(record), Some(disk)) => disk.write(record),
                (Output::Persist(_), None) => {}
                (other, disk) => {
                    if let Some(disk) = disk.filter(|d| d.dirty()) {
                        disk.sync();
                    }
                    match other {
                        Output::Send { to, signed } => self.route(id, to, signed),
                        other => self.events.push(Event {
                            replica: id,
                            output: other,
                        }),
                    }
                }
            }
        }
    }

    fn route(&mut self, from: ReplicaId, to: Destination, signed: Signed) {
        match to {
            Destination::Replica(to) => self.in_flight.push_back(Envelope { from, to, signed }),
            Destination::Others => {
                for i in 0..self.replicas.len() {
                    let to = ReplicaId(i as u32);
                    if to != from {
                        self.in_flight.push_back(Envelope {
                            from,
                            to,
                            signed: signed.clone(),
                        });
                    }
                }
            }
        }
    }
}

impl<S> fmt::Debug for Cluster<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("replicas", &self.replicas.len())
            .field("in_flight", &self.in_flight.len())
            .field("delivered", &self.delivered)
            .finish()
    }
}
