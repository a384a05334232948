//! The handshake: before any data frame, each side proves that it holds
//! the secret key of the member it claims to be.
//!
//! ```text
//! hello      = "pbft-net/v1" peer nonce:32            (frame kind 0x10)
//! proof      = signature:64                           (frame kind 0x11)
//! peer       = 0x00 replica:u32 | 0x01 len:u8 client  (client: UTF-8)
//! transcript = "pbft-net/handshake/v1" role:u8
//!              dialer-peer acceptor-peer dialer-nonce:32 acceptor-nonce:32
//! ```
//!
//! Both sides send a hello with a fresh random nonce, read the other's,
//! then send a proof: their Ed25519 signature of the transcript with their
//! own role (0x00 for the dialer, 0x01 for the acceptor). Each checks the
//! other's proof with the public key of the member the other claimed.
//! The signature binds both identities, both nonces and the protocol
//! version: it cannot be replayed on another connection (the other side's
//! nonce is new each time), reflected back to its signer (the role
//! differs), or moved to a connection between other members.

use std::fmt;
use std::io::{Read, Write};

use ed25519_dalek::{Signature, Signer as _, SigningKey};
use pbft_core::{ClientId, ReplicaId};

use crate::frame::{read_frame, write_frame, FrameError, Kind, MAX_HANDSHAKE_FRAME_BYTES};
use crate::roster::{Identity, PeerId, Roster, MAX_CLIENT_ID_BYTES};

/// The protocol tag that opens a hello.
pub const HELLO_TAG: &[u8] = b"pbft-net/v1";

/// The domain tag that opens the signed transcript.
pub const TRANSCRIPT_TAG: &[u8] = b"pbft-net/handshake/v1";

/// Which end of the connection a side is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The side that connected.
    Dialer,
    /// The side that accepted.
    Acceptor,
}

/// Why a handshake failed: the connection is closed and nothing it sent
/// reaches the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The other side spoke another protocol or version.
    WrongProtocol,
    /// A handshake frame was out of order, oversized, or did not parse.
    Malformed(String),
    /// The other side claims to be a member the roster does not hold.
    UnknownPeer(PeerId),
    /// The other side claims to be this process's own identity.
    ClaimsOurIdentity,
    /// A replica dialed a replica that dials it: lower ids dial higher
    /// ones, so this connection is not allowed.
    WrongDirection(PeerId),
    /// The dialed address answered as another member than expected.
    UnexpectedPeer {
        /// Whom this side dialed.
        expected: PeerId,
        /// Whom the other side claims to be.
        found: PeerId,
    },
    /// The proof does not verify with the claimed member's public key:
    /// the other side does not hold that member's secret key.
    BadProof(PeerId),
    /// The other side did not complete the handshake in time.
    Timeout,
    /// The other side closed the connection during the handshake.
    Closed,
    /// Reading or writing failed.
    Io(String),
    /// Too many connections are in their handshake already.
    TooManyPending,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::WrongProtocol => f.write_str("it does not speak pbft-net/v1"),
            Refusal::Malformed(what) => write!(f, "malformed handshake: {what}"),
            Refusal::UnknownPeer(p) => write!(f, "it claims to be {p}, which is not a member"),
            Refusal::ClaimsOurIdentity => f.write_str("it claims to be this very member"),
            Refusal::WrongDirection(p) => write!(
                f,
                "it claims to be {p}, which this replica dials itself (lower ids dial higher)"
            ),
            Refusal::UnexpectedPeer { expected, found } => {
                write!(f, "dialed {expected} but it claims to be {found}")
            }
            Refusal::BadProof(p) => write!(
                f,
                "it claims to be {p} but its proof does not verify with that member's key"
            ),
            Refusal::Timeout => f.write_str("the handshake timed out"),
            Refusal::Closed => f.write_str("it closed the connection during the handshake"),
            Refusal::Io(e) => write!(f, "handshake failed: {e}"),
            Refusal::TooManyPending => f.write_str("too many handshakes in progress"),
        }
    }
}

impl From<FrameError> for Refusal {
    fn from(e: FrameError) -> Self {
        match e {
            _ if e.is_timeout() => Refusal::Timeout,
            FrameError::Closed => Refusal::Closed,
            FrameError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Refusal::Closed,
            FrameError::Io(e) => Refusal::Io(e.to_string()),
            other => Refusal::Malformed(other.to_string()),
        }
    }
}

/// Dials: runs the handshake on a fresh connection to `expected`. Returns
/// the authenticated peer (always `expected`).
pub fn dial(
    stream: &mut (impl Read + Write),
    identity: &Identity,
    roster: &Roster,
    expected: &PeerId,
) -> Result<PeerId, Refusal> {
    run(stream, identity, roster, Role::Dialer, Some(expected))
}

/// Accepts: runs the handshake on a connection that a member opened.
/// Returns the member it proved to be.
pub fn accept(
    stream: &mut (impl Read + Write),
    identity: &Identity,
    roster: &Roster,
) -> Result<PeerId, Refusal> {
    run(stream, identity, roster, Role::Acceptor, None)
}

fn run(
    stream: &mut (impl Read + Write),
    identity: &Identity,
    roster: &Roster,
    role: Role,
    expected: Option<&PeerId>,
) -> Result<PeerId, Refusal> {
    let mut ours = [0u8; 32];
    getrandom::fill(&mut ours).map_err(|e| Refusal::Io(format!("no random nonce: {e}")))?;
    write_frame(stream, Kind::Hello, &hello(&identity.me, &ours))
        .and_then(|()| stream.flush())
        .map_err(|e| Refusal::from(FrameError::Io(e)))?;

    let (peer, theirs) = parse_hello(&expect(stream, Kind::Hello)?)?;
    check_claim(&peer, identity, roster, expected)?;
    let key = roster
        .key(&peer)
        .ok_or_else(|| Refusal::UnknownPeer(peer.clone()))?;

    let (dialer, acceptor, dialer_nonce, acceptor_nonce) = match role {
        Role::Dialer => (&identity.me, &peer, &ours, &theirs),
        Role::Acceptor => (&peer, &identity.me, &theirs, &ours),
    };
    let transcript =
        |signer: Role| transcript(signer, dialer, acceptor, dialer_nonce, acceptor_nonce);
    let proof = sign(&identity.key, &transcript(role));
    write_frame(stream, Kind::Proof, &proof.to_bytes())
        .and_then(|()| stream.flush())
        .map_err(|e| Refusal::from(FrameError::Io(e)))?;

    let their_proof = expect(stream, Kind::Proof)?;
    let their_proof: [u8; 64] = their_proof
        .try_into()
        .map_err(|_| Refusal::Malformed("a proof is 64 bytes".into()))?;
    let their_role = match role {
        Role::Dialer => Role::Acceptor,
        Role::Acceptor => Role::Dialer,
    };
    // Strict verification, as for messages: no malleable signatures.
    key.verify_strict(
        &transcript(their_role),
        &Signature::from_bytes(&their_proof),
    )
    .map_err(|_| Refusal::BadProof(peer.clone()))?;
    Ok(peer)
}

/// Whether the member the other side claims to be may open (or answer)
/// this connection.
fn check_claim(
    peer: &PeerId,
    identity: &Identity,
    roster: &Roster,
    expected: Option<&PeerId>,
) -> Result<(), Refusal> {
    if let Some(expected) = expected {
        if peer != expected {
            return Err(Refusal::UnexpectedPeer {
                expected: expected.clone(),
                found: peer.clone(),
            });
        }
    }
    if *peer == identity.me {
        return Err(Refusal::ClaimsOurIdentity);
    }
    if roster.key(peer).is_none() {
        return Err(Refusal::UnknownPeer(peer.clone()));
    }
    if expected.is_none() {
        // Accepting: a replica is dialed only by lower replicas, and
        // clients never accept.
        match (&identity.me, peer) {
            (PeerId::Replica(me), PeerId::Replica(them)) if them > me => {
                return Err(Refusal::WrongDirection(peer.clone()))
            }
            (PeerId::Client(_), _) => return Err(Refusal::WrongDirection(peer.clone())),
            _ => {}
        }
    }
    Ok(())
}

fn expect(stream: &mut impl Read, kind: Kind) -> Result<Vec<u8>, Refusal> {
    let (got, payload) = read_frame(stream, MAX_HANDSHAKE_FRAME_BYTES)?;
    if got != kind {
        return Err(Refusal::Malformed(format!(
            "expected a {kind:?} frame, got {got:?}"
        )));
    }
    Ok(payload)
}

fn sign(key: &SigningKey, transcript: &[u8]) -> Signature {
    key.sign(transcript)
}

/// A hello's payload.
pub fn hello(me: &PeerId, nonce: &[u8; 32]) -> Vec<u8> {
    let mut out = HELLO_TAG.to_vec();
    encode_peer(&mut out, me);
    out.extend_from_slice(nonce);
    out
}

fn parse_hello(payload: &[u8]) -> Result<(PeerId, [u8; 32]), Refusal> {
    let rest = payload
        .strip_prefix(HELLO_TAG)
        .ok_or(Refusal::WrongProtocol)?;
    let malformed = |what: &str| Refusal::Malformed(format!("hello: {what}"));
    let (&tag, rest) = rest.split_first().ok_or_else(|| malformed("no identity"))?;
    let (peer, rest) = match tag {
        0x00 => {
            let (id, rest) = rest
                .split_first_chunk::<4>()
                .ok_or_else(|| malformed("short replica id"))?;
            (PeerId::Replica(ReplicaId(u32::from_be_bytes(*id))), rest)
        }
        0x01 => {
            let (&len, rest) = rest
                .split_first()
                .ok_or_else(|| malformed("no client id"))?;
            let len = usize::from(len);
            if len == 0 || rest.len() < len {
                return Err(malformed("bad client id length"));
            }
            let name =
                std::str::from_utf8(&rest[..len]).map_err(|_| malformed("client id not UTF-8"))?;
            (PeerId::Client(ClientId::from(name)), &rest[len..])
        }
        _ => return Err(malformed("unknown identity kind")),
    };
    let nonce: [u8; 32] = rest
        .try_into()
        .map_err(|_| malformed("the nonce is 32 bytes and ends the hello"))?;
    Ok((peer, nonce))
}

fn encode_peer(out: &mut Vec<u8>, peer: &PeerId) {
    match peer {
        PeerId::Replica(r) => {
            out.push(0x00);
            out.extend_from_slice(&r.0.to_be_bytes());
        }
        PeerId::Client(c) => {
            // The roster refuses longer ids, so this never truncates.
            let bytes = &c.as_str().as_bytes()[..c.as_str().len().min(MAX_CLIENT_ID_BYTES)];
            out.push(0x01);
            out.push(bytes.len() as u8);
            out.extend_from_slice(bytes);
        }
    }
}

/// The bytes a side signs to prove its identity on one connection.
pub fn transcript(
    signer: Role,
    dialer: &PeerId,
    acceptor: &PeerId,
    dialer_nonce: &[u8; 32],
    acceptor_nonce: &[u8; 32],
) -> Vec<u8> {
    let mut out = TRANSCRIPT_TAG.to_vec();
    out.push(match signer {
        Role::Dialer => 0x00,
        Role::Acceptor => 0x01,
    });
    encode_peer(&mut out, dialer);
    encode_peer(&mut out, acceptor);
    out.extend_from_slice(dialer_nonce);
    out.extend_from_slice(acceptor_nonce);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_parses_back() {
        let nonce = [7u8; 32];
        for peer in [
            PeerId::Replica(ReplicaId(3)),
            PeerId::Client(ClientId::from("c1")),
        ] {
            assert_eq!(parse_hello(&hello(&peer, &nonce)), Ok((peer, nonce)));
        }
    }

    #[test]
    fn hellos_that_do_not_parse_are_refused() {
        let nonce = [7u8; 32];
        let good = hello(&PeerId::Replica(ReplicaId(1)), &nonce);
        assert_eq!(parse_hello(b"HTTP/1.1 200 OK"), Err(Refusal::WrongProtocol));
        assert!(matches!(
            parse_hello(&good[..good.len() - 1]),
            Err(Refusal::Malformed(_))
        ));
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(parse_hello(&long), Err(Refusal::Malformed(_))));
        let mut bad_kind = good;
        bad_kind[HELLO_TAG.len()] = 0x05;
        assert!(matches!(parse_hello(&bad_kind), Err(Refusal::Malformed(_))));
    }

    #[test]
    fn transcripts_differ_by_role_identity_and_nonce() {
        let (a, b) = (PeerId::Replica(ReplicaId(0)), PeerId::Replica(ReplicaId(1)));
        let (x, y) = ([1u8; 32], [2u8; 32]);
        let base = transcript(Role::Dialer, &a, &b, &x, &y);
        assert_ne!(base, transcript(Role::Acceptor, &a, &b, &x, &y));
        assert_ne!(base, transcript(Role::Dialer, &b, &a, &x, &y));
        assert_ne!(base, transcript(Role::Dialer, &a, &b, &y, &x));
        assert!(base.starts_with(TRANSCRIPT_TAG));
    }
}
