//! The replica: its state, its one entry point, and read-only accessors.

use crate::auth::Authenticator;

use crate::checkpoint::{Checkpoints, Snapshot};
use crate::client_keys::ClientKeys;
use crate::client_table::ClientTable;
use crate::config::{Config, ConfigError};
use crate::digest::Digest;
use crate::follow::Follow;
use crate::log::Log;
use crate::message::{Message, Signed};
use crate::output::{Destination, Input, Output};
use crate::pending::Pending;
use crate::quorum::Quorums;
use crate::rejection::Rejection;
use crate::retransmit::Reports;
use crate::service::Service;
use crate::state_transfer::Transfer;
use crate::types::{ReplicaId, Seq, View};
use crate::view_change::ViewChanges;

/// One PBFT replica: a deterministic state machine over [`Input`]s.
///
/// See the [crate documentation](crate) for the contract of
/// [`step`](Replica::step).
pub struct Replica<S> {
    pub(crate) id: ReplicaId,
    pub(crate) quorums: Quorums,
    pub(crate) view: View,
    /// The last sequence number this replica assigned as primary.
    pub(crate) last_assigned: Seq,
    /// The last sequence number executed; everything up to it is executed.
    pub(crate) last_executed: Seq,
    pub(crate) log: Log,
    pub(crate) clients: ClientTable,
    /// The public keys of the clients that sign their requests.
    pub(crate) client_keys: ClientKeys,
    pub(crate) service: S,
    pub(crate) ticks: u64,
    pub(crate) auth: Box<dyn Authenticator>,
    pub(crate) checkpoints: Checkpoints,
    /// Requests the primary holds back because the window is full, with
    /// whether a client waits here for the acknowledgement.
    pub(crate) pending: Pending,
    pub(crate) vc: ViewChanges,
    pub(crate) transfer: Transfer,
    /// While changing views alone: what the views left behind commit.
    pub(crate) follow: Follow,
    pub(crate) reports: Reports,
    /// As primary: the most requests in one batch, and the most numbers
    /// in flight.
    pub(crate) max_batch: usize,
    pub(crate) max_in_flight: u64,
    /// The largest request accepted, in [`Request::size`] bytes.
    ///
    /// [`Request::size`]: crate::Request::size
    pub(crate) max_request_bytes: usize,
    /// The largest batch proposed or accepted, in [`Batch::size`] bytes.
    ///
    /// [`Batch::size`]: crate::Batch::size
    pub(crate) max_batch_bytes: usize,
    /// Whether [`Output::Persist`] records come out (built by
    /// [`Replica::restore`]).
    pub(crate) durable: bool,
}

impl<S: Service> Replica<S> {
    /// A replica `id` of a cluster described by `config`, starting in view 0
    /// with nothing executed. `auth` signs what it sends and verifies what
    /// it receives; see [`Authenticator`].
    pub fn new(
        config: &Config,
        id: ReplicaId,
        service: S,
        auth: impl Authenticator + 'static,
    ) -> Result<Replica<S>, ConfigError> {
        config.validate(id)?;
        let placeholder = Snapshot {
            digest: Digest::default(),
            service: Default::default(),
            clients: Default::default(),
            chunks: Default::default(),
        };
        let mut replica = Replica {
            id,
            quorums: match config.broken_quorum_for_self_test {
                None => Quorums::new(config.n),
                Some(q) => Quorums::new(config.n).with_broken_quorum(q),
            },
            view: View(0),
            last_assigned: Seq(0),
            last_executed: Seq(0),
            log: Log::default(),
            clients: ClientTable::new(config.max_timestamp_gap),
            client_keys: ClientKeys::new(&config.client_keys)?,
            service,
            ticks: 0,
            auth: Box::new(auth),
            checkpoints: Checkpoints::new(
                config.checkpoint_interval,
                config.window,
                config.state_chunk_bytes,
                placeholder,
            ),
            pending: Pending::default(),
            vc: ViewChanges::new(config.n, config.view_change_timeout),
            transfer: Transfer::new(config.n),
            follow: Follow::default(),
            reports: Reports::new(config.n),
            max_batch: config.max_batch,
            max_in_flight: config.max_in_flight,
            max_request_bytes: config.max_request_bytes,
            max_batch_bytes: config.max_batch_bytes,
            durable: false,
        };
        // The initial state is the checkpoint at 0, stable by definition.
        let initial = replica.current_snapshot();
        replica.checkpoints = Checkpoints::new(
            config.checkpoint_interval,
            config.window,
            config.state_chunk_bytes,
            initial,
        );
        Ok(replica)
    }

    /// Feeds one input to the replica and appends what it wants done to
    /// `out`, in order. This is the only way to change a replica's state.
    ///
    /// Never panics on a peer's message or a client's request, whatever it
    /// holds: a message the protocol does not allow is reported as
    /// [`Output::Rejected`] and otherwise ignored.
    pub fn step(&mut self, input: Input, out: &mut Vec<Output>) {
        match input {
            Input::Message { from, signed } => self.on_message(from, signed, out),
            Input::Request(request) => self.on_client_request(request, out),
            Input::Tick => self.on_tick(out),
        }
        // Any accepted input can complete a prefix of committed slots.
        self.execute_ready(out);
        self.report_gap(out);
        self.update_timer();
    }

    fn on_message(&mut self, from: ReplicaId, signed: Signed, out: &mut Vec<Output>) {
        let Signed { message, signature } = signed;
        let kind = message.kind();
        let verdict = if from.index() >= self.quorums.n() {
            Err(Rejection::NonMember)
        } else if from == self.id {
            Err(Rejection::FromSelf)
        } else if let Err(reason) = self.screen(from, &message) {
            if let Rejection::Unneeded { .. } = reason {
                self.note_late(from, &message);
            }
            Err(reason)
        } else if let Err(failure) = self.auth.verify(from, &message, signature.as_ref()) {
            // Checked once, here, before the message can touch any state.
            // The handlers then check that the message speaks for `from`.
            Err(Rejection::Unauthentic(failure))
        } else {
            match message {
                Message::Forward(request) => self.on_forward(request, out),
                Message::PrePrepare(pp) => self.on_pre_prepare(from, pp, signature, out),
                Message::Prepare(vote) => self.on_prepare(from, vote, signature, out),
                Message::Commit(vote) => self.on_commit(from, vote, signature, out),
                Message::Checkpoint(vote) => self.on_checkpoint(from, vote, signature, out),
                Message::ViewChange(vc) => self.on_view_change(from, vc, signature, out),
                Message::NewView(nv) => self.on_new_view(from, nv, out),
                Message::FetchState(fetch) => self.on_fetch_state(from, fetch, out),
                Message::State(state) => self.on_state(from, state, out),
            }
        };
        if let Err(reason) = verdict {
            out.push(Output::Rejected { from, kind, reason });
        }
    }

    /// Signs `message` as this replica.
    pub fn sign(&self, message: Message) -> Signed {
        let signature = self.auth.sign(&message);
        Signed { message, signature }
    }

    /// Signs `message` and queues it for `to`. Returns the signature, which
    /// the caller keeps when the message is part of a certificate.
    pub(crate) fn send(
        &self,
        to: Destination,
        message: Message,
        out: &mut Vec<Output>,
    ) -> Option<crate::auth::Signature> {
        let signed = self.sign(message);
        let signature = signed.signature;
        out.push(Output::Send { to, signed });
        signature
    }

    /// The authenticator this replica signs and verifies with.
    pub fn authenticator(&self) -> &dyn Authenticator {
        &*self.auth
    }

    /// This replica's id.
    pub fn id(&self) -> ReplicaId {
        self.id
    }

    /// The current view.
    pub fn view(&self) -> View {
        self.view
    }

    /// The primary of the current view.
    pub fn primary(&self) -> ReplicaId {
        self.quorums.primary(self.view)
    }

    /// True when this replica is the primary of its current view.
    pub fn is_primary(&self) -> bool {
        self.primary() == self.id
    }

    /// The cluster's fault threshold and quorum sizes.
    pub fn quorums(&self) -> &Quorums {
        &self.quorums
    }

    /// The highest sequence number executed; every number up to it is.
    pub fn last_executed(&self) -> Seq {
        self.last_executed
    }

    /// How many ticks this replica has been given.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// The replicated service, for reading its state.
    pub fn service(&self) -> &S {
        &self.service
    }

    /// How many sequence numbers the message log holds.
    pub fn log_len(&self) -> usize {
        self.log.len()
    }
}
