//! # pbft-core: a sans-IO PBFT replica
//!
//! This crate is the replica state machine of Practical Byzantine Fault
//! Tolerance (Castro & Liskov, OSDI '99; TOCS '02). It does no IO: it never
//! reads a clock, a socket, stdin or a global random number generator.
//! Everything comes in as an [`Input`] and everything the replica wants done
//! comes out as an [`Output`] that the caller carries out.
//!
//! ## Driving a replica
//!
//! [`Replica::step`] is the one entry point. Each call takes one input:
//!
//! - [`Input::Message`]: a signed message from a peer, with the sender the
//!   transport names. The replica verifies the signature against that
//!   sender before anything else;
//! - [`Input::Request`]: a client request given to this replica;
//! - [`Input::Tick`]: one unit of time has passed. Ticks drive the
//!   view-change timer ([`Config::view_change_timeout`]); the core never
//!   reads a clock.
//!
//! and appends outputs to a buffer the caller owns, in the order they
//! should be carried out:
//!
//! - [`Output::Send`]: send a [`Signed`] [`Message`] to one peer or to
//!   every other replica;
//! - [`Output::Ordered`]: a client's request has a sequence number: the
//!   acknowledgement to send back. It comes before the pre-prepare that
//!   announces the number, so a client hears back before the protocol
//!   moves on;
//! - [`Output::Refused`]: a client's request will not be ordered, and why;
//! - [`Output::Executed`]: a batch ran, in sequence order, with its results;
//! - [`Output::Rejected`]: a peer's message was ignored, with a typed
//!   [`Rejection`] for logs and tests;
//! - [`Output::Persist`]: only from a durable replica
//!   ([`Replica::restore`]): a [`Record`] to make durable before carrying
//!   out what follows it.
//!
//! Carry the outputs out in order, then call `step` again. There is nothing
//! to acknowledge back to the replica. [`Replica::status`] reads what the
//! log says about one sequence number.
//!
//! ## Authentication
//!
//! Every message a replica sends is signed by its [`Authenticator`], over
//! the canonical bytes [`message_bytes`] defines, and every message it
//! receives is verified against the sender before it can touch any state.
//! A message that fails is rejected with [`Rejection::Unauthentic`] and
//! never counts toward a quorum. [`Ed25519Auth`] is safe against Byzantine
//! replicas; [`Unauthenticated`] trusts the transport and is not.
//!
//! ## One request through all three phases
//!
//! Four replicas tolerate one fault (`n = 3f + 1`, `f = 1`). Here a tiny
//! loop plays the network: it delivers every send until none is left.
//!
//! ```
//! use pbft_core::{
//!     Config, Destination, Ed25519Auth, Input, KvService, Output, Replica, ReplicaId, Request,
//!     Seq, SlotPhase,
//! };
//!
//! let config = Config::new(4);
//! let mut replicas: Vec<_> = (0..4)
//!     .map(|i| {
//!         // Test keys from a seed; a deployment loads real ones.
//!         let keys = Ed25519Auth::from_seed(7, 4, ReplicaId(i)).unwrap();
//!         Replica::new(&config, ReplicaId(i), KvService::default(), keys).unwrap()
//!     })
//!     .collect();
//!
//! // A client sends its request to the primary of view 0, replica 0.
//! let mut out = Vec::new();
//! replicas[0].step(Input::Request(Request::new("c1", Some(1), "set x=42")), &mut out);
//! // The primary acknowledges with sequence number 1, then multicasts the
//! // pre-prepare.
//! assert!(matches!(&out[0], Output::Ordered(o) if o.seq == Seq(1)));
//!
//! // The network: (from, output) pairs still to be carried out.
//! let mut pending: Vec<(ReplicaId, Output)> = out.drain(..).map(|o| (ReplicaId(0), o)).collect();
//! while let Some((from, output)) = pending.pop() {
//!     let Output::Send { to, signed } = output else { continue };
//!     let targets: Vec<ReplicaId> = match to {
//!         Destination::Replica(r) => vec![r],
//!         Destination::Others => (0..4).map(ReplicaId).filter(|r| *r != from).collect(),
//!     };
//!     for target in targets {
//!         let input = Input::Message { from, signed: signed.clone() };
//!         replicas[target.index()].step(input, &mut out);
//!         pending.extend(out.drain(..).map(|o| (target, o)));
//!     }
//! }
//!
//! // Every replica prepared, committed and executed the request.
//! for replica in &replicas {
//!     let status = replica.status(Seq(1));
//!     assert_eq!(status.phase, SlotPhase::Committed);
//!     assert_eq!(status.prepares_received, 3); // the three backups' prepares
//!     assert_eq!(status.commits_received, 4); // everyone's commit
//!     assert!(status.executed);
//!     assert_eq!(replica.service().get("x"), Some("42"));
//! }
//! ```
//!
//! [`Cluster`] does the same with a deterministic FIFO network, message
//! injection for Byzantine tests, and delivery filters.
//!
//! ## Where things are
//!
//! | module | concern |
//! |---|---|
//! | `types`, `digest` | ids ([`ReplicaId`], [`View`], [`Seq`], [`ClientId`]) and SHA-256 [`Digest`]s |
//! | `request`, `canonical` | client [`Request`]s, [`Batch`]es, and the one canonical encoding digests cover |
//! | `message` | the replica-to-replica [`Message`]s, and [`Signed`] ones |
//! | `client_keys` | clients that sign their requests ([`Request::signed_with`], [`RequestSigner`], [`Config::client_keys`]) |
//! | `auth` | the [`Authenticator`] the replica signs and verifies with: [`Ed25519Auth`] or [`Unauthenticated`] |
//! | `checkpoint` | checkpoints, the [`StableCheckpoint`] and its proof, watermarks, garbage collection (§4.3) |
//! | `state_transfer`, `state_fetch`, `chunks` | fetching a stable checkpoint's state from peers when behind, in checked chunks |
//! | `view_change` | the timer, view changes and new views (§4.4, §4.5.2) |
//! | `certificate` | [`PreparedCertificate`] and checkpoint proofs, checked member by member |
//! | `hex` | fixed-length hex for digests, signatures and keys |
//! | `quorum` | [`Quorums`]: `f`, quorum sizes and the primary of a view, for any `n` |
//! | `normal` | pre-prepare, prepare and commit (§4.2) |
//! | `client` | request intake, relaying to the primary, at-most-once execution |
//! | `execute` | in-order execution |
//! | `log`, `votes` | the message log, keyed by sequence number |
//! | `status` | [`SlotStatus`]: what the log says about one number |
//! | `service` | the [`Service`] trait and the default [`KvService`] |
//! | `durable` | what a durable replica persists ([`Record`]) and [`Replica::restore`]: the persistence contract, with a doctest |
//! | `cluster`, `disk` | the in-process [`Cluster`] harness, and the simulated disks of a [durable](Cluster::durable) one |
//!
//! ## Not yet here
//!
//! `docs/design.md` ("What is implemented") keeps the list of what the
//! paper describes and this crate does not do.

#![deny(missing_docs)]

mod auth;
mod by_client;
mod canonical;
mod certificate;
mod checkpoint;
mod chunks;
mod client;
mod client_keys;
mod client_table;
mod cluster;
mod config;
mod digest;
mod disk;
mod durable;
mod execute;
mod follow;
pub mod hex;
mod log;
mod message;
mod network;
mod normal;
mod output;
mod pending;
mod quorum;
mod rejection;
mod replica;
mod request;
mod retransmit;
mod screen;
mod service;
mod state_fetch;
mod state_transfer;
mod status;
mod types;
mod view_change;
mod votes;

pub use auth::{AuthFailure, Authenticator, Ed25519Auth, KeyError, Signature, Unauthenticated};
pub use canonical::{batch_bytes, encode_request, message_bytes, request_bytes};
pub use certificate::{CertificateError, CommittedCertificate, PreparedCertificate};
pub use checkpoint::{Snapshot, StableCheckpoint};
pub use chunks::{DEFAULT_STATE_CHUNK_BYTES, MAX_STATE_CHUNK_BYTES, MIN_STATE_CHUNK_BYTES};
pub use client_keys::RequestSigner;
pub use cluster::{Cluster, ClusterAuth, ClusterError, Envelope, Event, Filter};
pub use config::{
    Config, ConfigError, DEFAULT_CHECKPOINT_INTERVAL, DEFAULT_MAX_BATCH, DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_TIMESTAMP_GAP,
    DEFAULT_VIEW_CHANGE_TIMEOUT, MAX_BATCH, MAX_WINDOW,
};
pub use digest::Digest;
pub use durable::{Base, Record, RestoreError};
pub use hex::ParseHexError;
pub use message::{
    CheckpointVote, Chunk, ChunkRange, FetchState, Manifest, Message, NewView, Phase, PrePrepare,
    Signed, StateTransfer, StatusReport, ViewChange, Vote,
};
pub use network::NetworkFaults;
pub use output::{Destination, Executed, Input, Ordered, Output, Refusal};
pub use pending::{MAX_PENDING, MAX_PENDING_BYTES};
pub use quorum::Quorums;
pub use rejection::Rejection;
pub use replica::Replica;
pub use request::{Batch, Request, REQUEST_OVERHEAD};
pub use retransmit::{
    ANSWERS_PER_TICK, ANSWER_BYTES_PER_TICK, MAX_ANSWER, MAX_ANSWER_BYTES, MAX_CERTIFICATES,
    REPORT_AFTER,
};
pub use service::{ExecResult, KvService, Service};
pub use state_fetch::{CHUNKS_ASKED_PER_PEER, CHUNKS_SERVED_PER_TICK};
pub use state_transfer::StateError;
pub use state_transfer::SMALL_STATE_BYTES;
pub use status::{SlotPhase, SlotStatus};
pub use types::{ClientId, ReplicaId, Seq, View};
pub use view_change::{NewViewError, ViewChangeError};
