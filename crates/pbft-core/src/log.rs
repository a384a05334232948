//! The message log: what a replica knows about each sequence number.
//!
//! Each slot holds the state of the replica's current view for its number
//! (votes for other views are rejected before they reach the log). The
//! numbers in the log are nearly all in the window between the watermarks
//! (§4.3), so slots live in fixed chunks of consecutive numbers, found
//! through a small ordered map of chunks: a lookup is a short search among
//! a handful of chunks and an index, a slot never moves once placed, and a
//! number far from the others (a new view beyond a checkpoint this replica
//! lacks, say) costs one chunk, not a gap's worth. Lookups never scan.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::auth::Signature;
use crate::certificate::{CommittedCertificate, PreparedCertificate};
use crate::digest::Digest;
use crate::message::{Message, PrePrepare, Signed, Vote};
use crate::request::Batch;
use crate::service::ExecResult;
use crate::types::{Seq, View};
use crate::votes::Votes;

/// Everything known about one sequence number in one view.
#[derive(Clone, Debug)]
pub struct Slot {
    /// The view this slot's votes belong to.
    pub view: View,
    /// The accepted pre-prepare, once there is one.
    pub pre_prepare: Option<PrePrepare>,
    /// The primary's signature on the accepted pre-prepare.
    pub pre_prepare_signature: Option<Signature>,
    /// Prepares received, including this replica's own.
    pub prepares: Votes,
    /// Commits received, including this replica's own.
    pub commits: Votes,
    /// This replica has multicast its commit (it saw the slot prepared).
    pub commit_sent: bool,
    /// The slot is committed-local (§4.2).
    pub committed: bool,
    /// The results, once executed.
    pub results: Option<Vec<ExecResult>>,
    /// The latest prepared certificate from an earlier view, kept across
    /// view changes so that later view-change messages can carry it.
    pub carried: Option<PreparedCertificate>,
    /// A committed certificate from an earlier view, kept across view
    /// changes so that a peer that missed the number can still be sent it.
    pub proof: Option<CommittedCertificate>,
    /// The batches of the pre-prepares this replica accepted here in
    /// earlier views, prepared or not, oldest first: at most
    /// [`HELD_BATCHES`] distinct ones. A later view may re-issue the
    /// number by digest (§4.4) after every certificate that held a batch
    /// was replaced, or after another batch was accepted at the number in
    /// a view between; keeping them means a batch is lost only if every
    /// replica that accepted it forgets it, not merely moves on.
    pub held: Vec<Arc<Batch>>,
}

/// The most batches a slot keeps from pre-prepares of earlier views
/// ([`Slot::held`]). Each view gives a number at most one pre-prepare, so a
/// batch is pushed out only after this many later views each had this
/// replica accept a different batch at the same number.
pub const HELD_BATCHES: usize = 4;

impl Slot {
    fn new(view: View) -> Slot {
        Slot {
            view,
            pre_prepare: None,
            pre_prepare_signature: None,
            prepares: Votes::default(),
            commits: Votes::default(),
            commit_sent: false,
            committed: false,
            results: None,
            carried: None,
            proof: None,
            held: Vec::new(),
        }
    }

    /// Starts the slot over in `view`, keeping only what outlives a view:
    /// the results, `carried`, the latest prepared certificate, the
    /// committed certificate, which moves to `proof`, and the accepted
    /// batch, which joins `held`.
    pub fn reset(&mut self, view: View, carried: Option<PreparedCertificate>) {
        let results = self.results.take();
        let carried = carried.or_else(|| self.carried.take());
        let proof = self.committed_certificate();
        // The null request is never worth keeping: every replica can
        // build it, and it must not displace a batch of requests.
        let mut held = std::mem::take(&mut self.held);
        let accepted = self.pre_prepare.take().and_then(|pp| pp.batch);
        if let Some(batch) = accepted.filter(|batch| !batch.requests().is_empty()) {
            held.retain(|kept| kept.digest() != batch.digest());
            held.push(batch);
            if held.len() > HELD_BATCHES {
                held.remove(0);
            }
        }
        *self = Slot {
            results,
            carried,
            proof,
            held,
            ..Slot::new(view)
        };
    }
}

impl Slot {
    /// The batch this number committed, if it did: the slot's own
    /// pre-prepare once committed in its view, or the one a kept committed
    /// certificate proves.
    ///
    /// One that carries its batch is preferred: a number committed by
    /// digest alone executes once a certificate with the batch arrives.
    pub fn committed_pre_prepare(&self) -> Option<&PrePrepare> {
        let own = match (&self.pre_prepare, self.committed) {
            (Some(pp), true) => Some(pp),
            _ => None,
        };
        let proven = self
            .proof
            .as_ref()
            .and_then(CommittedCertificate::pre_prepare);
        match (own, proven) {
            (Some(pp), _) if pp.batch.is_some() => Some(pp),
            (_, Some(pp)) if pp.batch.is_some() => Some(pp),
            (own, proven) => own.or(proven),
        }
    }

    /// A batch this slot holds whose digest is `digest`: from its
    /// pre-prepare, its carried prepared certificate, its committed
    /// certificate or the batch it held in an earlier view.
    pub fn batch_for(&self, digest: Digest) -> Option<&Arc<Batch>> {
        let carried = self
            .carried
            .as_ref()
            .and_then(PreparedCertificate::pre_prepare);
        let proven = self
            .proof
            .as_ref()
            .and_then(CommittedCertificate::pre_prepare);
        [self.pre_prepare.as_ref(), carried, proven]
            .into_iter()
            .flatten()
            .filter(|pp| pp.digest == digest)
            .find_map(|pp| pp.batch.as_ref())
            .or_else(|| self.held.iter().find(|b| b.digest() == digest))
    }

    /// Whether `digest` contradicts the batch a kept committed certificate
    /// proves for this number: no honest replica prepares or commits
    /// another batch there.
    pub fn contradicts_proof(&self, digest: Digest) -> bool {
        self.proof
            .as_ref()
            .and_then(CommittedCertificate::pre_prepare)
            .is_some_and(|proven| proven.digest != digest)
    }

    /// The committed certificate for this number: from the slot's own
    /// commits if it committed in its view, or else the one kept from an
    /// earlier view. Its pre-prepare carries the batch wherever the slot
    /// holds it, so that a peer can execute the number from it.
    pub fn committed_certificate(&self) -> Option<CommittedCertificate> {
        let mut cert = self.own_committed_certificate()?;
        if let Message::PrePrepare(pp) = &mut cert.pre_prepare.message {
            if pp.batch.is_none() {
                pp.batch = self.batch_for(pp.digest).cloned();
            }
        }
        Some(cert)
    }

    fn own_committed_certificate(&self) -> Option<CommittedCertificate> {
        let (Some(pp), true) = (&self.pre_prepare, self.committed) else {
            return self.proof.clone();
        };
        let proof_has_batch = self
            .proof
            .as_ref()
            .and_then(CommittedCertificate::pre_prepare)
            .is_some_and(|proven| proven.batch.is_some());
        if pp.batch.is_none() && proof_has_batch {
            return self.proof.clone();
        }
        let commits = self
            .commits
            .signed_for(pp.digest)
            .map(|(replica, signature)| Signed {
                message: Message::Commit(Vote {
                    view: pp.view,
                    seq: pp.seq,
                    digest: pp.digest,
                    replica,
                }),
                signature,
            })
            .collect();
        Some(CommittedCertificate {
            pre_prepare: Signed {
                message: Message::PrePrepare(pp.clone()),
                signature: self.pre_prepare_signature,
            },
            commits,
        })
    }
}

/// Numbers per chunk of the log.
const CHUNK: u64 = 64;

/// The chunk holding `seq`, and its place there.
fn chunk_of(seq: Seq) -> (u64, usize) {
    (seq.0 / CHUNK, (seq.0 % CHUNK) as usize)
}

/// A chunk's slots: one place per number, empty where nothing is known.
type Chunk = Vec<Option<Slot>>;

/// All slots, by sequence number.
#[derive(Clone, Debug, Default)]
pub struct Log {
    /// Chunk `c` holds the numbers `c * CHUNK ..` `(c + 1) * CHUNK`; a chunk
    /// exists only while it holds a slot.
    chunks: BTreeMap<u64, Chunk>,
    /// How many slots the chunks hold.
    len: usize,
}

impl Log {
    /// The slot for `seq`, if anything is known about it.
    pub fn get(&self, seq: Seq) -> Option<&Slot> {
        let (c, i) = chunk_of(seq);
        self.chunks.get(&c)?[i].as_ref()
    }

    /// The slot for `seq` in `view`, created empty if needed. A slot held
    /// from an earlier view (one adopted with its committed certificate,
    /// say) starts over first, so that votes from two views never mix.
    pub fn slot_mut(&mut self, view: View, seq: Seq) -> &mut Slot {
        let (c, i) = chunk_of(seq);
        let place = &mut self.chunks.entry(c).or_insert_with(|| {
            std::iter::repeat_with(|| None)
                .take(CHUNK as usize)
                .collect()
        })[i];
        if place.is_none() {
            self.len += 1;
        }
        let slot = place.get_or_insert_with(|| Slot::new(view));
        if slot.view != view {
            slot.reset(view, None);
        }
        slot
    }

    /// The slot for `seq` if it exists.
    pub fn get_mut(&mut self, seq: Seq) -> Option<&mut Slot> {
        let (c, i) = chunk_of(seq);
        self.chunks.get_mut(&c)?[i].as_mut()
    }

    /// Discards every slot at or below `seq` (garbage collection after a
    /// stable checkpoint, §4.3).
    pub fn remove_through(&mut self, seq: Seq) {
        let (c, i) = chunk_of(seq);
        let kept = self.chunks.split_off(&c);
        let dropped = std::mem::replace(&mut self.chunks, kept);
        self.len -= dropped.values().map(filled).sum::<usize>();
        if let Some(chunk) = self.chunks.get_mut(&c) {
            for place in &mut chunk[..=i] {
                if place.take().is_some() {
                    self.len -= 1;
                }
            }
            if filled(chunk) == 0 {
                self.chunks.remove(&c);
            }
        }
    }

    /// The sequence numbers in the log, in order.
    pub fn seqs(&self) -> Vec<Seq> {
        self.after(Seq(0)).map(|(seq, _)| seq).collect()
    }

    /// The slots after `seq`, in order.
    pub fn after(&self, seq: Seq) -> impl Iterator<Item = (Seq, &Slot)> {
        self.chunks
            .range(chunk_of(seq).0..)
            .flat_map(|(c, chunk)| {
                chunk.iter().enumerate().filter_map(move |(i, place)| {
                    let slot = place.as_ref()?;
                    Some((Seq(c * CHUNK + i as u64), slot))
                })
            })
            .filter(move |(n, _)| *n > seq)
    }

    /// How many sequence numbers the log holds.
    pub fn len(&self) -> usize {
        self.len
    }
}

/// How many slots `chunk` holds.
fn filled(chunk: &Chunk) -> usize {
    chunk.iter().filter(|place| place.is_some()).count()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::request::{Batch, Request};
    use crate::types::ReplicaId;

    #[test]
    fn a_committed_certificate_outlives_every_reset() {
        let pp = PrePrepare::new(
            View(3),
            Seq(9),
            Arc::new(Batch::single(Request::new("c", Some(1), "set x=1"))),
        );
        let mut log = Log::default();
        let slot = log.slot_mut(View(3), Seq(9));
        slot.pre_prepare = Some(pp.clone());
        for r in 0..3 {
            slot.commits
                .record(4, ReplicaId(r), pp.digest, None)
                .expect("first vote");
        }
        slot.committed = true;
        let cert = slot.committed_certificate().expect("committed");
        assert_eq!(cert.commits.len(), 3);
        // A vote of a later view starts the slot over, and so does a view
        // change: the certificate stays.
        log.slot_mut(View(4), Seq(9));
        log.get_mut(Seq(9)).expect("slot").reset(View(5), None);
        let slot = log.get(Seq(9)).expect("slot");
        assert_eq!((slot.view, slot.committed), (View(5), false));
        assert_eq!(slot.committed_certificate(), Some(cert));
    }

    #[test]
    fn numbers_stay_in_order_however_they_arrive() {
        let far = 1_000_000_000_000u64;
        let all = [1u64, 3, 63, 64, 65, 127, 128, 200, far, u64::MAX];
        let mut log = Log::default();
        for n in [65u64, 3, far, 128, 1, 200, 64, u64::MAX, 127, 63] {
            log.slot_mut(View(0), Seq(n)).commit_sent = n % 2 == 0;
        }
        // Asking again finds the same slot.
        log.slot_mut(View(0), Seq(64));
        assert_eq!(log.seqs(), all.map(Seq));
        assert_eq!(log.len(), all.len());
        for n in (0..300).chain([far - 1, far, far + 1, u64::MAX - 1, u64::MAX]) {
            let held = all.contains(&n);
            assert_eq!(log.get(Seq(n)).is_some(), held, "{n}");
            if held {
                assert_eq!(log.get(Seq(n)).map(|s| s.commit_sent), Some(n % 2 == 0));
            }
        }
        let after: Vec<u64> = log.after(Seq(64)).map(|(seq, _)| seq.0).collect();
        assert_eq!(after, [65, 127, 128, 200, far, u64::MAX]);
        // Collecting within a chunk, then across chunks.
        log.remove_through(Seq(63));
        assert_eq!(log.seqs(), [64, 65, 127, 128, 200, far, u64::MAX].map(Seq));
        log.remove_through(Seq(128));
        assert_eq!(log.seqs(), [200, far, u64::MAX].map(Seq));
        assert_eq!(log.len(), 3);
        assert!(log.get(Seq(65)).is_none() && log.get_mut(Seq(200)).is_some());
        // A slot asked for in another view starts over; the same view keeps it.
        log.slot_mut(View(0), Seq(200)).commit_sent = true;
        assert!(log.slot_mut(View(0), Seq(200)).commit_sent);
        assert!(!log.slot_mut(View(1), Seq(200)).commit_sent);
        log.remove_through(Seq(u64::MAX));
        assert_eq!((log.len(), log.seqs()), (0, vec![]));
        assert!(log.get(Seq(200)).is_none());
    }
}
