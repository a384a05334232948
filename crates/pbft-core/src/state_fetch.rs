//! Fetching a checkpoint's state in chunks (a flat form of the paper's
//! partition tree, TOCS §5.3.2).
//!
//! A peer answers a plain request for state with its stable checkpoint's
//! proof and *manifest* (the state's length and each chunk's digest)
//! whenever the state takes more than one chunk. The replica checks the
//! manifest against the `2f + 1`-signed digest, and from then on fetches
//! the chunks it lacks, a few from each peer per tick, checking each
//! against its digest the moment it arrives: a bad chunk is dropped
//! (`StateError::ChunkMismatch`), its sender is asked for nothing more in
//! this transfer, and the chunk is asked of another peer. A chunk that does
//! not come within [`chunk_wait`] ticks is asked again, of another peer: one
//! that let a chunk time out is asked for nothing more until every other
//! peer has let one time out too. Once every chunk is in, the snapshots are
//! rebuilt and restored, and the committed certificates that came with the
//! manifest execute, as for a state that arrives whole.
//!
//! What a replica buffers is bounded by one checkpoint's state: chunks are
//! kept only for the one manifest being fetched, only where the manifest
//! has a chunk not yet held, and only once checked. A valid manifest of a
//! later checkpoint (peers moved on and collected the old one) replaces the
//! transfer; the chunks whose digests the two manifests share at the same
//! index are kept, and so are those of the replica's own stable state, so
//! only what changed travels.

use std::sync::Arc;

use crate::certificate::CommittedCertificate;
use crate::checkpoint::{Snapshot, StableCheckpoint};
use crate::chunks::{assemble, chunk_count, chunk_digest, manifest_digest};
use crate::digest::Digest;
use crate::message::{Chunk, ChunkRange, FetchState, Manifest, Message};
use crate::output::{Destination, Output};
use crate::rejection::Rejection;
use crate::replica::Replica;
use crate::service::Service;
use crate::state_transfer::StateError;
use crate::types::{ReplicaId, Seq};

/// The most chunks a replica asks one peer for at a time: a new request
/// goes out only as earlier ones are answered or time out.
pub const CHUNKS_ASKED_PER_PEER: u64 = 4;

/// The most chunks a replica serves one peer per tick, so that a faulty
/// peer can make it send at most this many times
/// [`Config::state_chunk_bytes`](crate::Config::state_chunk_bytes) per
/// tick. Twice what an honest peer asks at a time, so that answers and
/// new requests crossing within one tick are still served.
pub const CHUNKS_SERVED_PER_TICK: u64 = 2 * CHUNKS_ASKED_PER_PEER;

/// Ticks to wait for a chunk before asking for it again: half a base
/// view-change timeout, at least 2.
pub(crate) fn chunk_wait(base_timeout: u64) -> u64 {
    (base_timeout / 2).max(2)
}

/// One transfer in chunks: the proven checkpoint, its manifest, and the
/// chunks received so far.
#[derive(Clone, Debug)]
pub(crate) struct ChunkFetch {
    /// The checkpoint, with its proof.
    checkpoint: StableCheckpoint,
    /// The manifest, checked against the checkpoint's digest.
    digests: Arc<Vec<Digest>>,
    /// The chunks held, each checked against its digest.
    chunks: Vec<Option<Vec<u8>>>,
    /// How many chunks are still missing.
    missing: usize,
    /// For each missing chunk asked for: whom, and at which tick.
    asked: Vec<Option<(ReplicaId, u64)>>,
    /// Peers that sent a bad chunk in this transfer: asked for no more.
    bad: Vec<bool>,
    /// Peers that let a chunk go unanswered for [`chunk_wait`] ticks:
    /// asked for no more until every other peer has been too (or is bad),
    /// so that a silent peer is not asked for the same chunks forever.
    slow: Vec<bool>,
    /// Which peer is asked first on the next tick; it turns each tick.
    rotate: usize,
    /// The committed certificates that came with the manifest, to execute
    /// after the restore.
    committed: Vec<CommittedCertificate>,
}

impl ChunkFetch {
    fn new(
        checkpoint: StableCheckpoint,
        digests: Arc<Vec<Digest>>,
        committed: Vec<CommittedCertificate>,
        n: usize,
    ) -> ChunkFetch {
        let count = digests.len();
        ChunkFetch {
            checkpoint,
            digests,
            chunks: vec![None; count],
            missing: count,
            asked: vec![None; count],
            bad: vec![false; n],
            slow: vec![false; n],
            rotate: 0,
            committed,
        }
    }

    fn put(&mut self, index: usize, bytes: Vec<u8>) {
        if self.chunks[index].is_none() {
            self.missing -= 1;
        }
        self.chunks[index] = Some(bytes);
        self.asked[index] = None;
    }

    /// The checkpoint being fetched.
    pub(crate) fn seq(&self) -> Seq {
        self.checkpoint.seq
    }

    /// The bytes held so far.
    pub(crate) fn held_bytes(&self) -> usize {
        self.chunks.iter().flatten().map(Vec::len).sum()
    }
}

impl<S: Service> Replica<S> {
    /// A proven checkpoint's manifest: checks it against the digest and
    /// starts (or restarts on this later checkpoint) the transfer in
    /// chunks.
    pub(crate) fn on_manifest(
        &mut self,
        checkpoint: StableCheckpoint,
        manifest: Manifest,
        committed: Vec<CommittedCertificate>,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        let chunk_bytes = self.checkpoints.chunk_bytes;
        let count = manifest.chunks.len() as u64;
        if count != chunk_count(manifest.length, chunk_bytes)
            || manifest_digest(manifest.length, chunk_bytes, &manifest.chunks) != checkpoint.digest
        {
            return Err(Rejection::InvalidState(StateError::ManifestMismatch));
        }
        if self
            .transfer
            .fetch
            .as_ref()
            .is_some_and(|f| f.seq() >= checkpoint.seq)
        {
            // Already fetching this checkpoint, or a later one.
            return Ok(());
        }
        let previous = self.transfer.fetch.take();
        let mut fetch = ChunkFetch::new(checkpoint, manifest.chunks, committed, self.quorums.n());
        // Chunks this replica already holds need not travel: those of a
        // transfer the new manifest replaces, and those of its own state.
        if let Some(previous) = previous {
            for (index, chunk) in previous.chunks.into_iter().enumerate() {
                let same = fetch.digests.get(index) == previous.digests.get(index);
                if let (Some(bytes), true) = (chunk, same) {
                    fetch.put(index, bytes);
                }
            }
        }
        if let Some(own) = self.checkpoints.own_snapshot(self.checkpoints.low()) {
            for index in 0..fetch.chunks.len() {
                if fetch.chunks[index].is_none()
                    && own.chunks.get(index) == fetch.digests.get(index)
                {
                    fetch.put(index, own.chunk(chunk_bytes, index as u64));
                }
            }
        }
        self.transfer.fetch = Some(fetch);
        if self.transfer.fetch.as_ref().is_some_and(|f| f.missing == 0) {
            return self.finish_fetch(out);
        }
        self.ask_for_chunks(out);
        Ok(())
    }

    /// On each tick while a transfer in chunks runs: drops it once the
    /// replica got that far by other means, and otherwise asks each peer
    /// for missing chunks, at most [`CHUNKS_ASKED_PER_PEER`] at a time.
    pub(crate) fn continue_fetch(&mut self, out: &mut Vec<Output>) {
        if self
            .transfer
            .fetch
            .as_ref()
            .is_some_and(|f| f.seq() <= self.last_executed)
        {
            self.transfer.fetch = None;
        }
        self.ask_for_chunks(out);
    }

    fn ask_for_chunks(&mut self, out: &mut Vec<Output>) {
        let now = self.ticks;
        let wait = chunk_wait(self.vc_base_timeout());
        let (me, n, seq) = (self.id, self.quorums.n(), self.last_executed.next());
        let Some(fetch) = self.transfer.fetch.as_mut() else {
            return;
        };
        let mut outstanding = vec![0u64; n];
        for asked in fetch.asked.iter_mut() {
            match *asked {
                Some((peer, at)) if now >= at.saturating_add(wait) => {
                    fetch.slow[peer.index()] = true;
                    *asked = None;
                }
                Some((peer, _)) => outstanding[peer.index()] += 1,
                None => {}
            }
        }
        // Every honest peer may be asked; if every peer sent a bad chunk,
        // which only a faulty quorum could, try them all again. A peer that
        // let a chunk time out is asked again only once every other peer
        // has let one time out too: the chunk goes to another peer, whose
        // turn in the rotation may come round at the very tick it falls
        // due (when the wait is a multiple of `n`).
        if (0..n).all(|p| p == me.index() || fetch.bad[p]) {
            fetch.bad = vec![false; n];
        }
        if (0..n).all(|p| p == me.index() || fetch.bad[p] || fetch.slow[p]) {
            fetch.slow = vec![false; n];
        }
        let count = fetch.chunks.len();
        let mut cursor = 0;
        let mut requests = Vec::new();
        for k in 0..n {
            let peer = (fetch.rotate + k) % n;
            if peer == me.index() || fetch.bad[peer] || fetch.slow[peer] {
                continue;
            }
            let free = CHUNKS_ASKED_PER_PEER.saturating_sub(outstanding[peer]);
            if free == 0 {
                continue;
            }
            let wanted = |fetch: &ChunkFetch, i: usize| {
                fetch.chunks[i].is_none() && fetch.asked[i].is_none()
            };
            while cursor < count && !wanted(fetch, cursor) {
                cursor += 1;
            }
            if cursor == count {
                break;
            }
            let first = cursor;
            let mut len = 0u64;
            while cursor < count && len < free && wanted(fetch, cursor) {
                fetch.asked[cursor] = Some((ReplicaId(peer as u32), now));
                cursor += 1;
                len += 1;
            }
            let range = ChunkRange {
                checkpoint: fetch.checkpoint.seq,
                digest: fetch.checkpoint.digest,
                first: first as u64,
                count: len,
            };
            requests.push((ReplicaId(peer as u32), range));
        }
        fetch.rotate = (fetch.rotate + 1) % n;
        for (peer, range) in requests {
            let request = FetchState {
                chunks: Some(range),
                ..FetchState::new(seq, me)
            };
            self.send(
                Destination::Replica(peer),
                Message::FetchState(request),
                out,
            );
        }
    }

    /// A chunk from a peer: kept if it is one the transfer lacks and it
    /// matches its digest; the state is restored once the last arrives.
    pub(crate) fn on_chunk(
        &mut self,
        from: ReplicaId,
        checkpoint: &StableCheckpoint,
        chunk: Chunk,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        let index = chunk.index;
        let unexpected = Rejection::InvalidState(StateError::UnexpectedChunk {
            checkpoint: checkpoint.seq,
            index,
        });
        let Some(fetch) = self.transfer.fetch.as_mut() else {
            return Err(unexpected);
        };
        let slot = usize::try_from(index)
            .ok()
            .filter(|&i| i < fetch.chunks.len());
        let Some(slot) = slot.filter(|&i| {
            fetch.seq() == checkpoint.seq
                && fetch.checkpoint.digest == checkpoint.digest
                && fetch.chunks[i].is_none()
        }) else {
            return Err(unexpected);
        };
        if chunk_digest(&chunk.bytes) != fetch.digests[slot] {
            // A faulty peer: asked for nothing more in this transfer, and
            // the chunk goes to another peer on the next tick.
            fetch.bad[from.index()] = true;
            fetch.asked[slot] = None;
            return Err(Rejection::InvalidState(StateError::ChunkMismatch { index }));
        }
        fetch.put(slot, Arc::unwrap_or_clone(chunk.bytes));
        if fetch.missing == 0 {
            return self.finish_fetch(out);
        }
        Ok(())
    }

    /// Every chunk is in: rebuilds the snapshots and restores them.
    fn finish_fetch(&mut self, out: &mut Vec<Output>) -> Result<(), Rejection> {
        let Some(fetch) = self.transfer.fetch.take() else {
            return Ok(());
        };
        let chunks: Vec<Vec<u8>> = fetch.chunks.into_iter().flatten().collect();
        let (service, clients) =
            assemble(chunks).map_err(|e| Rejection::InvalidState(StateError::Snapshot(e)))?;
        let snapshot = Snapshot {
            digest: fetch.checkpoint.digest,
            service: Arc::new(service),
            clients: Arc::new(clients),
            chunks: fetch.digests,
        };
        self.restore_state(fetch.checkpoint, snapshot, fetch.committed, out)
    }

    /// The checkpoint this replica is fetching in chunks, and how many
    /// bytes of it it holds, if a transfer in chunks is under way.
    pub fn fetching(&self) -> Option<(Seq, usize)> {
        self.transfer
            .fetch
            .as_ref()
            .map(|f| (f.seq(), f.held_bytes()))
    }
}
