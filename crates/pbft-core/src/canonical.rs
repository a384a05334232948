//! The canonical byte encoding that digests and signatures cover.
//!
//! This is the one place that decides which bytes stand for a request or a
//! batch. Every field is written with a fixed-width tag or length prefix, so
//! two different values never encode to the same bytes: a digest over this
//! encoding identifies the value, whatever JSON spelling it arrived in.

use crate::message::{CheckpointVote, Message, NewView, Signed, StateTransfer, ViewChange, Vote};
use crate::request::{Batch, Request};
use crate::status::SlotPhase;

/// Domain-separation prefix for batch digests (pre-prepare contents).
const BATCH_DOMAIN: &[u8] = b"pbft/batch/v1";
/// Domain-separation prefix for signed replica messages.
const MESSAGE_DOMAIN: &[u8] = b"pbft/message/v1";
/// Domain-separation prefix for single-request digests.
const REQUEST_DOMAIN: &[u8] = b"pbft/request/v1";

/// Appends the canonical encoding of one request to `out`.
///
/// Layout: `len(client) u64 BE`, client bytes, timestamp tag (`0` none,
/// `1` then `u64 BE`), `len(operation) u64 BE`, operation bytes.
pub fn encode_request(request: &Request, out: &mut Vec<u8>) {
    put_bytes(out, request.client.as_str().as_bytes());
    match request.timestamp {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            out.extend_from_slice(&t.to_be_bytes());
        }
    }
    put_bytes(out, request.operation.as_bytes());
}

/// The bytes a request's digest covers.
pub fn request_bytes(request: &Request) -> Vec<u8> {
    let mut out = Vec::with_capacity(REQUEST_DOMAIN.len() + 32 + request.operation.len());
    out.extend_from_slice(REQUEST_DOMAIN);
    encode_request(request, &mut out);
    out
}

/// [`Request::digest`] of each of `requests`, in order, through one
/// reused buffer.
pub(crate) fn request_digests(requests: &[Request]) -> Vec<crate::digest::Digest> {
    let mut buf = Vec::with_capacity(REQUEST_DOMAIN.len() + 64);
    requests
        .iter()
        .map(|request| {
            buf.clear();
            buf.extend_from_slice(REQUEST_DOMAIN);
            encode_request(request, &mut buf);
            crate::digest::Digest::of(&buf)
        })
        .collect()
}

/// The bytes a batch's digest covers: the domain, the request count
/// (`u64 BE`), then each request in order; then, only when some request
/// carries a client signature, one tag per request in order: `0`, or `1`
/// and its 64-byte signature.
///
/// The count fixes where the requests end, so the two forms never collide:
/// nothing follows them when no request is signed, and at least one byte
/// per request does otherwise. An unsigned batch keeps the digest it had
/// before clients could sign.
pub fn batch_bytes(batch: &Batch) -> Vec<u8> {
    let mut out = Vec::with_capacity(BATCH_DOMAIN.len() + 4 + 64 * batch.len());
    out.extend_from_slice(BATCH_DOMAIN);
    out.extend_from_slice(&len_u64(batch.len()).to_be_bytes());
    for request in batch.requests() {
        encode_request(request, &mut out);
    }
    if batch.requests().iter().any(|r| r.signature().is_some()) {
        for request in batch.requests() {
            match request.signature() {
                None => out.push(0),
                Some(signature) => {
                    out.push(1);
                    out.extend_from_slice(&signature.0);
                }
            }
        }
    }
    out
}

/// The bytes a replica's signature on `message` covers: the domain, a
/// one-byte kind (1 forward, 2 pre-prepare, 3 prepare, 4 commit), then
/// the fields:
///
/// - forward: the request, as in [`encode_request`];
/// - pre-prepare: `view u64 BE`, `seq u64 BE`, the 32-byte digest. The
///   batch is bound through its digest, which receivers check;
/// - prepare and commit: `view u64 BE`, `seq u64 BE`, the 32-byte digest,
///   `replica u32 BE`;
/// - checkpoint (kind 5): `seq u64 BE`, the 32-byte state digest,
///   `replica u32 BE`;
/// - view change (kind 6): `new_view u64`, `replica u32`, the checkpoint's
///   `seq u64` and digest, its proof as a signed list, then the count of
///   prepared certificates and each one's signed pre-prepare and signed
///   list of prepares;
/// - new view (kind 7): `view u64`, the view changes and the pre-prepares
///   as signed lists;
/// - fetch state (kind 8): `seq u64`, `replica u32`; then, only when it
///   carries a status report, `1`, the report's `view u64` and
///   `through u64`, the count of pending numbers and each one's `seq u64`
///   and phase (`0` none, `1` pre-prepare, `2` prepared, `3` committed,
///   `4` checkpointed); then, only when it asks for chunks, `'c'`, the
///   checkpoint's `seq u64` and digest, `first u64` and `count u64`;
/// - state (kind 9): `replica u32`, the checkpoint's `seq` and digest, its
///   proof, the two snapshots (length-prefixed), then the count of
///   committed certificates and each one's signed pre-prepare and signed
///   list of commits; then, only when present, `'m'`, the manifest's
///   `length u64`, count `u64` and digests, and `'k'`, the chunk's
///   `index u64` and bytes (length-prefixed).
///
/// A signed list is a `u64` count, then for each member its message bytes
/// (length-prefixed) and its signature (`0`, or `1` and 64 bytes).
pub fn message_bytes(message: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(MESSAGE_DOMAIN.len() + 1 + 52);
    out.extend_from_slice(MESSAGE_DOMAIN);
    match message {
        Message::Forward(request) => {
            out.push(1);
            encode_request(request, &mut out);
        }
        Message::PrePrepare(pp) => {
            out.push(2);
            out.extend_from_slice(&pp.view.0.to_be_bytes());
            out.extend_from_slice(&pp.seq.0.to_be_bytes());
            out.extend_from_slice(pp.digest.as_bytes());
        }
        Message::Prepare(vote) => {
            out.push(3);
            put_vote(&mut out, vote);
        }
        Message::Commit(vote) => {
            out.push(4);
            put_vote(&mut out, vote);
        }
        Message::Checkpoint(CheckpointVote {
            seq,
            digest,
            replica,
        }) => {
            out.push(5);
            out.extend_from_slice(&seq.0.to_be_bytes());
            out.extend_from_slice(digest.as_bytes());
            out.extend_from_slice(&replica.0.to_be_bytes());
        }
        Message::ViewChange(vc) => {
            out.push(6);
            put_view_change(&mut out, vc);
        }
        Message::NewView(nv) => {
            out.push(7);
            put_new_view(&mut out, nv);
        }
        Message::FetchState(f) => {
            out.push(8);
            out.extend_from_slice(&f.seq.0.to_be_bytes());
            out.extend_from_slice(&f.replica.0.to_be_bytes());
            if let Some(report) = &f.report {
                // Appended only when present, so a request without a
                // report keeps the bytes it always had.
                out.push(1);
                out.extend_from_slice(&report.view.0.to_be_bytes());
                out.extend_from_slice(&report.through.0.to_be_bytes());
                out.extend_from_slice(&(report.pending.len() as u64).to_be_bytes());
                for (seq, phase) in &report.pending {
                    out.extend_from_slice(&seq.0.to_be_bytes());
                    out.push(match phase {
                        SlotPhase::None => 0,
                        SlotPhase::PrePrepare => 1,
                        SlotPhase::Prepared => 2,
                        SlotPhase::Committed => 3,
                        SlotPhase::Checkpointed => 4,
                    });
                }
            }
            if let Some(range) = &f.chunks {
                out.push(CHUNKS_TAG);
                out.extend_from_slice(&range.checkpoint.0.to_be_bytes());
                out.extend_from_slice(range.digest.as_bytes());
                out.extend_from_slice(&range.first.to_be_bytes());
                out.extend_from_slice(&range.count.to_be_bytes());
            }
        }
        Message::State(st) => {
            out.push(9);
            put_state(&mut out, st);
        }
    }
    out
}

fn put_state(out: &mut Vec<u8>, st: &StateTransfer) {
    out.extend_from_slice(&st.replica.0.to_be_bytes());
    out.extend_from_slice(&st.checkpoint.seq.0.to_be_bytes());
    out.extend_from_slice(st.checkpoint.digest.as_bytes());
    put_signed_list(out, st.checkpoint.proof.iter());
    put_bytes(out, &st.service);
    put_bytes(out, &st.clients);
    out.extend_from_slice(&len_u64(st.committed.len()).to_be_bytes());
    for cert in &st.committed {
        put_signed(out, &cert.pre_prepare);
        put_signed_list(out, cert.commits.iter());
    }
    if let Some(manifest) = &st.manifest {
        out.push(MANIFEST_TAG);
        out.extend_from_slice(&manifest.length.to_be_bytes());
        out.extend_from_slice(&len_u64(manifest.chunks.len()).to_be_bytes());
        for digest in manifest.chunks.iter() {
            out.extend_from_slice(digest.as_bytes());
        }
    }
    if let Some(chunk) = &st.chunk {
        out.push(CHUNK_TAG);
        out.extend_from_slice(&chunk.index.to_be_bytes());
        put_bytes(out, &chunk.bytes);
    }
}

/// Tags of the optional trailing parts of a fetch-state and a state
/// message. A message without them encodes as it did before they existed.
const CHUNKS_TAG: u8 = b'c';
const MANIFEST_TAG: u8 = b'm';
const CHUNK_TAG: u8 = b'k';

fn put_signed(out: &mut Vec<u8>, signed: &Signed) {
    put_bytes(out, &message_bytes(&signed.message));
    match &signed.signature {
        None => out.push(0),
        Some(signature) => {
            out.push(1);
            out.extend_from_slice(&signature.0);
        }
    }
}

fn put_signed_list<'a>(out: &mut Vec<u8>, list: impl ExactSizeIterator<Item = &'a Signed>) {
    out.extend_from_slice(&len_u64(list.len()).to_be_bytes());
    for signed in list {
        put_signed(out, signed);
    }
}

fn put_view_change(out: &mut Vec<u8>, vc: &ViewChange) {
    out.extend_from_slice(&vc.new_view.0.to_be_bytes());
    out.extend_from_slice(&vc.replica.0.to_be_bytes());
    out.extend_from_slice(&vc.checkpoint.seq.0.to_be_bytes());
    out.extend_from_slice(vc.checkpoint.digest.as_bytes());
    put_signed_list(out, vc.checkpoint.proof.iter());
    out.extend_from_slice(&len_u64(vc.prepared.len()).to_be_bytes());
    for cert in &vc.prepared {
        put_signed(out, &cert.pre_prepare);
        put_signed_list(out, cert.prepares.iter());
    }
}

fn put_new_view(out: &mut Vec<u8>, nv: &NewView) {
    out.extend_from_slice(&nv.view.0.to_be_bytes());
    put_signed_list(out, nv.view_changes.iter());
    put_signed_list(out, nv.pre_prepares.iter());
}

/// The canonical state bytes of a checkpoint, whole: the domain
/// `"pbft/state/v1"`, then the service's snapshot and the client table's,
/// each length-prefixed. Replicas never build them: they cut them into
/// chunks through a view over the snapshots (`chunks.rs`), which tests
/// check against this.
#[cfg(test)]
pub(crate) fn state_bytes(service: &[u8], clients: &[u8]) -> Vec<u8> {
    const STATE_DOMAIN: &[u8] = b"pbft/state/v1";
    let mut out = Vec::with_capacity(STATE_DOMAIN.len() + 16 + service.len() + clients.len());
    out.extend_from_slice(STATE_DOMAIN);
    put_bytes(&mut out, service);
    put_bytes(&mut out, clients);
    out
}

fn put_vote(out: &mut Vec<u8>, vote: &Vote) {
    out.extend_from_slice(&vote.view.0.to_be_bytes());
    out.extend_from_slice(&vote.seq.0.to_be_bytes());
    out.extend_from_slice(vote.digest.as_bytes());
    out.extend_from_slice(&vote.replica.0.to_be_bytes());
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&len_u64(bytes.len()).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Reads back what the `put_*` helpers wrote, refusing anything else.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < len {
            return Err(format!(
                "snapshot ends early: {len} more bytes expected, {} left",
                self.bytes.len()
            ));
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(buf))
    }

    pub(crate) fn digest(&mut self) -> Result<crate::digest::Digest, String> {
        let mut buf = [0u8; 32];
        buf.copy_from_slice(self.take(32)?);
        Ok(crate::digest::Digest(buf))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = usize::try_from(self.u64()?).map_err(|_| "length too large".to_string())?;
        self.take(len)
    }

    pub(crate) fn string(&mut self) -> Result<&'a str, String> {
        std::str::from_utf8(self.bytes()?).map_err(|_| "a string is not UTF-8".to_string())
    }

    pub(crate) fn finish(self) -> Result<(), String> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(format!("{} bytes left over", self.bytes.len()))
        }
    }
}

/// Lengths are encoded as `u64`, which holds every `usize` on the targets
/// Rust supports, so no input is too long to encode.
fn len_u64(len: usize) -> u64 {
    len as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(client: &str, timestamp: Option<u64>, op: &str) -> Request {
        Request::new(client, timestamp, op)
    }

    #[test]
    fn request_layout_is_as_documented() {
        let mut expected = b"pbft/request/v1".to_vec();
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2]);
        expected.extend_from_slice(b"c1");
        expected.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 5]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 5]);
        expected.extend_from_slice(b"get x");
        assert_eq!(request_bytes(&req("c1", Some(5), "get x")), expected);

        let mut batch = b"pbft/batch/v1".to_vec();
        batch.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        batch.extend_from_slice(&expected[b"pbft/request/v1".len()..]);
        let single = Batch::single(req("c1", Some(5), "get x"));
        assert_eq!(batch_bytes(&single), batch);
    }

    #[test]
    fn vote_layout_is_as_documented() {
        use crate::digest::Digest;
        use crate::types::{ReplicaId, Seq, View};
        let vote = Vote {
            view: View(2),
            seq: Seq(9),
            digest: Digest([7; 32]),
            replica: ReplicaId(3),
        };
        let mut expected = b"pbft/message/v1".to_vec();
        expected.push(4);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9]);
        expected.extend_from_slice(&[7; 32]);
        expected.extend_from_slice(&[0, 0, 0, 3]);
        assert_eq!(message_bytes(&Message::Commit(vote)), expected);
        expected[b"pbft/message/v1".len()] = 3;
        assert_eq!(message_bytes(&Message::Prepare(vote)), expected);
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        // Without length prefixes "ab"+"c" and "a"+"bc" would collide.
        assert_ne!(
            request_bytes(&req("ab", None, "c")),
            request_bytes(&req("a", None, "bc"))
        );
        assert_ne!(
            request_bytes(&req("c", None, "op")),
            request_bytes(&req("c", Some(0), "op"))
        );
    }

    #[test]
    fn batch_encoding_depends_on_order_and_count() {
        let a = req("c1", Some(1), "set x=1");
        let b = req("c2", Some(1), "set x=2");
        let ab = Batch::new(vec![a.clone(), b.clone()]);
        let ba = Batch::new(vec![b, a]);
        assert_ne!(batch_bytes(&ab), batch_bytes(&ba));
        assert_ne!(batch_bytes(&Batch::new(vec![])), batch_bytes(&ab));
    }

    #[test]
    fn signatures_follow_the_requests_only_when_some_are_signed() {
        use crate::auth::Signature;
        let a = req("c1", Some(1), "set x=1");
        let b = req("c2", Some(1), "set x=2");
        let unsigned = batch_bytes(&Batch::new(vec![a.clone(), b.clone()]));
        let signed_b = b.clone().with_signature(Some(Signature([9; 64])));
        let signed = batch_bytes(&Batch::new(vec![a.clone(), signed_b]));
        assert_eq!(&signed[..unsigned.len()], &unsigned[..]);
        let mut trailer = vec![0, 1];
        trailer.extend_from_slice(&[9; 64]);
        assert_eq!(&signed[unsigned.len()..], &trailer[..]);
        // Which request is signed matters.
        let signed_a = a.with_signature(Some(Signature([9; 64])));
        assert_ne!(batch_bytes(&Batch::new(vec![signed_a, b])), signed);
    }
}
