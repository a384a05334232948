//! Who sent a message: signatures over replica messages (§4, with
//! signatures in place of the paper's MACs).
//!
//! The core calls an [`Authenticator`]: it signs every message a replica
//! sends and verifies every message it receives, once, before the message
//! can touch any state. Verification is done by the core rather than by
//! the caller because certificates (a prepared certificate now; checkpoint
//! proofs and view changes later) carry other replicas' messages, and the
//! core must check each member itself.
//!
//! Two authenticators come with the crate:
//!
//! - [`Ed25519Auth`]: Ed25519 signatures over the canonical encoding of the
//!   message ([`message_bytes`](crate::message_bytes)). Safe against
//!   Byzantine replicas.
//! - [`Unauthenticated`]: no signatures. For a trusted transport or a
//!   single trust domain (the node's embedded default). Not safe against a
//!   Byzantine sender, which can speak for any replica.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::canonical::message_bytes;
use crate::hex::{self, ParseHexError};
use crate::message::Message;
use crate::types::ReplicaId;

/// An Ed25519 signature. On the wire it is 128 hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex::write(f, &self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", &self.to_string()[..8])
    }
}

impl FromStr for Signature {
    type Err = ParseHexError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        hex::parse(text).map(Signature)
    }
}

/// Why a message's signature was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// The message carries no signature.
    Missing,
    /// The signature is not the claimed signer's signature of this
    /// message: forged, made by another replica, or the message was
    /// altered.
    Invalid,
    /// The claimed signer has no key here.
    UnknownSigner,
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthFailure::Missing => "no signature",
            AuthFailure::Invalid => "the signature does not verify",
            AuthFailure::UnknownSigner => "no public key for the signer",
        })
    }
}

/// Signs this replica's messages and verifies its peers'.
///
/// Implementations must be deterministic in what they accept: whether a
/// signature verifies depends only on the signer, the message and the
/// signature.
pub trait Authenticator: Send + Sync {
    /// Signs `message` as this replica. `None` means this authenticator
    /// does not sign.
    fn sign(&self, message: &Message) -> Option<Signature>;

    /// Checks that `signer` signed `message`.
    fn verify(
        &self,
        signer: ReplicaId,
        message: &Message,
        signature: Option<&Signature>,
    ) -> Result<(), AuthFailure>;
}

/// No authentication: nothing is signed and everything verifies.
///
/// Only for a transport that already vouches for every sender, or for
/// replicas that share one process. A Byzantine peer can speak for any
/// replica.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unauthenticated;

impl Authenticator for Unauthenticated {
    fn sign(&self, _: &Message) -> Option<Signature> {
        None
    }

    fn verify(&self, _: ReplicaId, _: &Message, _: Option<&Signature>) -> Result<(), AuthFailure> {
        Ok(())
    }
}

/// Ed25519 signatures: this replica's secret key and every replica's
/// public key, indexed by replica.
pub struct Ed25519Auth {
    secret: SigningKey,
    publics: Vec<VerifyingKey>,
}

/// Why a set of keys cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// The public key of this replica is not a valid Ed25519 point.
    InvalidPublicKey(ReplicaId),
    /// There is no public key for this replica, which is `id`.
    NoPublicKey(ReplicaId),
    /// The secret key does not belong to this replica's public key.
    SecretDoesNotMatch(ReplicaId),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::InvalidPublicKey(r) => {
                write!(f, "the public key of {r} is not a valid Ed25519 key")
            }
            KeyError::NoPublicKey(r) => write!(f, "there is no public key for {r}"),
            KeyError::SecretDoesNotMatch(r) => {
                write!(f, "the secret key does not match the public key of {r}")
            }
        }
    }
}

impl std::error::Error for KeyError {}

impl Ed25519Auth {
    /// Keys for replica `me`: its 32-byte secret key and the public key of
    /// every replica, in replica order.
    pub fn new(me: ReplicaId, secret: [u8; 32], publics: &[[u8; 32]]) -> Result<Self, KeyError> {
        let publics = publics
            .iter()
            .zip(0u32..)
            .map(|(bytes, i)| {
                VerifyingKey::from_bytes(bytes)
                    .map_err(|_| KeyError::InvalidPublicKey(ReplicaId(i)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let secret = SigningKey::from_bytes(&secret);
        let own = publics.get(me.index()).ok_or(KeyError::NoPublicKey(me))?;
        if secret.verifying_key() != *own {
            return Err(KeyError::SecretDoesNotMatch(me));
        }
        Ok(Ed25519Auth { secret, publics })
    }

    /// Whether 32 bytes are a valid Ed25519 public key (a point on the
    /// curve).
    pub fn is_valid_public_key(bytes: &[u8; 32]) -> bool {
        VerifyingKey::from_bytes(bytes).is_ok()
    }

    /// The public key of a 32-byte secret key.
    pub fn public_key(secret: [u8; 32]) -> [u8; 32] {
        SigningKey::from_bytes(&secret).verifying_key().to_bytes()
    }

    /// Deterministic keys for replica `me` of `n`, derived from `seed`: for
    /// tests and simulations, where runs must replay exactly. Anyone who
    /// knows the seed can sign as any replica, so never use these to
    /// protect a real deployment.
    pub fn from_seed(seed: u64, n: usize, me: ReplicaId) -> Result<Self, KeyError> {
        let secrets: Vec<[u8; 32]> = (0..n as u64).map(|i| seeded_secret(seed, i)).collect();
        let publics: Vec<[u8; 32]> = secrets
            .iter()
            .map(|s| Ed25519Auth::public_key(*s))
            .collect();
        let secret = *secrets.get(me.index()).ok_or(KeyError::NoPublicKey(me))?;
        Ed25519Auth::new(me, secret, &publics)
    }
}

fn seeded_secret(seed: u64, replica: u64) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"pbft/seeded-key/v1");
    hasher.update(seed.to_be_bytes());
    hasher.update(replica.to_be_bytes());
    hasher.finalize().into()
}

impl Authenticator for Ed25519Auth {
    fn sign(&self, message: &Message) -> Option<Signature> {
        Some(Signature(
            self.secret.sign(&message_bytes(message)).to_bytes(),
        ))
    }

    fn verify(
        &self,
        signer: ReplicaId,
        message: &Message,
        signature: Option<&Signature>,
    ) -> Result<(), AuthFailure> {
        let signature = signature.ok_or(AuthFailure::Missing)?;
        let key = self
            .publics
            .get(signer.index())
            .ok_or(AuthFailure::UnknownSigner)?;
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
        // Strict verification refuses malleable signatures and weak keys,
        // so one message has one valid signature per signer.
        key.verify_strict(&message_bytes(message), &signature)
            .map_err(|_| AuthFailure::Invalid)
    }
}

impl fmt::Debug for Ed25519Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret key.
        f.debug_struct("Ed25519Auth")
            .field("replicas", &self.publics.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::message::Vote;
    use crate::types::{Seq, View};

    fn prepare(replica: u32) -> Message {
        Message::Prepare(Vote {
            view: View(0),
            seq: Seq(1),
            digest: Digest::of(b"x"),
            replica: ReplicaId(replica),
        })
    }

    #[test]
    fn a_signature_verifies_for_its_signer_and_message_only() {
        let r1 = Ed25519Auth::from_seed(7, 4, ReplicaId(1)).expect("keys");
        let r2 = Ed25519Auth::from_seed(7, 4, ReplicaId(2)).expect("keys");
        let m = prepare(1);
        let sig = r1.sign(&m);
        assert_eq!(r2.verify(ReplicaId(1), &m, sig.as_ref()), Ok(()));
        assert_eq!(
            r2.verify(ReplicaId(3), &m, sig.as_ref()),
            Err(AuthFailure::Invalid),
            "another signer"
        );
        assert_eq!(
            r2.verify(ReplicaId(1), &prepare(2), sig.as_ref()),
            Err(AuthFailure::Invalid),
            "another message"
        );
        assert_eq!(r2.verify(ReplicaId(1), &m, None), Err(AuthFailure::Missing));
        assert_eq!(
            r2.verify(ReplicaId(4), &m, sig.as_ref()),
            Err(AuthFailure::UnknownSigner)
        );
        let mut flipped = sig.expect("signed");
        flipped.0[10] ^= 1;
        assert_eq!(
            r2.verify(ReplicaId(1), &m, Some(&flipped)),
            Err(AuthFailure::Invalid)
        );
    }

    #[test]
    fn keys_are_checked_when_built() {
        let secrets = [[1u8; 32], [2u8; 32]];
        let publics: Vec<[u8; 32]> = secrets
            .iter()
            .map(|s| Ed25519Auth::public_key(*s))
            .collect();
        assert!(Ed25519Auth::new(ReplicaId(0), secrets[0], &publics).is_ok());
        assert_eq!(
            Ed25519Auth::new(ReplicaId(1), secrets[0], &publics).err(),
            Some(KeyError::SecretDoesNotMatch(ReplicaId(1)))
        );
        assert_eq!(
            Ed25519Auth::new(ReplicaId(2), secrets[0], &publics).err(),
            Some(KeyError::NoPublicKey(ReplicaId(2)))
        );
        // Not every 32-byte string is a point on the curve.
        let bad = (0u8..=255)
            .map(|b| [b; 32])
            .find(|bytes| VerifyingKey::from_bytes(bytes).is_err())
            .expect("some byte pattern is not a point");
        assert_eq!(
            Ed25519Auth::new(ReplicaId(0), secrets[0], &[publics[0], bad]).err(),
            Some(KeyError::InvalidPublicKey(ReplicaId(1)))
        );
    }

    #[test]
    fn signatures_print_as_hex_and_parse_back() {
        let auth = Ed25519Auth::from_seed(1, 1, ReplicaId(0)).expect("keys");
        let sig = auth.sign(&prepare(0)).expect("signed");
        assert_eq!(sig.to_string().len(), 128);
        assert_eq!(sig.to_string().parse::<Signature>(), Ok(sig));
    }
}
