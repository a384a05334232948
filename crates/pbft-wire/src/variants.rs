//! A body's fields, once its `type` is known.
//!
//! [`variant`] picks the type's fields by name and reads them from what
//! is left of the body. The struct-like variants of [`Body`] get their
//! fields here, in private structs of the same shape; the others are read
//! as their own types.
//!
//! [`Tagged`] is the same set of types as a serde internally tagged enum,
//! which is how every body used to be read: it buffers the body, finds
//! `type` wherever it is, and reads the rest from the buffer. It reads the
//! bodies [`variant`] cannot be handed directly, and it words the errors
//! of lines that fail, exactly as before.

use pbft_core::Signature;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::body::{
    Body, StatusOk, WireCheckpoint, WireFetchState, WireForward, WireNewView, WirePrePrepare,
    WireState, WireViewChange, WireVote,
};

/// Reads the body of type `tag` from `fields`, the body without its
/// `type`. An unknown `tag` is refused as an unknown variant.
pub(crate) fn variant<'de, D: Deserializer<'de>>(tag: &str, fields: D) -> Result<Body, D::Error> {
    let tagged = match tag {
        "init" => Tagged::Init(Init::deserialize(fields)?),
        "init_ok" => Tagged::InitOk(Reply::deserialize(fields)?),
        "pbft_request" => Tagged::PbftRequest(PbftRequest::deserialize(fields)?),
        "pbft_request_ok" => Tagged::PbftRequestOk(PbftRequestOk::deserialize(fields)?),
        "pbft_status" => Tagged::PbftStatus(PbftStatus::deserialize(fields)?),
        "pbft_status_ok" => Tagged::PbftStatusOk(StatusOk::deserialize(fields)?),
        "error" => Tagged::Error(Error::deserialize(fields)?),
        "read" => Tagged::Read(Read::deserialize(fields)?),
        "read_ok" => Tagged::ReadOk(ReadOk::deserialize(fields)?),
        "write" => Tagged::Write(Write::deserialize(fields)?),
        "write_ok" => Tagged::WriteOk(Reply::deserialize(fields)?),
        "cas" => Tagged::Cas(Cas::deserialize(fields)?),
        "cas_ok" => Tagged::CasOk(Reply::deserialize(fields)?),
        "pbft_forward" => Tagged::PbftForward(WireForward::deserialize(fields)?),
        "pbft_pre_prepare" => Tagged::PbftPrePrepare(WirePrePrepare::deserialize(fields)?),
        "pbft_prepare" => Tagged::PbftPrepare(WireVote::deserialize(fields)?),
        "pbft_commit" => Tagged::PbftCommit(WireVote::deserialize(fields)?),
        "pbft_checkpoint" => Tagged::PbftCheckpoint(WireCheckpoint::deserialize(fields)?),
        "pbft_view_change" => Tagged::PbftViewChange(WireViewChange::deserialize(fields)?),
        "pbft_new_view" => Tagged::PbftNewView(WireNewView::deserialize(fields)?),
        "pbft_fetch_state" => Tagged::PbftFetchState(WireFetchState::deserialize(fields)?),
        "pbft_state" => Tagged::PbftState(WireState::deserialize(fields)?),
        other => return Err(D::Error::unknown_variant(other, &Body::TYPES)),
    };
    Ok(tagged.into())
}

/// Every body type, read by serde's internally tagged enum.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Tagged {
    Init(Init),
    InitOk(Reply),
    PbftRequest(PbftRequest),
    PbftRequestOk(PbftRequestOk),
    PbftStatus(PbftStatus),
    PbftStatusOk(StatusOk),
    Error(Error),
    Read(Read),
    ReadOk(ReadOk),
    Write(Write),
    WriteOk(Reply),
    Cas(Cas),
    CasOk(Reply),
    PbftForward(WireForward),
    PbftPrePrepare(WirePrePrepare),
    PbftPrepare(WireVote),
    PbftCommit(WireVote),
    PbftCheckpoint(WireCheckpoint),
    PbftViewChange(WireViewChange),
    PbftNewView(WireNewView),
    PbftFetchState(WireFetchState),
    PbftState(WireState),
}

impl From<Tagged> for Body {
    fn from(tagged: Tagged) -> Body {
        match tagged {
            Tagged::Init(b) => b.into(),
            Tagged::InitOk(r) => Body::InitOk {
                in_reply_to: r.in_reply_to,
                msg_id: r.msg_id,
            },
            Tagged::PbftRequest(b) => b.into(),
            Tagged::PbftRequestOk(b) => b.into(),
            Tagged::PbftStatus(b) => b.into(),
            Tagged::PbftStatusOk(b) => Body::PbftStatusOk(b),
            Tagged::Error(b) => b.into(),
            Tagged::Read(b) => b.into(),
            Tagged::ReadOk(b) => b.into(),
            Tagged::Write(b) => b.into(),
            Tagged::WriteOk(r) => Body::WriteOk {
                in_reply_to: r.in_reply_to,
                msg_id: r.msg_id,
                view: r.view,
            },
            Tagged::Cas(b) => b.into(),
            Tagged::CasOk(r) => Body::CasOk {
                in_reply_to: r.in_reply_to,
                msg_id: r.msg_id,
                view: r.view,
            },
            Tagged::PbftForward(b) => Body::PbftForward(b),
            Tagged::PbftPrePrepare(b) => Body::PbftPrePrepare(b),
            Tagged::PbftPrepare(b) => Body::PbftPrepare(b),
            Tagged::PbftCommit(b) => Body::PbftCommit(b),
            Tagged::PbftCheckpoint(b) => Body::PbftCheckpoint(b),
            Tagged::PbftViewChange(b) => Body::PbftViewChange(b),
            Tagged::PbftNewView(b) => Body::PbftNewView(b),
            Tagged::PbftFetchState(b) => Body::PbftFetchState(b),
            Tagged::PbftState(b) => Body::PbftState(b),
        }
    }
}

/// The fields of `init`.
#[derive(Deserialize)]
pub(crate) struct Init {
    msg_id: u64,
    node_id: String,
    node_ids: Vec<String>,
}

impl From<Init> for Body {
    fn from(b: Init) -> Body {
        Body::Init {
            msg_id: b.msg_id,
            node_id: b.node_id,
            node_ids: b.node_ids,
        }
    }
}

/// The fields of `init_ok`, `write_ok` and `cas_ok` (`init_ok` has no
/// view).
#[derive(Deserialize)]
pub(crate) struct Reply {
    in_reply_to: u64,
    msg_id: u64,
    #[serde(default)]
    view: Option<u64>,
}

/// The fields of `pbft_request`.
#[derive(Deserialize)]
pub(crate) struct PbftRequest {
    msg_id: u64,
    operation: String,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    timestamp: Option<u64>,
    #[serde(default, with = "crate::hex::optional")]
    signature: Option<Signature>,
}

impl From<PbftRequest> for Body {
    fn from(b: PbftRequest) -> Body {
        Body::PbftRequest {
            msg_id: b.msg_id,
            operation: b.operation,
            client: b.client,
            timestamp: b.timestamp,
            signature: b.signature,
        }
    }
}

/// The fields of `pbft_request_ok`.
#[derive(Deserialize)]
pub(crate) struct PbftRequestOk {
    in_reply_to: u64,
    msg_id: u64,
    sequence_number: u64,
    view: u64,
    phase: String,
}

impl From<PbftRequestOk> for Body {
    fn from(b: PbftRequestOk) -> Body {
        Body::PbftRequestOk {
            in_reply_to: b.in_reply_to,
            msg_id: b.msg_id,
            sequence_number: b.sequence_number,
            view: b.view,
            phase: b.phase,
        }
    }
}

/// The fields of `pbft_status`.
#[derive(Deserialize)]
pub(crate) struct PbftStatus {
    msg_id: u64,
    sequence_number: u64,
}

impl From<PbftStatus> for Body {
    fn from(b: PbftStatus) -> Body {
        Body::PbftStatus {
            msg_id: b.msg_id,
            sequence_number: b.sequence_number,
        }
    }
}

/// The fields of `error`.
#[derive(Deserialize)]
pub(crate) struct Error {
    #[serde(default)]
    in_reply_to: Option<u64>,
    #[serde(default)]
    msg_id: Option<u64>,
    code: u32,
    text: String,
}

impl From<Error> for Body {
    fn from(b: Error) -> Body {
        Body::Error {
            in_reply_to: b.in_reply_to,
            msg_id: b.msg_id,
            code: b.code,
            text: b.text,
        }
    }
}

/// The fields of `read`.
#[derive(Deserialize)]
pub(crate) struct Read {
    msg_id: u64,
    key: Value,
    #[serde(default, with = "crate::hex::optional")]
    signature: Option<Signature>,
}

impl From<Read> for Body {
    fn from(b: Read) -> Body {
        Body::Read {
            msg_id: b.msg_id,
            key: b.key,
            signature: b.signature,
        }
    }
}

/// The fields of `read_ok`.
#[derive(Deserialize)]
pub(crate) struct ReadOk {
    in_reply_to: u64,
    msg_id: u64,
    value: Value,
    #[serde(default)]
    view: Option<u64>,
}

impl From<ReadOk> for Body {
    fn from(b: ReadOk) -> Body {
        Body::ReadOk {
            in_reply_to: b.in_reply_to,
            msg_id: b.msg_id,
            value: b.value,
            view: b.view,
        }
    }
}

/// The fields of `write`.
#[derive(Deserialize)]
pub(crate) struct Write {
    msg_id: u64,
    key: Value,
    value: Value,
    #[serde(default, with = "crate::hex::optional")]
    signature: Option<Signature>,
}

impl From<Write> for Body {
    fn from(b: Write) -> Body {
        Body::Write {
            msg_id: b.msg_id,
            key: b.key,
            value: b.value,
            signature: b.signature,
        }
    }
}

/// The fields of `cas`.
#[derive(Deserialize)]
pub(crate) struct Cas {
    msg_id: u64,
    key: Value,
    from: Value,
    to: Value,
    #[serde(default, with = "crate::hex::optional")]
    signature: Option<Signature>,
}

impl From<Cas> for Body {
    fn from(b: Cas) -> Body {
        Body::Cas {
            msg_id: b.msg_id,
            key: b.key,
            from: b.from,
            to: b.to,
            signature: b.signature,
        }
    }
}
