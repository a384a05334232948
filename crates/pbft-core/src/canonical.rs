//! The canonical byte encoding that digests (and, later, signatures) cover.
//!
//! This is the one place that decides which bytes stand for a request or a
//! batch. Every field is written with a fixed-width tag or length prefix, so
//! two different values never encode to the same bytes: a digest over this
//! encoding identifies the value, whatever JSON spelling it arrived in.

use crate::request::{Batch, Request};

/// Domain-separation prefix for batch digests (pre-prepare contents).
const BATCH_DOMAIN: &[u8] = b"pbft/batch/v1";
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

/// The bytes a batch's digest covers: the domain, the request count
/// (`u64 BE`), then each request in order.
pub fn batch_bytes(batch: &Batch) -> Vec<u8> {
    let mut out = Vec::with_capacity(BATCH_DOMAIN.len() + 4 + 64 * batch.len());
    out.extend_from_slice(BATCH_DOMAIN);
    out.extend_from_slice(&len_u64(batch.len()).to_be_bytes());
    for request in batch.requests() {
        encode_request(request, &mut out);
    }
    out
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&len_u64(bytes.len()).to_be_bytes());
    out.extend_from_slice(bytes);
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
}
