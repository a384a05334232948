//! Replica configuration.

use std::collections::BTreeMap;
use std::fmt;

use crate::chunks::{DEFAULT_STATE_CHUNK_BYTES, MAX_STATE_CHUNK_BYTES, MIN_STATE_CHUNK_BYTES};
use crate::types::{ClientId, ReplicaId};

/// The largest log window `L` a configuration may set.
pub const MAX_WINDOW: u64 = 1 << 16;

/// The default view-change timeout, in ticks.
pub const DEFAULT_VIEW_CHANGE_TIMEOUT: u64 = 10;

/// The default checkpoint interval `K`.
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 128;

/// The default most requests the primary puts in one batch.
pub const DEFAULT_MAX_BATCH: usize = 256;

/// The default most sequence numbers the primary keeps in flight.
pub const DEFAULT_MAX_IN_FLIGHT: u64 = 4;

/// The largest batch a configuration may set.
pub const MAX_BATCH: usize = 4096;

/// The default [`Config::max_timestamp_gap`]: how far ahead of a client's
/// last executed timestamp a request's may be.
pub const DEFAULT_MAX_TIMESTAMP_GAP: u64 = 1 << 20;
/// The default largest client request, in [`Request::size`] bytes (its
/// client and operation with escaping counted): 1 MiB.
///
/// [`Request::size`]: crate::Request::size
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1 << 20;

/// The default largest batch, in [`Batch::size`] bytes: 4 MiB, a quarter
/// of the 16 MiB line the node's transport reads.
///
/// [`Batch::size`]: crate::Batch::size
pub const DEFAULT_MAX_BATCH_BYTES: usize = 4 << 20;

/// Settings every replica of a cluster must agree on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The number of replicas, `n >= 1`. They are `ReplicaId(0..n)`.
    pub n: usize,
    /// `K`: a replica takes a checkpoint after executing every `K`-th
    /// sequence number (§4.3).
    pub checkpoint_interval: u64,
    /// `L`: the log window. With low watermark `h` (the last stable
    /// checkpoint), only numbers in `(h, h + L]` are accepted or assigned.
    /// A multiple of `K`, at least `K`; `2K` by default.
    pub window: u64,
    /// How many ticks a backup waits for a request to execute before it
    /// suspects the primary and starts a view change (§4.4). Doubled for
    /// each view change that fails to install.
    pub view_change_timeout: u64,
    /// The most requests the primary puts in one pre-prepare (§5.1).
    pub max_batch: usize,
    /// The most sequence numbers the primary keeps in flight (assigned but
    /// not yet executed here). With none in flight, a request is proposed
    /// at once, alone, so an idle cluster keeps its one-request latency.
    /// With `k` in flight, the next number waits for a batch of
    /// `k / max_in_flight` of [`max_batch`](Self::max_batch) requests (or
    /// of the byte limit): under load, batches grow before the numbers in
    /// flight do, as each number costs its three phases whatever it
    /// carries. Requests wait for a number to execute, or for the next
    /// tick at most, which keeps a number stuck on lost messages from
    /// holding back those behind it. Always within the window.
    pub max_in_flight: u64,
    /// The Ed25519 public keys of the clients that sign their requests. A
    /// listed client's requests are ordered only with a valid signature
    /// ([`Request::signature`](crate::Request::signature)); a client not
    /// listed is accepted unsigned. Empty by default.
    pub client_keys: BTreeMap<ClientId, [u8; 32]>,
    /// How far ahead of its client's last executed timestamp (0 for a
    /// client with none) a request's timestamp may be. A request further
    /// ahead is refused at intake and, if a faulty primary orders it
    /// anyway, executes as an error without touching the client's record,
    /// so that no replica can lock a client out by ordering a request in
    /// its name with a huge timestamp. Part of the replicated state
    /// machine: every replica must use the same value.
    pub max_timestamp_gap: u64,
    /// The largest request, in [`Request::size`](crate::Request::size)
    /// bytes, that a replica accepts from a client, a relaying backup or a
    /// pre-prepare. Larger ones are refused at intake
    /// ([`Refusal::TooLarge`](crate::Refusal::TooLarge)) or rejected
    /// ([`Rejection::RequestTooLarge`](crate::Rejection::RequestTooLarge)),
    /// so that every message carrying one fits the transport. At least 1.
    pub max_request_bytes: usize,
    /// The largest batch, in [`Batch::size`](crate::Batch::size) bytes,
    /// that the primary proposes and a backup accepts in a pre-prepare
    /// (rejected as
    /// [`Rejection::BatchTooLarge`](crate::Rejection::BatchTooLarge)).
    /// Batches are bounded by this as well as by
    /// [`max_batch`](Self::max_batch) requests. At least
    /// [`max_request_bytes`](Self::max_request_bytes), so that any one
    /// request fits.
    pub max_batch_bytes: usize,
    /// The size of the chunks a checkpoint's state is cut into, in bytes:
    /// the checkpoint digest covers the chunks' digests, and a replica
    /// that catches up fetches and checks the state chunk by chunk. Part
    /// of the checkpoint digest, so every replica must use the same value.
    /// Between [`MIN_STATE_CHUNK_BYTES`] and [`MAX_STATE_CHUNK_BYTES`];
    /// [`DEFAULT_STATE_CHUNK_BYTES`] (1 MiB) by default.
    pub state_chunk_bytes: usize,
    /// **Testing aid, deliberately unsafe.** Replaces the quorum size with
    /// this one, so that the simulator's self-test can show it catches a
    /// broken quorum rule. `None` (the default) in any real use.
    pub broken_quorum_for_self_test: Option<usize>,
}

impl Config {
    /// A configuration for `n` replicas with default settings
    /// (`K = 128`, `L = 2K`, a view-change timeout of 10 ticks, batches of
    /// at most 256 requests and 4 MiB, at most 4 numbers in flight,
    /// requests of at most 1 MiB, state chunks of 1 MiB).
    pub fn new(n: usize) -> Config {
        Config {
            n,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            window: 2 * DEFAULT_CHECKPOINT_INTERVAL,
            view_change_timeout: DEFAULT_VIEW_CHANGE_TIMEOUT,
            max_batch: DEFAULT_MAX_BATCH,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            client_keys: BTreeMap::new(),
            max_timestamp_gap: DEFAULT_MAX_TIMESTAMP_GAP,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            state_chunk_bytes: DEFAULT_STATE_CHUNK_BYTES,
            broken_quorum_for_self_test: None,
        }
    }

    /// The same with batches of at most `max_batch` requests and at most
    /// `max_in_flight` numbers in flight.
    pub fn with_batching(self, max_batch: usize, max_in_flight: u64) -> Config {
        Config {
            max_batch,
            max_in_flight,
            ..self
        }
    }

    /// The same with these clients' public keys: their requests are then
    /// ordered only when they carry the client's valid signature.
    pub fn with_client_keys(
        mut self,
        keys: impl IntoIterator<Item = (ClientId, [u8; 32])>,
    ) -> Config {
        self.client_keys.extend(keys);
        self
    }

    /// The same with checkpoint interval `k` and window `2k`.
    pub fn with_checkpoint_interval(self, k: u64) -> Config {
        Config {
            checkpoint_interval: k,
            window: k.saturating_mul(2),
            ..self
        }
    }

    /// Checks the configuration for replica `id`.
    pub fn validate(&self, id: ReplicaId) -> Result<(), ConfigError> {
        if self.n == 0 {
            return Err(ConfigError::NoReplicas);
        }
        if u32::try_from(self.n).is_err() {
            return Err(ConfigError::TooManyReplicas(self.n));
        }
        if id.index() >= self.n {
            return Err(ConfigError::UnknownReplica { id, n: self.n });
        }
        let k = self.checkpoint_interval;
        if self.view_change_timeout == 0 {
            return Err(ConfigError::ZeroTimeout);
        }
        // The window bounds the log, and so the memory a peer can make a
        // replica spend on numbers it names.
        if k == 0 || self.window < k || !self.window.is_multiple_of(k) || self.window > MAX_WINDOW {
            return Err(ConfigError::BadWindow {
                interval: k,
                window: self.window,
            });
        }
        if self.max_batch == 0 || self.max_batch > MAX_BATCH || self.max_in_flight == 0 {
            return Err(ConfigError::BadBatching {
                max_batch: self.max_batch,
                max_in_flight: self.max_in_flight,
            });
        }
        if self.max_timestamp_gap == 0 {
            return Err(ConfigError::ZeroTimestampGap);
        }
        crate::client_keys::ClientKeys::new(&self.client_keys)?;
        if self.max_request_bytes == 0 || self.max_batch_bytes < self.max_request_bytes {
            return Err(ConfigError::BadSizeLimits {
                max_request_bytes: self.max_request_bytes,
                max_batch_bytes: self.max_batch_bytes,
            });
        }
        if !(MIN_STATE_CHUNK_BYTES..=MAX_STATE_CHUNK_BYTES).contains(&self.state_chunk_bytes) {
            return Err(ConfigError::BadChunkSize(self.state_chunk_bytes));
        }
        Ok(())
    }
}

/// Why a [`Config`] cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `n` is zero.
    NoReplicas,
    /// `n` does not fit a [`ReplicaId`].
    TooManyReplicas(usize),
    /// The view-change timeout is 0 ticks.
    ZeroTimeout,
    /// The checkpoint interval is 0, or the window is not a multiple of it,
    /// or the window is larger than [`MAX_WINDOW`].
    BadWindow {
        /// `K`.
        interval: u64,
        /// `L`.
        window: u64,
    },
    /// The batch size is 0 or above [`MAX_BATCH`], or no number may be in
    /// flight.
    BadBatching {
        /// The batch size given.
        max_batch: usize,
        /// The numbers in flight given.
        max_in_flight: u64,
    },
    /// The maximum timestamp gap is 0: no client could ever move on.
    ZeroTimestampGap,
    /// A client's public key is not a valid Ed25519 key.
    InvalidClientKey(ClientId),
    /// The largest request is 0 bytes, or larger than the largest batch.
    BadSizeLimits {
        /// The largest request given.
        max_request_bytes: usize,
        /// The largest batch given.
        max_batch_bytes: usize,
    },
    /// The state chunk size is outside
    /// [`MIN_STATE_CHUNK_BYTES`]..=[`MAX_STATE_CHUNK_BYTES`].
    BadChunkSize(usize),
    /// The replica's own id is not below `n`.
    UnknownReplica {
        /// The id given.
        id: ReplicaId,
        /// The cluster size.
        n: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NoReplicas => f.write_str("a cluster needs at least one replica"),
            ConfigError::TooManyReplicas(n) => write!(f, "{n} replicas is more than supported"),
            ConfigError::ZeroTimeout => {
                f.write_str("the view-change timeout must be at least 1 tick")
            }
            ConfigError::BadWindow { interval, window } => write!(
                f,
                "the window ({window}) must be a positive multiple of the checkpoint \
                 interval ({interval}), at most {MAX_WINDOW}"
            ),
            ConfigError::BadBatching {
                max_batch,
                max_in_flight,
            } => write!(
                f,
                "batches of {max_batch} requests with {max_in_flight} numbers in flight: \
                 a batch holds 1 to {MAX_BATCH} requests, and at least 1 number must be \
                 in flight"
            ),
            ConfigError::ZeroTimestampGap => {
                f.write_str("the maximum timestamp gap must be at least 1")
            }
            ConfigError::InvalidClientKey(client) => {
                write!(
                    f,
                    "the public key of client {client} is not a valid Ed25519 key"
                )
            }
            ConfigError::BadSizeLimits {
                max_request_bytes,
                max_batch_bytes,
            } => write!(
                f,
                "requests of at most {max_request_bytes} bytes in batches of at most \
                 {max_batch_bytes}: a request may take 1 byte or more, and at most a batch"
            ),
            ConfigError::BadChunkSize(size) => write!(
                f,
                "state chunks of {size} bytes: a chunk takes {MIN_STATE_CHUNK_BYTES} to \
                 {MAX_STATE_CHUNK_BYTES} bytes"
            ),
            ConfigError::UnknownReplica { id, n } => {
                write!(f, "replica {id} is not one of the {n} replicas")
            }
        }
    }
}

impl std::error::Error for ConfigError {}
