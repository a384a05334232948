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
    /// Parses every key, refusing one that is not an Ed25519 point.
    pub(crate) fn new(keys: &BTreeMap<ClientId, [u8; 32]>) -> Result<ClientKeys, ConfigError> {
        let keys = keys
            .iter()
            .map(|(client, bytes)| {
                VerifyingKey::from_bytes(bytes)
                    .map(|key| (client.clone(), key))
                    .map_err(|_| ConfigError::InvalidClientKey(client.clone()))
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
}

impl Request {
    /// The same request signed by its client with the 32-byte Ed25519
    /// secret key `secret`, over [`request_bytes`](crate::request_bytes).
    /// The public key to configure is
    /// [`Ed25519Auth::public_key`](crate::Ed25519Auth::public_key)`(secret)`.
    pub fn signed_with(self, secret: &[u8; 32]) -> Request {
        let signature = SigningKey::from_bytes(secret).sign(&request_bytes(&self));
        self.with_signature(Some(Signature(signature.to_bytes())))
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
