//! Who may connect: every replica's address and public key, the public
//! keys of the clients that may connect, and this process's own identity.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use ed25519_dalek::{SigningKey, VerifyingKey};
use pbft_core::{ClientId, ReplicaId};

/// The longest client id the handshake carries (its length is one byte).
pub const MAX_CLIENT_ID_BYTES: usize = 255;

/// A party at the other end of a connection, as the handshake proved it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerId {
    /// A replica, by its index in the cluster.
    Replica(ReplicaId),
    /// A client, by its id.
    Client(ClientId),
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerId::Replica(r) => write!(f, "replica {}", r.0),
            PeerId::Client(c) => write!(f, "client {c}"),
        }
    }
}

/// One replica of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaEntry {
    /// Its node id (`n1`), for logs.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its Ed25519 public key.
    pub public_key: [u8; 32],
}

/// Why a roster or an identity cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RosterError {
    /// A public key is not a valid Ed25519 point.
    InvalidKey(PeerId),
    /// A client id is empty or longer than [`MAX_CLIENT_ID_BYTES`].
    BadClientId(String),
    /// The identity names a member the roster does not hold.
    NotAMember(PeerId),
    /// The secret key does not belong to the identity's public key.
    SecretDoesNotMatch(PeerId),
    /// More replicas than replica ids.
    TooManyReplicas(usize),
}

impl fmt::Display for RosterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RosterError::InvalidKey(p) => write!(f, "the public key of {p} is not valid"),
            RosterError::BadClientId(c) => write!(
                f,
                "client id {c:?} is empty or longer than {MAX_CLIENT_ID_BYTES} bytes"
            ),
            RosterError::NotAMember(p) => write!(f, "{p} is not in the roster"),
            RosterError::SecretDoesNotMatch(p) => {
                write!(f, "the secret key does not belong to {p}")
            }
            RosterError::TooManyReplicas(n) => write!(f, "{n} replicas are too many"),
        }
    }
}

impl std::error::Error for RosterError {}

/// The members of a cluster as the transport sees them.
#[derive(Clone, Debug)]
pub struct Roster {
    replicas: Vec<(ReplicaEntry, VerifyingKey)>,
    clients: BTreeMap<ClientId, VerifyingKey>,
}

impl Roster {
    /// The replicas, in replica order (replica `i` is `replicas[i]`), and
    /// the clients that may connect, with their public keys.
    pub fn new(
        replicas: Vec<ReplicaEntry>,
        clients: BTreeMap<ClientId, [u8; 32]>,
    ) -> Result<Roster, RosterError> {
        if u32::try_from(replicas.len()).is_err() {
            return Err(RosterError::TooManyReplicas(replicas.len()));
        }
        let replicas = replicas
            .into_iter()
            .zip(0u32..)
            .map(|(entry, i)| {
                let key = VerifyingKey::from_bytes(&entry.public_key)
                    .map_err(|_| RosterError::InvalidKey(PeerId::Replica(ReplicaId(i))))?;
                Ok((entry, key))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let clients = clients
            .into_iter()
            .map(|(client, bytes)| {
                if client.as_str().is_empty() || client.as_str().len() > MAX_CLIENT_ID_BYTES {
                    return Err(RosterError::BadClientId(client.to_string()));
                }
                let key = VerifyingKey::from_bytes(&bytes)
                    .map_err(|_| RosterError::InvalidKey(PeerId::Client(client.clone())))?;
                Ok((client, key))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        Ok(Roster { replicas, clients })
    }

    /// How many replicas.
    pub fn replicas(&self) -> usize {
        self.replicas.len()
    }

    /// A replica's entry.
    pub fn replica(&self, id: ReplicaId) -> Option<&ReplicaEntry> {
        self.replicas.get(id.index()).map(|(entry, _)| entry)
    }

    /// The public key of a member, if it is one.
    pub fn key(&self, peer: &PeerId) -> Option<&VerifyingKey> {
        match peer {
            PeerId::Replica(r) => self.replicas.get(r.index()).map(|(_, key)| key),
            PeerId::Client(c) => self.clients.get(c),
        }
    }

    /// A member's name for logs: a replica's node id, a client's id.
    pub fn name(&self, peer: &PeerId) -> String {
        match peer {
            PeerId::Replica(r) => self
                .replica(*r)
                .map(|e| e.name.clone())
                .unwrap_or_else(|| peer.to_string()),
            PeerId::Client(c) => c.to_string(),
        }
    }
}

/// This process's own identity: who it is and its secret key.
pub struct Identity {
    pub(crate) me: PeerId,
    pub(crate) key: SigningKey,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret key.
        f.debug_struct("Identity")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// `me` with its 32-byte Ed25519 secret key, checked against the
    /// roster's public key for `me`.
    pub fn new(me: PeerId, secret: [u8; 32], roster: &Roster) -> Result<Identity, RosterError> {
        let key = SigningKey::from_bytes(&secret);
        let public = roster
            .key(&me)
            .ok_or_else(|| RosterError::NotAMember(me.clone()))?;
        if key.verifying_key() != *public {
            return Err(RosterError::SecretDoesNotMatch(me));
        }
        Ok(Identity { me, key })
    }

    /// Who this is.
    pub fn me(&self) -> &PeerId {
        &self.me
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, secret: u8) -> ReplicaEntry {
        ReplicaEntry {
            name: name.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            public_key: SigningKey::from_bytes(&[secret; 32])
                .verifying_key()
                .to_bytes(),
        }
    }

    #[test]
    fn an_identity_must_hold_its_own_secret_key() {
        let roster =
            Roster::new(vec![entry("n1", 1), entry("n2", 2)], BTreeMap::new()).expect("roster");
        let r1 = PeerId::Replica(ReplicaId(1));
        assert!(Identity::new(r1.clone(), [2; 32], &roster).is_ok());
        assert_eq!(
            Identity::new(r1.clone(), [1; 32], &roster).err(),
            Some(RosterError::SecretDoesNotMatch(r1))
        );
        let r2 = PeerId::Replica(ReplicaId(2));
        assert_eq!(
            Identity::new(r2.clone(), [2; 32], &roster).err(),
            Some(RosterError::NotAMember(r2))
        );
        assert_eq!(roster.name(&PeerId::Replica(ReplicaId(0))), "n1");
    }

    #[test]
    fn client_ids_must_fit_the_handshake() {
        let long = ClientId::from("c".repeat(MAX_CLIENT_ID_BYTES + 1).as_str());
        let clients = BTreeMap::from([(long, [0u8; 32])]);
        assert!(matches!(
            Roster::new(vec![], clients),
            Err(RosterError::BadClientId(_))
        ));
    }
}
