//! # pbft-client
//!
//! A client of a PBFT cluster deployed with `pbft-node serve`, in the
//! manner of the paper's client proxy (§4.1): it trusts no single
//! replica.
//!
//! - Each request is a lin-kv operation (`read`, `write`, `cas`) signed
//!   with the client's Ed25519 key, over TCP through `pbft-net`, whose
//!   handshake proves to the client which replica each reply comes from.
//! - It goes to the primary the client believes in; when no result comes
//!   within the retry interval (the cluster's view-change timeout by
//!   default), to every replica, again at each interval, until the
//!   deadline.
//! - A result counts only when f + 1 distinct replicas sent the same one
//!   ([`quorum`]); a faulty replica's answer alone is never returned.
//! - Replies say the view they were executed in; the client believes the
//!   (f + 1)-th highest view the replicas said ([`quorum::Views`]), one
//!   that an honest replica has reached.
//! - A reply counts only for a request of its kind (a `write_ok` never
//!   answers a read).
//!
//! ```no_run
//! use std::path::Path;
//!
//! let mut client = pbft_client::Client::open(
//!     Path::new("deploy/cluster.toml"),
//!     Path::new("deploy/c1.client-key.json"),
//!     0, // the last timestamp this client used, 0 the first time
//! )?;
//! client.write("x", 42)?;
//! assert_eq!(client.read("x")?, 42);
//! client.cas("x", 42, 43)?;
//! # Ok::<(), pbft_client::ClientError>(())
//! ```
//!
//! The `pbft-client` binary wraps the same calls for the command line.

#![deny(missing_docs)]

mod client;
pub mod load;
pub mod quorum;

pub use client::{sign_body, Client, ClientError, Operation, Timing};
pub use quorum::Answer;
