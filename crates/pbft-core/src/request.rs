//! Client requests and the batches a primary orders.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::auth::Signature;
use crate::canonical;
use crate::digest::Digest;
use crate::types::ClientId;

/// A client request `<REQUEST, o, t, c>σc` (§4.1).
///
/// `timestamp` is the client's own increasing request number. Requests that
/// carry one are deduplicated: a `(client, timestamp)` is executed at most
/// once, and only the request executed under it (the same digest) is ever
/// answered with its result. Requests without one are never deduplicated.
///
/// [`signature`](Request::signature) is the client's Ed25519 signature over
/// [`request_bytes`](crate::request_bytes), the same bytes the digest
/// covers. It is evidence about the request, not part of it: it is not in
/// the request's digest, and two requests that differ only in their
/// signatures are equal (and hash alike). A batch's digest does cover the
/// signatures its requests carry ([`batch_bytes`](crate::batch_bytes)), so
/// that a pre-prepare's certificates carry them unaltered. A replica
/// configured with the client's public key
/// ([`Config::client_keys`](crate::Config::client_keys)) orders the
/// request only with a valid one; for other clients it is carried along
/// and ignored.
#[derive(Clone, Debug)]
pub struct Request {
    /// Who sent it, as identified by the transport.
    pub client: ClientId,
    /// The client's request number, if it supplied one.
    pub timestamp: Option<u64>,
    /// The operation for the service, for example `set x=1`.
    pub operation: Arc<str>,
    /// The client's signature, if it signs its requests. Shared, so that
    /// the many copies of a request a replica keeps stay small.
    signature: Option<Arc<Signature>>,
}

impl Request {
    /// Builds an unsigned request.
    pub fn new(client: &str, timestamp: Option<u64>, operation: &str) -> Request {
        Request {
            client: ClientId::from(client),
            timestamp,
            operation: Arc::from(operation),
            signature: None,
        }
    }

    /// The same request carrying `signature`.
    pub fn with_signature(self, signature: Option<Signature>) -> Request {
        Request {
            signature: signature.map(Arc::new),
            ..self
        }
    }

    /// The client's signature, if the request carries one.
    pub fn signature(&self) -> Option<&Signature> {
        self.signature.as_deref()
    }

    /// SHA-256 over the request's canonical encoding. The signature is not
    /// part of it.
    pub fn digest(&self) -> Digest {
        Digest::of(&canonical::request_bytes(self))
    }

    /// What identifies the request: everything but the signature.
    fn key(&self) -> (&ClientId, Option<u64>, &str) {
        (&self.client, self.timestamp, &self.operation)
    }

    /// An upper bound on the bytes the request takes in any message on the
    /// wire: its client and operation with every byte counted as the most
    /// a text encoding may spend on it (6 for a control character written
    /// as `\u00XX`, 2 for a quote or backslash, 1 otherwise), plus
    /// [`REQUEST_OVERHEAD`] for the field names and the timestamp, and
    /// [`SIGNATURE_OVERHEAD`] when it carries a client's signature. The
    /// limits on requests and batches are checked against this.
    pub fn size(&self) -> usize {
        let signature = if self.signature.is_some() {
            SIGNATURE_OVERHEAD
        } else {
            0
        };
        escaped_len(self.client.as_str())
            .saturating_add(escaped_len(&self.operation))
            .saturating_add(REQUEST_OVERHEAD)
            .saturating_add(signature)
    }
}

/// What [`Request::size`] adds to a request's text for the rest of its
/// encoding: field names, punctuation and a timestamp of up to 20 digits.
pub const REQUEST_OVERHEAD: usize = 64;

/// What [`Request::size`] adds for a client's signature: 128 hex digits
/// and its field name.
pub const SIGNATURE_OVERHEAD: usize = 160;

/// The most bytes `text` can take once escaped inside a quoted string.
fn escaped_len(text: &str) -> usize {
    text.bytes()
        .map(|b| match b {
            0..=0x1f => 6,
            b'"' | b'\\' => 2,
            _ => 1,
        })
        .sum()
}

impl PartialEq for Request {
    fn eq(&self, other: &Request) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Request {}

impl Hash for Request {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialOrd for Request {
    fn partial_cmp(&self, other: &Request) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Request {
    fn cmp(&self, other: &Request) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// The requests a pre-prepare orders at one sequence number, with the
/// batch's digest and each request's, computed once when the batch is
/// built.
///
/// An empty batch is the paper's *null request*, which executes as a no-op
/// (§4.4: it fills gaps after a view change).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    requests: Vec<Request>,
    digest: Digest,
    /// [`Request::digest`] of each request, in order.
    request_digests: Vec<Digest>,
}

impl Batch {
    /// Builds a batch and computes its digest.
    pub fn new(requests: Vec<Request>) -> Batch {
        let request_digests = canonical::request_digests(&requests);
        let mut batch = Batch {
            requests,
            digest: Digest::default(),
            request_digests,
        };
        batch.digest = Digest::of(&canonical::batch_bytes(&batch));
        batch
    }

    /// A batch of exactly one request.
    pub fn single(request: Request) -> Batch {
        Batch::new(vec![request])
    }

    /// SHA-256 over the canonical encoding of the requests, in order.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The requests, in execution order.
    pub fn requests(&self) -> &[Request] {
        &self.requests
    }

    /// Each request with its [`Request::digest`], in execution order.
    pub fn with_digests(&self) -> impl Iterator<Item = (&Request, Digest)> {
        self.requests
            .iter()
            .zip(self.request_digests.iter().copied())
    }

    /// How many requests the batch holds.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// The sum of the requests' [`size`](Request::size)s: a bound on the
    /// bytes the batch takes on the wire, apart from a message's fixed
    /// fields.
    pub fn size(&self) -> usize {
        self.requests
            .iter()
            .fold(0usize, |sum, r| sum.saturating_add(r.size()))
    }

    /// True for the null request.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_covers_every_field() {
        let base = Request::new("c1", Some(1), "set x=1");
        let variants = [
            Request::new("c2", Some(1), "set x=1"),
            Request::new("c1", Some(2), "set x=1"),
            Request::new("c1", None, "set x=1"),
            Request::new("c1", Some(1), "set x=2"),
        ];
        for other in variants {
            assert_ne!(base.digest(), other.digest(), "{other:?}");
        }
        assert_eq!(base.digest(), base.clone().digest());
    }

    #[test]
    fn the_signature_is_neither_in_the_digest_nor_in_equality() {
        let base = Request::new("c1", Some(1), "set x=1");
        let signed = base.clone().with_signature(Some(Signature([7; 64])));
        assert_eq!(base.digest(), signed.digest());
        assert_eq!(base, signed);
        // A batch binds the signatures it carries.
        assert_ne!(Batch::single(base).digest(), Batch::single(signed).digest());
    }

    #[test]
    fn a_batch_knows_each_requests_digest() {
        let requests = vec![
            Request::new("c1", Some(1), "set x=1"),
            Request::new("c2", None, "get x").with_signature(Some(Signature([1; 64]))),
        ];
        let batch = Batch::new(requests.clone());
        let digests: Vec<Digest> = batch.with_digests().map(|(_, d)| d).collect();
        let expected: Vec<Digest> = requests.iter().map(Request::digest).collect();
        assert_eq!(digests, expected);
    }

    #[test]
    fn size_bounds_the_escaped_text() {
        let plain = Request::new("c1", Some(1), "set x=1");
        assert_eq!(plain.size(), 2 + 7 + REQUEST_OVERHEAD);
        let escaped = Request::new("c1", None, "\"\\\n");
        assert_eq!(escaped.size(), 2 + 2 + 2 + 6 + REQUEST_OVERHEAD);
        let batch = Batch::new(vec![plain.clone(), escaped.clone()]);
        assert_eq!(batch.size(), plain.size() + escaped.size());
        assert_eq!(Batch::new(vec![]).size(), 0);
        let signed = plain.clone().with_signature(Some(Signature([7; 64])));
        assert_eq!(signed.size(), plain.size() + SIGNATURE_OVERHEAD);
    }

    #[test]
    fn batch_digest_is_computed_from_its_requests() {
        let r = Request::new("c1", None, "get x");
        assert_eq!(
            Batch::single(r.clone()).digest(),
            Batch::new(vec![r]).digest()
        );
        assert_ne!(
            Batch::new(vec![]).digest(),
            Batch::single(Request::new("c1", None, "")).digest()
        );
    }
}
