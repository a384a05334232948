//! # pbft-wire
//!
//! The JSON-lines codec of the PBFT node: the Maelstrom-style envelope
//! `{"src", "dest", "body": {"type", ...}}` and every body type, as serde
//! types, plus the conversions between wire bodies and `pbft-core` values.
//! JSON lives only here; the core never sees it.
//!
//! - [`decode`] and [`encode`] turn lines into [`Envelope`]s and back.
//!   Decoding is strict about required fields and gives a [`DecodeError`]
//!   that says what is wrong and which [`ErrorCode`] answers it.
//! - [`Directory`] maps node ids (`"n1"`) to the core's [`ReplicaId`]s
//!   (`node_ids[i]` is replica `i`), and converts replica messages both
//!   ways ([`Directory::message_to_body`], [`Directory::body_to_message`]).
//! - [`request_from_body`] and [`status_ok_body`] serve clients.
//! - [`Directory::record_to_json`] and [`Directory::record_from_json`]
//!   encode a durable replica's records for its log.
//!
//! ```
//! use pbft_wire::{decode, encode, Body};
//!
//! let line = r#"{"src":"c1","dest":"n1","body":{"type":"pbft_request","msg_id":2,"operation":"set x=42","client":"c1"}}"#;
//! let envelope = decode(line).unwrap();
//! assert!(matches!(envelope.body, Body::PbftRequest { msg_id: 2, .. }));
//! assert_eq!(decode(&encode(&envelope)).unwrap(), envelope);
//! ```
//!
//! `docs/protocol.md` in the repository lists every message with an
//! example.
//!
//! [`ReplicaId`]: pbft_core::ReplicaId

#![deny(missing_docs)]

mod body;
mod code;
mod convert;
mod decode;
mod directory;
mod hex;
mod record;
mod tagged;
mod variants;

pub use body::{
    Body, Envelope, StatusOk, WireCheckpoint, WireChunk, WireChunkRange, WireCommitted, WireDigest,
    WireFetchState, WireForward, WireManifest, WireNewView, WirePending, WirePrePrepare,
    WirePrepared, WireReport, WireRequest, WireStableCheckpoint, WireState, WireViewChange,
    WireVote,
};
pub use code::ErrorCode;
pub use convert::{request_from_body, result_to_json, status_ok_body, PeerError, RequestError};
pub use decode::{decode, encode, DecodeError, Header};
pub use directory::{Directory, DirectoryError};
pub use record::RecordError;
