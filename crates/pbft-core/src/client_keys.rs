//! Clients that sign their requests.
//!
//! The paper assumes every request is signed by its client (§4.1), so that
//! no replica can order an operation in a client's name. Here signing is
//! per client: a replica configured with a client's Ed25519 public key
//! ([`Config::client_keys`](crate::Config::client_keys)) orders that
//! client's requests only with a valid signature over
//! [`request_bytes`](crate::request_bytes), whoever relays them. A client
//! without a configured key is accepted unsigned, as the seed's and
//! Maelstrom's clients are; a faulty replica can then forge requests in its
//! name (see `docs/design.md`).

use std::collections::{BTreeMap, HashMap};

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use crate::auth::{AuthFailure, Signature};
use crate::canonical::request_bytes;
use crate::config::ConfigError;
use crate::request::Request;
use crate::types::ClientId;

/// The public keys of the clients that sign, checked once when the replica
/// is built.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientKeys {
    keys: HashMap<ClientId, VerifyingKey>,
}

impl ClientKeys {
    /// Parses every key, refusing one that is not an Ed25519 point or is
    /// of small order.
    pub(crate) fn new(keys: &BTreeMap<ClientId, [u8; 32]>) -> Result<ClientKeys, ConfigError> {
        let keys = keys
            .iter()
            .map(|(client, bytes)| {
                VerifyingKey::from_bytes(bytes)
                    .ok()
                    // A small-order key is refused too: anyone could sign
                    // for it, and strict checks refuse its signatures.
                    .filter(|key| !key.is_weak())
                    .map(|key| (client.clone(), key))
                    .ok_or_else(|| ConfigError::InvalidClientKey(client.clone()))
            })
            .collect::<Result<_, _>>()?;
        Ok(ClientKeys { keys })
    }

    /// Whether `request` may be ordered as its client's: always for a
    /// client without a key, otherwise only with its valid signature.
    pub(crate) fn check(&self, request: &Request) -> Result<(), AuthFailure> {
        let Some(key) = self.keys.get(&request.client) else {
            return Ok(());
        };
        let signature = request.signature().ok_or(AuthFailure::Missing)?;
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
        // Strict, as for replica messages: no malleable signatures.
        key.verify_strict(&request_bytes(request), &signature)
            .map_err(|_| AuthFailure::Invalid)
    }

    /// Checks every request of a batch as [`check`](Self::check) does,
    /// and names the first that fails. The signatures are verified
    /// together: Ed25519 batch verification costs about 14 µs a signature
    /// in batches of 16 to 64, against 34 µs for one strict check
    /// (`cargo bench -p pbft-core --bench auth`; docs/performance.md).
    ///
    /// A batch check accepts every signature a single check accepts, and
    /// fails if any signature is forged. It is not strict in one way: it
    /// may accept a signature that only its signer could have made, with a
    /// small-order component added on purpose, that a strict single check
    /// refuses. Such a request is still its client's. Every replica that
    /// checks the same batch reaches the same verdict, since the check is
    /// deterministic (its random weights come from a transcript of the
    /// batch), so a faulty primary cannot split the honest backups this way.
    pub(crate) fn check_all<'a>(
        &self,
        requests: &'a [Request],
    ) -> Result<(), (&'a Request, AuthFailure)> {
        let one_by_one = || {
            requests
                .iter()
                .try_for_each(|r| self.check(r).map_err(|failure| (r, failure)))
        };
        let mut messages = Vec::new();
        let mut signatures = Vec::new();
        let mut keys = Vec::new();
        for request in requests {
            let Some(key) = self.keys.get(&request.client) else {
                continue;
            };
            let Some(signature) = request.signature() else {
                return one_by_one();
            };
            messages.push(request_bytes(request));
            signatures.push(ed25519_dalek::Signature::from_bytes(&signature.0));
            keys.push(*key);
        }
        if messages.len() < 2 {
            return one_by_one();
        }
        let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        match ed25519_dalek::verify_batch(&messages, &signatures, &keys) {
            Ok(()) => Ok(()),
            // Some signature is bad: find the first, as single checks do.
            Err(_) => one_by_one(),
        }
    }
}

impl Request {
    /// The same request signed by its client with the 32-byte Ed25519
    /// secret key `secret`, over [`request_bytes`](crate::request_bytes).
    /// The public key to configure is
    /// [`Ed25519Auth::public_key`](crate::Ed25519Auth::public_key)`(secret)`.
    ///
    /// Each call derives the public key from `secret` again, which costs
    /// about as much as the signature: a client that signs many requests
    /// keeps a [`RequestSigner`] instead.
    pub fn signed_with(self, secret: &[u8; 32]) -> Request {
        RequestSigner::new(secret).sign(self)
    }
}

/// A client's Ed25519 signing key, ready to sign many requests: its public
/// half is derived once, when it is made, rather than for every signature.
#[derive(Clone)]
pub struct RequestSigner(SigningKey);

impl RequestSigner {
    /// The signer for the 32-byte secret key `secret`.
    pub fn new(secret: &[u8; 32]) -> RequestSigner {
        RequestSigner(SigningKey::from_bytes(secret))
    }

    /// `request` signed over [`request_bytes`](crate::request_bytes), as
    /// [`Request::signed_with`] signs it.
    pub fn sign(&self, request: Request) -> Request {
        let signature = self.0.sign(&request_bytes(&request));
        request.with_signature(Some(Signature(signature.to_bytes())))
    }
}

impl std::fmt::Debug for RequestSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret key.
        f.debug_struct("RequestSigner").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Ed25519Auth;

    fn keys(client: &str, secret: [u8; 32]) -> ClientKeys {
        let table = BTreeMap::from([(ClientId::from(client), Ed25519Auth::public_key(secret))]);
        ClientKeys::new(&table).expect("valid key")
    }

    #[test]
    fn a_kept_signer_signs_as_the_secret_key_does() {
        let request = Request::new("c1", Some(1), "set x=1");
        let signer = RequestSigner::new(&[1; 32]);
        assert_eq!(
            signer.sign(request.clone()),
            request.clone().signed_with(&[1; 32])
        );
        assert_eq!(keys("c1", [1; 32]).check(&signer.sign(request)), Ok(()));
        assert!(!format!("{signer:?}").contains("1, 1"), "no secret printed");
    }

    #[test]
    fn a_keyed_clients_request_needs_its_own_valid_signature() {
        let keys = keys("c1", [1; 32]);
        let request = Request::new("c1", Some(1), "set x=1");
        assert_eq!(keys.check(&request), Err(AuthFailure::Missing));
        assert_eq!(keys.check(&request.clone().signed_with(&[1; 32])), Ok(()));
        assert_eq!(
            keys.check(&request.clone().signed_with(&[2; 32])),
            Err(AuthFailure::Invalid),
            "another key"
        );
        // A signature for one request does not carry over to another.
        let signature = request.clone().signed_with(&[1; 32]).signature().copied();
        let other = Request::new("c1", Some(1), "set x=666").with_signature(signature);
        assert_eq!(keys.check(&other), Err(AuthFailure::Invalid));
    }

    fn three_keyed_clients() -> ClientKeys {
        let table = (1..=3)
            .map(|i| {
                (
                    ClientId::from(format!("c{i}").as_str()),
                    Ed25519Auth::public_key([i; 32]),
                )
            })
            .collect();
        ClientKeys::new(&table).expect("valid keys")
    }

    fn signed(client: u8, op: &str) -> Request {
        Request::new(&format!("c{client}"), Some(1), op).signed_with(&[client; 32])
    }

    #[test]
    fn a_batch_of_valid_signatures_checks_together() {
        let keys = three_keyed_clients();
        let batch = [
            signed(1, "set a=1"),
            Request::new("c9", Some(1), "set unsigned=1"),
            signed(2, "set b=2"),
            signed(3, "set c=3"),
        ];
        assert_eq!(keys.check_all(&batch), Ok(()));
        assert_eq!(keys.check_all(&batch[..1]), Ok(()));
        assert_eq!(keys.check_all(&[]), Ok(()));
    }

    #[test]
    fn a_batch_names_its_first_bad_request() {
        let keys = three_keyed_clients();
        // c2's request signed with c3's key.
        let forged = Request::new("c2", Some(1), "set b=2").signed_with(&[3; 32]);
        let batch = [signed(1, "set a=1"), forged.clone(), signed(3, "set c=3")];
        assert_eq!(
            keys.check_all(&batch),
            Err((&batch[1], AuthFailure::Invalid))
        );
        let unsigned = Request::new("c3", Some(1), "set c=3");
        let batch = [signed(1, "set a=1"), forged, unsigned];
        assert_eq!(
            keys.check_all(&batch),
            Err((&batch[1], AuthFailure::Invalid)),
            "the first failure in order, even when a later one is unsigned"
        );
        let batch = [signed(1, "set a=1"), Request::new("c2", Some(1), "set b=2")];
        assert_eq!(
            keys.check_all(&batch),
            Err((&batch[1], AuthFailure::Missing))
        );
    }

    #[test]
    fn a_small_order_key_is_refused() {
        // The identity point: every signature "verifies" under it loosely.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let table = BTreeMap::from([(ClientId::from("c1"), identity)]);
        assert_eq!(
            ClientKeys::new(&table).err(),
            Some(ConfigError::InvalidClientKey(ClientId::from("c1")))
        );
    }

    #[test]
    fn a_client_without_a_key_is_accepted_unsigned() {
        let keys = keys("c1", [1; 32]);
        assert_eq!(keys.check(&Request::new("c2", Some(1), "get x")), Ok(()));
    }

    #[test]
    fn a_key_that_is_not_a_point_is_refused() {
        let bad = (0u8..=255)
            .map(|b| [b; 32])
            .find(|bytes| !Ed25519Auth::is_valid_public_key(bytes))
            .expect("some byte pattern is not a point");
        let table = BTreeMap::from([(ClientId::from("c9"), bad)]);
        assert_eq!(
            ClientKeys::new(&table).err(),
            Some(ConfigError::InvalidClientKey(ClientId::from("c9")))
        );
    }
}
