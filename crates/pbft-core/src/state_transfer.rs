//! State transfer: a replica that is behind catches up from its peers.
//!
//! A replica learns it is behind when a quorum proves a checkpoint it has
//! not reached, when `f + 1` peers announce checkpoints beyond its window,
//! or when a new view starts from a checkpoint it lacks. On its next tick
//! it asks its peers for state. A peer answers with its stable checkpoint:
//! the snapshots, the proof that `2f + 1` replicas signed their digest, and
//! a committed certificate for every number it executed after it. The
//! replica checks the proof and the digest, restores the state, and then
//! executes the committed batches in order, so it never executes anything
//! out of order and never trusts a single peer. The others never wait for
//! it.
//!
//! A replica can also miss a few messages in the middle of an interval:
//! then a number it accepted a pre-prepare for does not execute, because
//! prepares or commits for it (or for a number before it) never arrived.
//! When execution stalls like that for half a base timeout, it asks for
//! the numbers after its last executed one, and a peer answers with the
//! committed certificates it has for them (and no snapshot, which the
//! replica does not need). Each certificate carries its own quorum of
//! signed commits, so it is checked on its own.

use std::sync::Arc;

use crate::certificate::{CertificateError, CommittedCertificate};
use crate::checkpoint::{Snapshot, StableCheckpoint};
use crate::client_table::ClientTable;
use crate::message::{ChunkRange, FetchState, Message, StateTransfer};
use crate::output::{Destination, Output};
use crate::rejection::Rejection;
use crate::replica::Replica;
use crate::service::Service;
use crate::state_fetch::{ChunkFetch, CHUNKS_SERVED_PER_TICK};
use crate::types::{ReplicaId, Seq};
use crate::view_change::backoff;

/// Why a state transfer was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateError {
    /// The checkpoint is not above what this replica already executed.
    Stale {
        /// The checkpoint offered.
        offered: Seq,
        /// This replica's last executed number.
        executed: Seq,
    },
    /// The checkpoint's proof does not check.
    Proof(CertificateError),
    /// The snapshots do not hash to the proven digest.
    DigestMismatch,
    /// The snapshots do not decode.
    Snapshot(String),
    /// A manifest whose chunk digests do not hash to the proven digest, or
    /// are not as many as its length takes.
    ManifestMismatch,
    /// A chunk whose bytes do not match its digest in the manifest.
    ChunkMismatch {
        /// The chunk's index.
        index: u64,
    },
    /// A chunk of no transfer under way: another checkpoint's, one not in
    /// the manifest, or one already held (a late or repeated answer).
    UnexpectedChunk {
        /// The checkpoint it claims to be part of.
        checkpoint: Seq,
        /// Its index.
        index: u64,
    },
    /// A request for a chunk that the checkpoint's state does not have.
    NoSuchChunk {
        /// The index asked for.
        index: u64,
    },
    /// The committed certificate for the next number to execute is missing
    /// or does not check.
    Committed {
        /// The number this replica needs next.
        seq: Seq,
        /// What is wrong with the certificate, if there is one.
        error: Option<CertificateError>,
    },
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::Stale { offered, executed } => {
                write!(f, "checkpoint {offered} is not above executed {executed}")
            }
            StateError::Proof(e) => write!(f, "checkpoint proof: {e}"),
            StateError::DigestMismatch => f.write_str("the state does not match its digest"),
            StateError::Snapshot(e) => write!(f, "the snapshot does not decode: {e}"),
            StateError::ManifestMismatch => {
                f.write_str("the chunk digests do not match the state digest")
            }
            StateError::ChunkMismatch { index } => {
                write!(f, "chunk {index} does not match its digest")
            }
            StateError::UnexpectedChunk { checkpoint, index } => {
                write!(f, "chunk {index} of checkpoint {checkpoint} is not awaited")
            }
            StateError::NoSuchChunk { index } => write!(f, "the state has no chunk {index}"),
            StateError::Committed { seq, error: None } => {
                write!(f, "no committed certificate for {seq}")
            }
            StateError::Committed {
                seq,
                error: Some(e),
            } => write!(f, "committed certificate for {seq}: {e}"),
        }
    }
}

/// State-transfer bookkeeping of one replica.
#[derive(Clone, Debug)]
pub(crate) struct Transfer {
    /// The highest checkpoint this replica knows it lacks.
    target: Option<Seq>,
    /// The tick of the last request for state.
    last_fetch: Option<u64>,
    /// The tick each peer was last served a checkpoint or committed
    /// certificates, to bound the work a peer can demand.
    served: Vec<Option<u64>>,
    /// For each peer: the tick it was last served chunks, and how many in
    /// that tick (at most [`CHUNKS_SERVED_PER_TICK`]).
    chunks_served: Vec<(u64, u64)>,
    /// The transfer in chunks under way, if any.
    pub(crate) fetch: Option<ChunkFetch>,
    /// The highest checkpoint each peer announced beyond the window.
    ahead: Vec<Option<Seq>>,
    /// Execution stalled with a pre-prepared number waiting:
    /// `last_executed` when the stall was first seen, and the tick.
    stall: Option<(Seq, u64)>,
    /// How long to wait before asking again while nothing executes:
    /// doubled by each request, back to the base timeout on progress.
    wait: u64,
    /// `last_executed` when `wait` was last set back.
    progress: Seq,
}

impl Transfer {
    pub(crate) fn new(n: usize) -> Transfer {
        Transfer {
            target: None,
            last_fetch: None,
            served: vec![None; n],
            chunks_served: vec![(0, 0); n],
            fetch: None,
            ahead: vec![None; n],
            stall: None,
            wait: 0,
            progress: Seq(0),
        }
    }
}

/// The bytes of requests and snapshots below which a state transfer is
/// answered as often as a status report (see
/// [`ANSWERS_PER_TICK`](crate::ANSWERS_PER_TICK)); a larger one goes to a
/// peer at most once per timeout.
pub const SMALL_STATE_BYTES: usize = 256 << 10;

impl<S: Service> Replica<S> {
    /// Notes that a proven checkpoint at `seq` lies beyond this replica's
    /// state. The request for state goes out on the next tick, so a
    /// replica that merely runs a little late catches up by itself.
    ///
    /// A target further than any before is news (a checkpoint proven, or
    /// announced by `f + 1` peers, at most one per checkpoint interval),
    /// so the wait between requests starts over: a replica whose requests
    /// went unanswered for long, and so asks rarely, asks as soon as it
    /// hears from its peers again.
    pub(crate) fn note_behind(&mut self, seq: Seq) {
        if seq > self.last_executed && !matches!(self.transfer.target, Some(t) if t >= seq) {
            self.transfer.target = Some(seq);
            self.transfer.wait = self.config_timeout();
        }
    }

    /// A peer announced a checkpoint beyond this replica's window. Once
    /// `f + 1` have, at least one honest replica is that far ahead.
    pub(crate) fn note_ahead(&mut self, from: ReplicaId, seq: Seq) {
        let slot = &mut self.transfer.ahead[from.index()];
        if !matches!(*slot, Some(s) if s >= seq) {
            *slot = Some(seq);
        }
        let mut claims: Vec<Seq> = self.transfer.ahead.iter().flatten().copied().collect();
        claims.sort_unstable_by(|a, b| b.cmp(a));
        if let Some(&seq) = claims.get(self.quorums.weak() - 1) {
            self.note_behind(seq);
        }
    }

    /// On each tick: asks for state when behind, at most once per
    /// view-change timeout, and less often while nothing executes (the
    /// wait doubles, up to `MAX_BACKOFF` timeouts). A replica that asked
    /// for nothing for two timeouts asks anyway, as a status report (the BFT library's status
    /// messages, Castro's thesis §5.2): only a peer that holds something it
    /// lacks answers, so a replica that missed every message for the last
    /// numbers still learns them.
    pub(crate) fn fetch_if_behind(&mut self, out: &mut Vec<Output>) {
        self.note_stall();
        self.continue_fetch(out);
        if self
            .transfer
            .target
            .is_some_and(|t| t <= self.last_executed)
        {
            self.transfer.target = None;
        }
        let base = self.config_timeout();
        if self.transfer.wait == 0 || self.last_executed > self.transfer.progress {
            self.transfer.wait = base;
            self.transfer.progress = self.last_executed;
        }
        let since = self
            .ticks
            .saturating_sub(self.transfer.last_fetch.unwrap_or(0));
        let due = match self.transfer.target {
            Some(_) => self.transfer.last_fetch.is_none() || since >= self.transfer.wait,
            None => since >= self.transfer.wait.max(base.saturating_mul(2)),
        };
        if !due {
            return;
        }
        self.transfer.last_fetch = Some(self.ticks);
        // Asking again while nothing executes waits longer each time, so
        // that a slow network is not flooded with requests and answers.
        self.transfer.wait = backoff(self.transfer.wait, base);
        if self.transfer.stall.is_some() {
            self.resend_stalled(out);
        }
        let fetch = FetchState::new(self.last_executed.next(), self.id);
        self.send(Destination::Others, Message::FetchState(fetch), out);
    }

    /// Notes a stall (see the module documentation): once execution has
    /// waited half a base timeout with a pre-prepared number pending, this
    /// replica is behind by the number after its last executed one.
    fn note_stall(&mut self) {
        if !self.has_unexecuted_pre_prepare() {
            self.transfer.stall = None;
            return;
        }
        match self.transfer.stall {
            Some((at, since)) if at == self.last_executed => {
                let wait = (self.config_timeout() / 2).max(1);
                if self.ticks >= since.saturating_add(wait) {
                    self.note_behind(self.last_executed.next());
                }
            }
            _ => self.transfer.stall = Some((self.last_executed, self.ticks)),
        }
    }

    /// A peer asks for state from `fetch.seq` on: answer with the stable
    /// checkpoint if it reaches that far (its whole state when that is one
    /// chunk, its manifest otherwise), or else with the committed
    /// certificates from `fetch.seq` on, when there are any. A request for
    /// chunks of a checkpoint this replica holds is answered with them; of
    /// one it no longer holds, as a plain request, so that the asker
    /// learns the later checkpoint.
    pub(crate) fn on_fetch_state(
        &mut self,
        from: ReplicaId,
        fetch: FetchState,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        if fetch.replica != from {
            return Err(Rejection::SenderMismatch {
                claimed: fetch.replica,
            });
        }
        if let Some(range) = fetch.chunks {
            let held = self
                .checkpoints
                .own_snapshot(range.checkpoint)
                .filter(|own| own.digest == range.digest)
                .cloned();
            if let Some(snapshot) = held {
                return self.serve_chunks(from, range, &snapshot, out);
            }
        }
        let stable = self.checkpoints.stable.clone();
        let whole = stable.seq > Seq(0) && stable.seq >= fetch.seq;
        if let (false, Some(report)) = (whole, &fetch.report) {
            // A stalled peer's status report: it needs no snapshot.
            return self.answer_report(from, fetch.seq, report, out);
        }
        let committed = if whole {
            self.committed_after(stable.seq)
        } else {
            // The peer executed everything before `fetch.seq`.
            self.committed_after(Seq(fetch.seq.0.saturating_sub(1)))
        };
        if !whole && committed.is_empty() {
            // Nothing to offer yet; a peer further ahead will answer.
            return Ok(());
        }
        let (service, clients, manifest) = if whole {
            let Some(snapshot) = self.checkpoints.own_snapshot(stable.seq).cloned() else {
                return Ok(());
            };
            if snapshot.chunks.len() <= 1 {
                // One chunk: the state goes whole, as it always did.
                (snapshot.service, snapshot.clients, None)
            } else {
                let manifest = snapshot.manifest();
                (Default::default(), Default::default(), Some(manifest))
            }
        } else {
            (Default::default(), Default::default(), None)
        };
        let state = Message::State(StateTransfer {
            checkpoint: stable,
            service,
            clients,
            committed,
            replica: self.id,
            manifest,
            chunk: None,
        });
        // A small answer costs no more than a status report's and is
        // bounded the same way; a large one (or a manifest, which starts
        // a transfer in chunks) goes to a peer at most once per timeout.
        let bytes = state.payload_size();
        if bytes <= SMALL_STATE_BYTES
            && !matches!(&state, Message::State(s) if s.manifest.is_some())
        {
            if !self.may_answer(from) {
                return Err(Rejection::TooFrequent);
            }
            self.spend_answer(from, bytes);
        } else {
            let wait = self.config_timeout();
            let last = &mut self.transfer.served[from.index()];
            if last.is_some_and(|t| self.ticks < t.saturating_add(wait)) {
                return Err(Rejection::TooFrequent);
            }
            *last = Some(self.ticks);
        }
        self.send(Destination::Replica(from), state, out);
        Ok(())
    }

    /// Sends `from` the chunks of `snapshot` it asks for, each in its own
    /// message, at most [`CHUNKS_SERVED_PER_TICK`] per tick.
    fn serve_chunks(
        &mut self,
        from: ReplicaId,
        range: ChunkRange,
        snapshot: &Snapshot,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        let total = snapshot.chunks.len() as u64;
        if range.first >= total {
            return Err(Rejection::InvalidState(StateError::NoSuchChunk {
                index: range.first,
            }));
        }
        let served = &mut self.transfer.chunks_served[from.index()];
        if served.0 != self.ticks {
            *served = (self.ticks, 0);
        }
        let count = range
            .count
            .min(CHUNKS_SERVED_PER_TICK - served.1)
            .min(total - range.first);
        if count == 0 {
            return Err(Rejection::TooFrequent);
        }
        served.1 += count;
        let chunk_bytes = self.checkpoints.chunk_bytes;
        for index in range.first..range.first + count {
            let state = StateTransfer {
                checkpoint: StableCheckpoint {
                    seq: range.checkpoint,
                    digest: range.digest,
                    proof: Vec::new(),
                },
                service: Default::default(),
                clients: Default::default(),
                committed: Vec::new(),
                replica: self.id,
                manifest: None,
                chunk: Some(crate::message::Chunk {
                    index,
                    bytes: Arc::new(snapshot.chunk(chunk_bytes, index)),
                }),
            };
            self.send(Destination::Replica(from), Message::State(state), out);
        }
        Ok(())
    }

    /// Committed certificates for the consecutive committed numbers after
    /// `seq` whose batches this replica holds, as many as fit in
    /// `max_batch_bytes` of batches (at least one), so that the answer
    /// fits the transport; the peer asks again for the rest.
    fn committed_after(&self, seq: Seq) -> Vec<CommittedCertificate> {
        let mut bytes = 0usize;
        let mut certs = Vec::new();
        for (n, _) in self.log.after(seq) {
            let Some(cert) = self.committed_certificate(n) else {
                break;
            };
            let Some(size) = cert
                .pre_prepare()
                .and_then(|pp| pp.batch.as_ref())
                .map(|batch| batch.size())
            else {
                break;
            };
            bytes = bytes.saturating_add(size);
            if !certs.is_empty() && bytes > self.max_batch_bytes {
                break;
            }
            certs.push(cert);
        }
        certs
    }

    /// The committed certificate for `seq`, if this replica holds one.
    pub(crate) fn committed_certificate(&self, seq: Seq) -> Option<CommittedCertificate> {
        self.log.get(seq)?.committed_certificate()
    }

    /// State from a peer: checked against the proof, then restored.
    pub(crate) fn on_state(
        &mut self,
        from: ReplicaId,
        state: StateTransfer,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        if state.replica != from {
            return Err(Rejection::SenderMismatch {
                claimed: state.replica,
            });
        }
        if let Some(chunk) = state.chunk {
            // Checked against the manifest of the transfer under way.
            return self.on_chunk(from, &state.checkpoint, chunk, out);
        }
        let checkpoint = state.checkpoint;
        let seq = checkpoint.seq;
        if seq <= self.last_executed {
            // Only the committed certificates can help: each proves itself.
            let executed = self.last_executed;
            let certs: Vec<CommittedCertificate> = state
                .committed
                .into_iter()
                .filter(|cert| cert.pre_prepare().is_some_and(|pp| pp.seq > executed))
                .collect();
            if certs.is_empty() {
                return Err(Rejection::InvalidState(StateError::Stale {
                    offered: seq,
                    executed,
                }));
            }
            return match self.adopt_committed(executed, certs) {
                (0, Some(error)) => Err(Rejection::InvalidState(error)),
                _ => Ok(()),
            };
        }
        checkpoint
            .check(&self.quorums, &*self.auth)
            .map_err(|e| Rejection::InvalidState(StateError::Proof(e)))?;
        if let Some(manifest) = state.manifest {
            return self.on_manifest(checkpoint, manifest, state.committed, out);
        }
        let snapshot = Snapshot::of(
            Arc::unwrap_or_clone(state.service),
            Arc::unwrap_or_clone(state.clients),
            self.checkpoints.chunk_bytes,
        );
        if snapshot.digest != checkpoint.digest {
            return Err(Rejection::InvalidState(StateError::DigestMismatch));
        }
        self.restore_state(checkpoint, snapshot, state.committed, out)
    }

    /// Restores a proven checkpoint's state, whose digest is checked, then
    /// takes the committed certificates after it.
    pub(crate) fn restore_state(
        &mut self,
        checkpoint: StableCheckpoint,
        snapshot: Snapshot,
        committed: Vec<CommittedCertificate>,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        let (seq, digest) = (checkpoint.seq, checkpoint.digest);
        // Decode the client table first, so that a bad snapshot changes
        // nothing.
        let mut clients = ClientTable::default();
        clients
            .restore(&snapshot.clients)
            .map_err(|e| Rejection::InvalidState(StateError::Snapshot(e)))?;
        self.service
            .restore(&snapshot.service)
            .map_err(|e| Rejection::InvalidState(StateError::Snapshot(e)))?;
        let answers = self.clients.replace_replies(clients);
        self.last_executed = seq;
        self.last_assigned = self.last_assigned.max(seq);
        self.checkpoints.install(checkpoint, snapshot);
        // A durable replica records the state (a base) before it says it
        // restored it, and before it answers any client from it.
        self.collect_garbage(seq, out);
        out.push(Output::Restored { seq, digest });
        out.extend(answers);
        if self.transfer.target.is_some_and(|t| t <= seq) {
            self.transfer.target = None;
        }
        if self.transfer.fetch.as_ref().is_some_and(|f| f.seq() <= seq) {
            self.transfer.fetch = None;
        }
        // Certificates that do not check are simply not taken: the restored
        // state stands on its own proof.
        let _ = self.adopt_committed(seq, committed);
        Ok(())
    }

    /// Takes the committed batches after a restored checkpoint, in order,
    /// stopping at the first that does not check or leaves a gap; the
    /// caller's `step` then executes them in order. Returns how many it
    /// took, and why it stopped early, if it did.
    fn adopt_committed(
        &mut self,
        after: Seq,
        certs: Vec<CommittedCertificate>,
    ) -> (usize, Option<StateError>) {
        let mut next = after.next();
        let mut adopted = 0;
        for cert in certs {
            let pp = match cert.pre_prepare() {
                Some(pp) if pp.seq == next => pp.clone(),
                _ => {
                    let error = StateError::Committed {
                        seq: next,
                        error: None,
                    };
                    return (adopted, Some(error));
                }
            };
            if let Err(e) = cert.check(&self.quorums, &*self.auth) {
                let error = StateError::Committed {
                    seq: next,
                    error: Some(e),
                };
                return (adopted, Some(error));
            }
            // The certificate is kept beside whatever this replica holds
            // for the number in its current view, which stays as it is: a
            // pre-prepare it accepted there keeps refusing a conflicting
            // one, and its prepared certificate stays for view changes to
            // carry (§4.4). Execution takes the certified batch.
            let view = self.view;
            self.log.slot_mut(view, pp.seq).proof = Some(cert);
            self.last_assigned = self.last_assigned.max(next);
            next = next.next();
            adopted += 1;
        }
        (adopted, None)
    }

    fn config_timeout(&self) -> u64 {
        self.vc_base_timeout()
    }

    /// The checkpoint this replica knows it lacks, if any.
    pub fn behind(&self) -> Option<Seq> {
        self.transfer.target
    }
}
