//! Client requests and the batches a primary orders.

use std::sync::Arc;

use crate::canonical;
use crate::digest::Digest;
use crate::types::ClientId;

/// A client request `<REQUEST, o, t, c>` (§4.1).
///
/// `timestamp` is the client's own increasing request number. Requests that
/// carry one are deduplicated: the same `(client, timestamp)` is ordered and
/// executed at most once. Requests without one are never deduplicated.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Request {
    /// Who sent it, as identified by the transport.
    pub client: ClientId,
    /// The client's request number, if it supplied one.
    pub timestamp: Option<u64>,
    /// The operation for the service, for example `set x=1`.
    pub operation: Arc<str>,
}

impl Request {
    /// Builds a request.
    pub fn new(client: &str, timestamp: Option<u64>, operation: &str) -> Request {
        Request {
            client: ClientId::from(client),
            timestamp,
            operation: Arc::from(operation),
        }
    }

    /// SHA-256 over the request's canonical encoding.
    pub fn digest(&self) -> Digest {
        Digest::of(&canonical::request_bytes(self))
    }

    /// An upper bound on the bytes the request takes in any message on the
    /// wire: its client and operation with every byte counted as the most
    /// a text encoding may spend on it (6 for a control character written
    /// as `\u00XX`, 2 for a quote or backslash, 1 otherwise), plus
    /// [`REQUEST_OVERHEAD`] for the field names and the timestamp. The
    /// limits on requests and batches are checked against this.
    pub fn size(&self) -> usize {
        escaped_len(self.client.as_str())
            .saturating_add(escaped_len(&self.operation))
            .saturating_add(REQUEST_OVERHEAD)
    }
}

/// What [`Request::size`] adds to a request's text for the rest of its
/// encoding: field names, punctuation and a timestamp of up to 20 digits.
pub const REQUEST_OVERHEAD: usize = 64;

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

/// The requests a pre-prepare orders at one sequence number, with their
/// digest, computed once when the batch is built.
///
/// An empty batch is the paper's *null request*, which executes as a no-op
/// (§4.4: it fills gaps after a view change).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    requests: Vec<Request>,
    digest: Digest,
}

impl Batch {
    /// Builds a batch and computes its digest.
    pub fn new(requests: Vec<Request>) -> Batch {
        let mut batch = Batch {
            requests,
            digest: Digest::default(),
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
    fn size_bounds_the_escaped_text() {
        let plain = Request::new("c1", Some(1), "set x=1");
        assert_eq!(plain.size(), 2 + 7 + REQUEST_OVERHEAD);
        let escaped = Request::new("c1", None, "\"\\\n");
        assert_eq!(escaped.size(), 2 + 2 + 2 + 6 + REQUEST_OVERHEAD);
        let batch = Batch::new(vec![plain.clone(), escaped.clone()]);
        assert_eq!(batch.size(), plain.size() + escaped.size());
        assert_eq!(Batch::new(vec![]).size(), 0);
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
