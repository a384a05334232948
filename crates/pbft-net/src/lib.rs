//! # pbft-net
//!
//! The TCP transport for PBFT replicas and their clients. It moves opaque
//! frames (one encoded message each) between members of a cluster, and
//! vouches for who sent each one: the driver gets `(authenticated sender,
//! frame bytes)` and hands the core a sender the transport proved.
//!
//! - **Framing** ([`frame`]): `len:u32 kind:u8 payload`, at most
//!   [`MAX_FRAME_BYTES`] (16 MiB, the node's line limit), checked before
//!   anything is allocated.
//! - **Handshake** ([`handshake`]): each side signs a transcript binding
//!   both identities, both fresh nonces, its role and the protocol version
//!   with its Ed25519 key, so nobody can take another member's place.
//! - **One connection per pair**: a replica dials every replica with a
//!   higher id and accepts only lower ones; clients dial every replica. A
//!   newer authenticated connection from the same member replaces the
//!   older one (the member restarted).
//! - **Reconnection** with exponential backoff, capped
//!   ([`NetConfig::backoff_max`]).
//! - **Bounded memory**: each peer has a queue bounded by frames and bytes
//!   that outlives its connections; a full queue drops (the protocol
//!   retransmits) and [`Transport::send`] never blocks. Received frames are
//!   bounded by count (the event channel) and by bytes.
//! - **Bad input closes only its own connection**, with a log line:
//!   garbage, oversized frames, failed or stalled handshakes, silent peers.
//!
//! Threads and crossbeam channels, not async: see `docs/design.md`.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use std::net::TcpListener;
//! use pbft_core::ReplicaId;
//! use pbft_net::{Event, Identity, NetConfig, PeerId, ReplicaEntry, Roster, Transport};
//!
//! # fn keys() -> ([u8; 32], Vec<ReplicaEntry>) { unimplemented!() }
//! let (secret, replicas) = keys();
//! let roster = Roster::new(replicas, BTreeMap::new()).expect("valid keys");
//! let me = PeerId::Replica(ReplicaId(0));
//! let identity = Identity::new(me, secret, &roster).expect("my own key");
//! let listener = TcpListener::bind("127.0.0.1:7000").expect("port free");
//! let (transport, events) =
//!     Transport::start(identity, roster, Some(listener), NetConfig::default())
//!         .expect("started");
//! transport.send(&PeerId::Replica(ReplicaId(1)), b"hello".to_vec()).ok();
//! for event in events {
//!     if let Event::Frame { from, frame } = event {
//!         println!("{from} sent {} bytes", frame.len());
//!     }
//! }
//! ```

#![deny(missing_docs)]

mod config;
mod event;
pub mod frame;
pub mod handshake;
mod peer;
mod roster;
mod transport;

pub use config::{ConfigError, NetConfig};
pub use event::{CloseReason, Event, Frame};
pub use frame::MAX_FRAME_BYTES;
pub use handshake::Refusal;
pub use peer::{PeerStats, SendError};
pub use roster::{Identity, PeerId, ReplicaEntry, Roster, RosterError, MAX_CLIENT_ID_BYTES};
pub use transport::{StartError, Transport};
