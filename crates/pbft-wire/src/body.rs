//! The envelope and every body type, as serde types.
//!
//! Field names follow the seed's vocabulary (`view`, `sequence_number`,
//! `digest`, `replica`). Unknown fields, at the top level and in bodies, are
//! ignored: Maelstrom adds `id` to every envelope.

use pbft_core::{Digest, Signature};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// One line on the wire: who sent it, to whom, and what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sender's node or client id.
    pub src: String,
    /// The addressee's node or client id.
    pub dest: String,
    /// The message.
    pub body: Body,
}

/// A message body, tagged by its `type` field.
///
/// Written by serde's derive; read by hand (see `tagged.rs`), which
/// dispatches on `type` without buffering the body.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    /// Maelstrom's first message: who this node is and who its peers are.
    Init {
        /// The request's id.
        msg_id: u64,
        /// This node's id.
        node_id: String,
        /// Every node of the cluster, in order; index `v mod n` is the
        /// primary of view `v`.
        node_ids: Vec<String>,
    },
    /// The answer to `init`.
    InitOk {
        /// The `msg_id` of the `init`.
        in_reply_to: u64,
        /// This reply's id.
        msg_id: u64,
    },
    /// A client asks for an operation to be ordered and executed.
    PbftRequest {
        /// The request's id.
        msg_id: u64,
        /// The operation, for example `set x=42`.
        operation: String,
        /// The client's id. Optional; when present it must equal `src`,
        /// because clients are identified by the transport.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
        /// The client's own increasing request number. Requests that carry
        /// one are executed at most once per `(client, timestamp)`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timestamp: Option<u64>,
        /// The client's Ed25519 signature over the request's canonical
        /// bytes, 128 hex characters (see docs/protocol.md). Needed only
        /// from a client whose public key the replicas are configured with.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "crate::hex::optional"
        )]
        signature: Option<Signature>,
    },
    /// The acknowledgement of a request: the number it was assigned.
    PbftRequestOk {
        /// The `msg_id` of the request.
        in_reply_to: u64,
        /// This reply's id.
        msg_id: u64,
        /// The sequence number the primary assigned.
        sequence_number: u64,
        /// The view in which it was assigned.
        view: u64,
        /// The phase when the number was assigned: always `"pre-prepare"`.
        phase: String,
    },
    /// A client asks what this replica knows about a sequence number.
    PbftStatus {
        /// The request's id.
        msg_id: u64,
        /// The number asked about.
        sequence_number: u64,
    },
    /// The answer to `pbft_status`.
    PbftStatusOk(StatusOk),
    /// A refusal or failure, with Maelstrom's error codes.
    Error {
        /// The `msg_id` of the message this answers, when it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_reply_to: Option<u64>,
        /// This message's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        msg_id: Option<u64>,
        /// The error code (see [`ErrorCode`](crate::ErrorCode)).
        code: u32,
        /// What went wrong, for a human.
        text: String,
    },
    /// Maelstrom's lin-kv: read the value of `key`.
    Read {
        /// The request's id.
        msg_id: u64,
        /// The key, any JSON value.
        key: Value,
        /// The client's Ed25519 signature over the request's canonical
        /// bytes, 128 hex characters (see docs/protocol.md). Needed only
        /// from a client whose public key the replicas are configured with.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "crate::hex::optional"
        )]
        signature: Option<Signature>,
    },
    /// The answer to `read`.
    ReadOk {
        /// The `msg_id` of the read.
        in_reply_to: u64,
        /// This reply's id.
        msg_id: u64,
        /// The value.
        value: Value,
        /// The view of the replica that executed the request, so that a
        /// client learns which replica is primary. Only the TCP node sends
        /// it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        view: Option<u64>,
    },
    /// Maelstrom's lin-kv: set `key` to `value`.
    Write {
        /// The request's id.
        msg_id: u64,
        /// The key.
        key: Value,
        /// The value.
        value: Value,
        /// The client's Ed25519 signature over the request's canonical
        /// bytes, 128 hex characters (see docs/protocol.md). Needed only
        /// from a client whose public key the replicas are configured with.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "crate::hex::optional"
        )]
        signature: Option<Signature>,
    },
    /// The answer to `write`.
    WriteOk {
        /// The `msg_id` of the write.
        in_reply_to: u64,
        /// This reply's id.
        msg_id: u64,
        /// The view of the replica that executed the request, so that a
        /// client learns which replica is primary. Only the TCP node sends
        /// it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        view: Option<u64>,
    },
    /// Maelstrom's lin-kv: set `key` to `to` if it is `from`.
    Cas {
        /// The request's id.
        msg_id: u64,
        /// The key.
        key: Value,
        /// The value expected.
        from: Value,
        /// The value to set.
        to: Value,
        /// The client's Ed25519 signature over the request's canonical
        /// bytes, 128 hex characters (see docs/protocol.md). Needed only
        /// from a client whose public key the replicas are configured with.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "crate::hex::optional"
        )]
        signature: Option<Signature>,
    },
    /// The answer to a successful `cas`.
    CasOk {
        /// The `msg_id` of the cas.
        in_reply_to: u64,
        /// This reply's id.
        msg_id: u64,
        /// The view of the replica that executed the request, so that a
        /// client learns which replica is primary. Only the TCP node sends
        /// it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        view: Option<u64>,
    },
    /// A backup relays a client request to the primary (§4.1).
    PbftForward(WireForward),
    /// `<PRE-PREPARE, v, n, d>` with the batch it orders (§4.2).
    PbftPrePrepare(WirePrePrepare),
    /// `<PREPARE, v, n, d, i>`.
    PbftPrepare(WireVote),
    /// `<COMMIT, v, n, d, i>`.
    PbftCommit(WireVote),
    /// `<CHECKPOINT, n, d, i>` (§4.3).
    PbftCheckpoint(WireCheckpoint),
    /// `<VIEW-CHANGE, v+1, n, C, P, i>` (§4.4).
    PbftViewChange(WireViewChange),
    /// `<NEW-VIEW, v+1, V, O>` (§4.4).
    PbftNewView(WireNewView),
    /// A replica that is behind asks for state.
    PbftFetchState(WireFetchState),
    /// A stable checkpoint's state, its proof, and the committed batches
    /// after it.
    PbftState(WireState),
}

impl Body {
    /// Every `type` value, in declaration order.
    pub const TYPES: [&'static str; 22] = [
        "init",
        "init_ok",
        "pbft_request",
        "pbft_request_ok",
        "pbft_status",
        "pbft_status_ok",
        "error",
        "read",
        "read_ok",
        "write",
        "write_ok",
        "cas",
        "cas_ok",
        "pbft_forward",
        "pbft_pre_prepare",
        "pbft_prepare",
        "pbft_commit",
        "pbft_checkpoint",
        "pbft_view_change",
        "pbft_new_view",
        "pbft_fetch_state",
        "pbft_state",
    ];

    /// The body's `type` value.
    pub fn type_name(&self) -> &'static str {
        let index = match self {
            Body::Init { .. } => 0,
            Body::InitOk { .. } => 1,
            Body::PbftRequest { .. } => 2,
            Body::PbftRequestOk { .. } => 3,
            Body::PbftStatus { .. } => 4,
            Body::PbftStatusOk(_) => 5,
            Body::Error { .. } => 6,
            Body::Read { .. } => 7,
            Body::ReadOk { .. } => 8,
            Body::Write { .. } => 9,
            Body::WriteOk { .. } => 10,
            Body::Cas { .. } => 11,
            Body::CasOk { .. } => 12,
            Body::PbftForward(_) => 13,
            Body::PbftPrePrepare(_) => 14,
            Body::PbftPrepare(_) => 15,
            Body::PbftCommit(_) => 16,
            Body::PbftCheckpoint(_) => 17,
            Body::PbftViewChange(_) => 18,
            Body::PbftNewView(_) => 19,
            Body::PbftFetchState(_) => 20,
            Body::PbftState(_) => 21,
        };
        Body::TYPES[index]
    }

    /// The body's own `msg_id`, if it has one.
    pub fn msg_id(&self) -> Option<u64> {
        match self {
            Body::Init { msg_id, .. }
            | Body::InitOk { msg_id, .. }
            | Body::PbftRequest { msg_id, .. }
            | Body::PbftRequestOk { msg_id, .. }
            | Body::PbftStatus { msg_id, .. }
            | Body::Read { msg_id, .. }
            | Body::ReadOk { msg_id, .. }
            | Body::Write { msg_id, .. }
            | Body::WriteOk { msg_id, .. }
            | Body::Cas { msg_id, .. }
            | Body::CasOk { msg_id, .. } => Some(*msg_id),
            Body::PbftStatusOk(s) => Some(s.msg_id),
            Body::Error { msg_id, .. } => *msg_id,
            Body::PbftForward(m) => m.msg_id,
            Body::PbftPrePrepare(m) => m.msg_id,
            Body::PbftPrepare(m) | Body::PbftCommit(m) => m.msg_id,
            Body::PbftCheckpoint(m) => m.msg_id,
            Body::PbftViewChange(m) => m.msg_id,
            Body::PbftNewView(m) => m.msg_id,
            Body::PbftFetchState(m) => m.msg_id,
            Body::PbftState(m) => m.msg_id,
        }
    }

    /// The `msg_id` this body answers, for replies.
    pub fn in_reply_to(&self) -> Option<u64> {
        match self {
            Body::InitOk { in_reply_to, .. }
            | Body::PbftRequestOk { in_reply_to, .. }
            | Body::ReadOk { in_reply_to, .. }
            | Body::WriteOk { in_reply_to, .. }
            | Body::CasOk { in_reply_to, .. } => Some(*in_reply_to),
            Body::PbftStatusOk(s) => Some(s.in_reply_to),
            Body::Error { in_reply_to, .. } => *in_reply_to,
            _ => None,
        }
    }

    /// True for replies (`*_ok` and `error`), which are never answered.
    pub fn is_reply(&self) -> bool {
        matches!(
            self,
            Body::InitOk { .. }
                | Body::PbftRequestOk { .. }
                | Body::PbftStatusOk(_)
                | Body::Error { .. }
                | Body::ReadOk { .. }
                | Body::WriteOk { .. }
                | Body::CasOk { .. }
        )
    }
}

/// The body of `pbft_status_ok`: what one replica's log says about one
/// sequence number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusOk {
    /// The `msg_id` of the status query.
    pub in_reply_to: u64,
    /// This reply's id.
    pub msg_id: u64,
    /// The number asked about.
    pub sequence_number: u64,
    /// The view of the accepted pre-prepare; absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<u64>,
    /// `"none"`, `"pre-prepare"`, `"prepared"` or `"committed"`.
    pub phase: String,
    /// The digest of the accepted pre-prepare; absent when there is none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::hex::optional"
    )]
    pub digest: Option<Digest>,
    /// Distinct replicas whose matching prepare this replica holds.
    pub prepares_received: usize,
    /// Distinct replicas whose matching commit this replica holds, its own
    /// included.
    pub commits_received: usize,
    /// Whether the batch has been executed here.
    pub executed: bool,
    /// The result, present only when an executed batch held exactly one
    /// request. It may be `null` (a read of an absent key), which is not
    /// the same as absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub result: Option<Value>,
    /// The results in order, present only when an executed batch held
    /// other than one request (the null request has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<Value>>,
}

/// Deserializes a field that is present, keeping an explicit `null` as
/// `Some(Value::Null)`; an absent field is `None` through `default`.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// A client request as carried between replicas.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRequest {
    /// The client's id.
    pub client: String,
    /// The client's request number, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// The operation.
    pub operation: String,
    /// The client's signature of the request, 128 hex characters, when it
    /// signs (the `signature` of its `pbft_request`). Named apart from the
    /// relaying replica's own `signature`, beside it in `pbft_forward`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::hex::optional"
    )]
    pub client_signature: Option<Signature>,
}

/// The body of `pbft_forward`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireForward {
    /// The message's id, when the sender numbers its messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<u64>,
    /// The relayed request.
    #[serde(flatten)]
    pub request: WireRequest,
    /// The sender's Ed25519 signature over the message's canonical
    /// encoding, 128 hex characters. Absent when the cluster runs without
    /// authentication.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::hex::optional"
    )]
    pub signature: Option<Signature>,
}

/// The body of `pbft_pre_prepare`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WirePrePrepare {
    /// The message's id, when the sender numbers its messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<u64>,
    /// The view the primary proposes in.
    pub view: u64,
    /// The sequence number it assigns.
    pub sequence_number: u64,
    /// The claimed digest of `batch`, 64 hex characters.
    #[serde(with = "crate::hex")]
    pub digest: Digest,
    /// The requests, in execution order. Empty for the null request.
    /// Absent where the pre-prepare names its batch by digest only: inside
    /// view changes and new views.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Vec<WireRequest>>,
    /// The sender's Ed25519 signature over the message's canonical
    /// encoding, 128 hex characters. Absent when the cluster runs without
    /// authentication.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::hex::optional"
    )]
    pub signature: Option<Signature>,
}

/// The body of `pbft_prepare` and `pbft_commit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireVote {
    /// The message's id, when the sender numbers its messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<u64>,
    /// The view of the vote.
    pub view: u64,
    /// The sequence number voted on.
    pub sequence_number: u64,
    /// The digest voted for, 64 hex characters.
    #[serde(with = "crate::hex")]
    pub digest: Digest,
    /// The voter's node id, which must be the sender.
    pub replica: String,
    /// The sender's Ed25519 signature over the message's canonical
    /// encoding, 128 hex characters. Absent when the cluster runs without
    /// authentication.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::hex::optional"
    )]
    pub signature: Option<Signature>,
}

/// The body of `pbft_checkpoint`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireCheckpoint {
    /// The message's id, when the sender numbers its messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<u64>,
    /// The sequence number executed up to.
    pub sequence_number: u64,
    /// The digest of the state after executing it, 64 hex characters.
    #[serde(with = "crate::hex")]
    pub digest: Digest,
    /// The replica's node id, which must be the sender.
    pub replica: String,
    /// The sender's signature (see [`WireVote::signature`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::hex::optional"
    )]
    pub signature: Option<Signature>,
}

/// A stable checkpoint inside a view change: its number, its state digest,
/// and the signed `pbft_checkpoint` bodies that prove it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireStableCheckpoint {
    /// The checkpoint's sequence number.
    pub sequence_number: u64,
    /// Its state digest.
    #[serde(with = "crate::hex")]
    pub digest: Digest,
    /// `2f + 1` signed `pbft_checkpoint` bodies (none for number 0).
    pub proof: Vec<Body>,
}

/// A prepared certificate inside a view change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WirePrepared {
    /// The primary's signed `pbft_pre_prepare` body.
    pub pre_prepare: Box<Body>,
    /// `2f` signed `pbft_prepare` bodies from distinct backups.
    pub prepares: Vec<Body>,
}

/// The body of `pbft_view_change`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireViewChange {
    /// The message's id, when the sender numbers its messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<u64>,
    /// The view to move to.
    pub new_view: u64,
    /// The sender's node id.
    pub replica: String,
    /// The sender's last stable checkpoint.
    pub checkpoint: WireStableCheckpoint,
    /// Prepared certificates above the checkpoint, in sequence order.
    pub prepared: Vec<WirePrepared>,
    /// The sender's signature (see [`WireVote::signature`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::hex::optional"
    )]
    pub signature: Option<Signature>,
}

/// The body of `pbft_new_view`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireNewView {
    /// The message's id, when the sender numbers its messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<u64>,
    /// The new view.
    pub view: u64,
    /// The signed `pbft_view_change` bodies the new primary collected.
    pub view_changes: Vec<Body>,
    /// The signed `pbft_pre_prepare` bodies they determine.
    pub pre_prepares: Vec<Body>,
    /// The new primary's signature (see [`WireVote::signature`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::hex::optional"
    )]
    pub signature: Option<Signature>,
}

/// The body of `pbft_fetch_state`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireFetchState {
    /// The message's id, when the sender numbers its messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<u64>,
    /// The stable checkpoint the sender knows it lacks.
    pub sequence_number: u64,
    /// The sender's node id.
    pub replica: String,
    /// The sender's status, when it reports a stall.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<WireReport>,
    /// The chunks of a checkpoint's state the sender asks for, when it
    /// fetches one in chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<WireChunkRange>,
    /// The sender's signature (see [`WireVote::signature`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::hex::optional"
    )]
    pub signature: Option<Signature>,
}

/// A stalled replica's status inside `pbft_fetch_state`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireReport {
    /// The sender's view.
    pub view: u64,
    /// The highest number the report covers.
    pub through: u64,
    /// The numbers up to `through` the sender has not committed.
    pub pending: Vec<WirePending>,
}

/// One number a stalled replica has not committed, and its phase there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WirePending {
    /// The number.
    pub sequence_number: u64,
    /// `"none"`, `"pre-prepare"` or `"prepared"`.
    pub phase: String,
}

/// Consecutive chunks of one checkpoint's state, inside `pbft_fetch_state`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireChunkRange {
    /// The checkpoint's sequence number.
    pub checkpoint: u64,
    /// Its proven state digest.
    #[serde(with = "crate::hex")]
    pub digest: Digest,
    /// The first chunk's index.
    pub first: u64,
    /// How many chunks.
    pub count: u64,
}

/// A checkpoint's manifest inside `pbft_state`: the length of its
/// canonical state bytes and each chunk's digest, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireManifest {
    /// The length of the canonical state bytes.
    pub length: u64,
    /// Each chunk's digest, 64 hex characters each.
    pub chunks: Vec<WireDigest>,
}

/// A digest as a list element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WireDigest(#[serde(with = "crate::hex")] pub Digest);

/// One chunk of a checkpoint's state inside `pbft_state`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireChunk {
    /// Its index in the manifest.
    pub index: u64,
    /// Its bytes, as hex.
    pub data: String,
}

/// A committed certificate inside a state transfer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireCommitted {
    /// The primary's signed `pbft_pre_prepare` body.
    pub pre_prepare: Box<Body>,
    /// `2f + 1` signed `pbft_commit` bodies from distinct replicas.
    pub commits: Vec<Body>,
}

/// The body of `pbft_state`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireState {
    /// The message's id, when the sender numbers its messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<u64>,
    /// The sender's node id.
    pub replica: String,
    /// The stable checkpoint, with its proof.
    pub checkpoint: WireStableCheckpoint,
    /// The service's snapshot, as hex.
    pub service: String,
    /// The client table's snapshot, as hex.
    pub clients: String,
    /// Committed certificates for the numbers after the checkpoint.
    pub committed: Vec<WireCommitted>,
    /// The checkpoint's manifest, when its state goes in chunks (`service`
    /// and `clients` are then empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<WireManifest>,
    /// One chunk of the checkpoint's state, in answer to a request for
    /// chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<WireChunk>,
    /// The sender's signature (see [`WireVote::signature`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::hex::optional"
    )]
    pub signature: Option<Signature>,
}
