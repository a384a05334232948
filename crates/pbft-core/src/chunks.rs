//! A checkpoint's state in fixed-size chunks, and the digest over them.
//!
//! The canonical state bytes of a checkpoint are
//! `"pbft/state/v1" len:u64 service len:u64 clients` (see
//! [`state_bytes`](crate::canonical::state_bytes)). They are cut into
//! chunks of [`Config::state_chunk_bytes`](crate::Config::state_chunk_bytes)
//! (the last one shorter), each chunk has its own SHA-256 digest, and the
//! checkpoint digest that replicas sign is the digest of the state's length
//! and the ordered list of chunk digests (the *manifest*). So a replica that
//! holds the proven digest can check the manifest, and then each chunk on
//! its own as it arrives, from any peer, without ever holding an unchecked
//! byte. This is a flat, one-level version of the paper's partition tree
//! (TOCS §5.3.2); `docs/design.md` says why.
//!
//! Nothing here copies the state to hash it: the layout is a view over the
//! two snapshots.

use std::collections::VecDeque;

use crate::digest::Digest;

/// The default [`Config::state_chunk_bytes`](crate::Config::state_chunk_bytes):
/// 1 MiB, so a chunk travels as a 2 MiB hex line, far under the node's
/// 16 MiB.
pub const DEFAULT_STATE_CHUNK_BYTES: usize = 1 << 20;

/// The smallest chunk size a configuration may set.
pub const MIN_STATE_CHUNK_BYTES: usize = 64;

/// The largest chunk size a configuration may set: 2 MiB, whose hex (4 MiB)
/// with the largest batch of committed certificates (8 MiB) still fits the
/// 16 MiB line in one state answer.
pub const MAX_STATE_CHUNK_BYTES: usize = 2 << 20;

/// Domain-separation prefix of the canonical state bytes (unchanged from
/// when the digest covered them whole).
const STATE_DOMAIN: &[u8] = b"pbft/state/v1";
/// Domain-separation prefix of a chunk's digest.
const CHUNK_DOMAIN: &[u8] = b"pbft/chunk/v1";
/// Domain-separation prefix of a checkpoint digest over its chunks.
const MANIFEST_DOMAIN: &[u8] = b"pbft/state/v2";

/// The length of the canonical state bytes before the service's snapshot.
const HEAD: usize = STATE_DOMAIN.len() + 8;

/// The canonical state bytes as a view over the two snapshots.
pub(crate) struct Layout<'a> {
    head: [u8; HEAD],
    service: &'a [u8],
    mid: [u8; 8],
    clients: &'a [u8],
}

impl<'a> Layout<'a> {
    pub(crate) fn new(service: &'a [u8], clients: &'a [u8]) -> Layout<'a> {
        let mut head = [0u8; HEAD];
        head[..STATE_DOMAIN.len()].copy_from_slice(STATE_DOMAIN);
        head[STATE_DOMAIN.len()..].copy_from_slice(&(service.len() as u64).to_be_bytes());
        Layout {
            head,
            service,
            mid: (clients.len() as u64).to_be_bytes(),
            clients,
        }
    }

    /// The length of the canonical state bytes.
    pub(crate) fn len(&self) -> u64 {
        (HEAD + self.service.len() + 8 + self.clients.len()) as u64
    }

    /// The consecutive pieces of bytes `[start, end)`, appended to `out`.
    fn pieces<'s>(&'s self, start: u64, end: u64, out: &mut Vec<&'s [u8]>) {
        let parts: [&'s [u8]; 4] = [&self.head, self.service, &self.mid, self.clients];
        let mut offset = 0u64;
        for part in parts {
            let (lo, hi) = (offset, offset + part.len() as u64);
            offset = hi;
            let (from, to) = (start.max(lo), end.min(hi));
            if from < to {
                out.push(&part[(from - lo) as usize..(to - lo) as usize]);
            }
        }
    }

    /// The byte range of chunk `index`.
    fn range(&self, chunk_bytes: usize, index: u64) -> (u64, u64) {
        let start = index.saturating_mul(chunk_bytes as u64).min(self.len());
        (
            start,
            start.saturating_add(chunk_bytes as u64).min(self.len()),
        )
    }

    /// The bytes of chunk `index`, copied out (empty past the end).
    pub(crate) fn chunk(&self, chunk_bytes: usize, index: u64) -> Vec<u8> {
        let (start, end) = self.range(chunk_bytes, index);
        let mut pieces = Vec::new();
        self.pieces(start, end, &mut pieces);
        pieces.concat()
    }

    /// The digest of every chunk, in order.
    pub(crate) fn chunk_digests(&self, chunk_bytes: usize) -> Vec<Digest> {
        let count = chunk_count(self.len(), chunk_bytes);
        (0..count)
            .map(|index| {
                let (start, end) = self.range(chunk_bytes, index);
                let mut pieces: Vec<&[u8]> = vec![CHUNK_DOMAIN];
                self.pieces(start, end, &mut pieces);
                Digest::of_parts(&pieces)
            })
            .collect()
    }
}

/// How many chunks of `chunk_bytes` a state of `len` bytes takes.
pub(crate) fn chunk_count(len: u64, chunk_bytes: usize) -> u64 {
    len.div_ceil(chunk_bytes.max(1) as u64)
}

/// The digest of one chunk's bytes.
pub(crate) fn chunk_digest(bytes: &[u8]) -> Digest {
    Digest::of_parts(&[CHUNK_DOMAIN, bytes])
}

/// The checkpoint digest of a state of `len` bytes whose chunks of
/// `chunk_bytes` have these digests: SHA-256 over the domain, `len`,
/// `chunk_bytes` and the count (each `u64` BE), then the digests in order.
pub(crate) fn manifest_digest(len: u64, chunk_bytes: usize, chunks: &[Digest]) -> Digest {
    let mut head = Vec::with_capacity(MANIFEST_DOMAIN.len() + 24);
    head.extend_from_slice(MANIFEST_DOMAIN);
    head.extend_from_slice(&len.to_be_bytes());
    head.extend_from_slice(&(chunk_bytes as u64).to_be_bytes());
    head.extend_from_slice(&(chunks.len() as u64).to_be_bytes());
    let mut pieces: Vec<&[u8]> = vec![&head];
    pieces.extend(chunks.iter().map(|d| &d.0[..]));
    Digest::of_parts(&pieces)
}

/// Rebuilds the two snapshots from a state's chunks, in order, freeing
/// each chunk once it is copied, so that the bytes are held about once.
pub(crate) fn assemble(chunks: Vec<Vec<u8>>) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut reader = ChunkReader {
        chunks: chunks.into_iter().collect(),
        at: 0,
    };
    let mut head = Vec::with_capacity(HEAD);
    reader.read_into(&mut head, HEAD)?;
    if &head[..STATE_DOMAIN.len()] != STATE_DOMAIN {
        return Err("the state does not start with its domain".to_string());
    }
    let service_len = reader.length(&head[STATE_DOMAIN.len()..])?;
    let mut service = Vec::with_capacity(service_len);
    reader.read_into(&mut service, service_len)?;
    let mut mid = Vec::with_capacity(8);
    reader.read_into(&mut mid, 8)?;
    let clients_len = reader.length(&mid)?;
    let mut clients = Vec::with_capacity(clients_len);
    reader.read_into(&mut clients, clients_len)?;
    if reader.remaining() != 0 {
        return Err(format!("{} bytes left over", reader.remaining()));
    }
    Ok((service, clients))
}

/// Reads across chunk boundaries, dropping each chunk once read.
struct ChunkReader {
    chunks: VecDeque<Vec<u8>>,
    /// How far into the first chunk reading has come.
    at: usize,
}

impl ChunkReader {
    fn remaining(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum::<usize>() - self.at
    }

    /// A length field, checked against what is left, so that no claimed
    /// length allocates more than the state holds.
    fn length(&self, field: &[u8]) -> Result<usize, String> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(field);
        let len = usize::try_from(u64::from_be_bytes(buf)).map_err(|_| "length too large")?;
        if len > self.remaining() {
            return Err(format!(
                "the state ends early: {len} bytes expected, {} left",
                self.remaining()
            ));
        }
        Ok(len)
    }

    fn read_into(&mut self, out: &mut Vec<u8>, mut len: usize) -> Result<(), String> {
        while len > 0 {
            let Some(first) = self.chunks.front() else {
                return Err("the state ends early".to_string());
            };
            let take = len.min(first.len() - self.at);
            out.extend_from_slice(&first[self.at..self.at + take]);
            self.at += take;
            len -= take;
            if self.at == first.len() {
                self.chunks.pop_front();
                self.at = 0;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::state_bytes;

    #[test]
    fn the_layout_is_the_canonical_state_bytes() {
        let (service, clients) = (b"service bytes".to_vec(), b"clients".to_vec());
        let layout = Layout::new(&service, &clients);
        let whole = state_bytes(&service, &clients);
        assert_eq!(layout.len(), whole.len() as u64);
        for chunk_bytes in [1, 5, 21, 64, whole.len(), 1000] {
            let count = chunk_count(layout.len(), chunk_bytes);
            let joined: Vec<u8> = (0..count)
                .flat_map(|i| layout.chunk(chunk_bytes, i))
                .collect();
            assert_eq!(joined, whole, "chunks of {chunk_bytes}");
            let digests = layout.chunk_digests(chunk_bytes);
            assert_eq!(digests.len() as u64, count);
            for (i, d) in digests.iter().enumerate() {
                assert_eq!(*d, chunk_digest(&layout.chunk(chunk_bytes, i as u64)));
            }
        }
    }

    #[test]
    fn the_initial_states_digest_is_as_documented() {
        // docs/protocol.md: the empty key-value store and client table.
        let empty = 0u64.to_be_bytes();
        let layout = Layout::new(&empty, &empty);
        let chunks = layout.chunk_digests(DEFAULT_STATE_CHUNK_BYTES);
        assert_eq!(
            manifest_digest(layout.len(), DEFAULT_STATE_CHUNK_BYTES, &chunks).to_string(),
            "fd2e31de2c72104ab0c66580228a139db387958a276c06157810684a31be331c"
        );
    }

    #[test]
    fn a_small_state_is_one_chunk() {
        let layout = Layout::new(b"x", b"");
        assert_eq!(layout.chunk_digests(DEFAULT_STATE_CHUNK_BYTES).len(), 1);
    }

    #[test]
    fn chunks_reassemble_into_the_snapshots() {
        let service: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let clients = b"some clients".to_vec();
        let layout = Layout::new(&service, &clients);
        for chunk_bytes in [1, 7, 64, 4096] {
            let chunks = (0..chunk_count(layout.len(), chunk_bytes))
                .map(|i| layout.chunk(chunk_bytes, i))
                .collect();
            assert_eq!(
                assemble(chunks),
                Ok((service.clone(), clients.clone())),
                "{chunk_bytes}"
            );
        }
    }

    #[test]
    fn bad_state_bytes_do_not_assemble() {
        let whole = state_bytes(b"abc", b"de");
        let mut lying = whole.clone();
        // A service length far beyond the state allocates nothing.
        lying[STATE_DOMAIN.len()] = 0xff;
        assert!(assemble(vec![lying]).is_err());
        let mut longer = whole.clone();
        longer.push(0);
        assert!(assemble(vec![longer]).is_err());
        assert!(assemble(vec![whole[..whole.len() - 1].to_vec()]).is_err());
        assert!(assemble(vec![b"pbft/state/v0".to_vec()]).is_err());
    }

    #[test]
    fn the_digest_depends_on_length_size_and_every_chunk() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let base = manifest_digest(10, 64, &[a, b]);
        assert_ne!(base, manifest_digest(11, 64, &[a, b]));
        assert_ne!(base, manifest_digest(10, 65, &[a, b]));
        assert_ne!(base, manifest_digest(10, 64, &[b, a]));
        assert_ne!(base, manifest_digest(10, 64, &[a]));
    }
}
