//! Conversions between wire bodies and the core's values.

use std::fmt;

use pbft_core::hex;
use std::sync::Arc;

use pbft_core::{
    Batch, CheckpointVote, Chunk, ChunkRange, CommittedCertificate, ExecResult, FetchState,
    Manifest, Message, NewView, PrePrepare, PreparedCertificate, ReplicaId, Request, Seq,
    Signature, Signed, SlotPhase, SlotStatus, StableCheckpoint, StateTransfer, StatusReport, View,
    ViewChange, Vote,
};
use serde_json::Value;

use crate::body::{
    Body, StatusOk, WireCheckpoint, WireChunk, WireChunkRange, WireCommitted, WireDigest,
    WireFetchState, WireForward, WireManifest, WireNewView, WirePending, WirePrePrepare,
    WirePrepared, WireReport, WireRequest, WireStableCheckpoint, WireState, WireViewChange,
    WireVote,
};
use crate::directory::Directory;

/// Why a body is not a usable replica-to-replica message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerError {
    /// A vote names a replica that is not in the directory.
    UnknownReplica(String),
    /// The body is a client-facing type, not a replica message.
    NotAPeerMessage(&'static str),
    /// A state snapshot field is not hex.
    BadSnapshot(&'static str, String),
    /// A status report names a phase that does not exist.
    BadPhase(String),
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::UnknownReplica(name) => {
                write!(f, "replica {name:?} is not in node_ids")
            }
            PeerError::NotAPeerMessage(kind) => {
                write!(f, "{kind} is not a replica-to-replica message")
            }
            PeerError::BadSnapshot(field, e) => write!(f, "field `{field}` is not hex: {e}"),
            PeerError::BadPhase(phase) => write!(f, "{phase:?} is not a phase"),
        }
    }
}

impl std::error::Error for PeerError {}

impl Directory {
    /// The wire body of a signed replica message, numbered `msg_id` if
    /// given.
    pub fn message_to_body(&self, signed: &Signed, msg_id: Option<u64>) -> Result<Body, PeerError> {
        let signature = signed.signature;
        Ok(match &signed.message {
            Message::Forward(request) => Body::PbftForward(WireForward {
                msg_id,
                request: wire_request(request),
                signature,
            }),
            Message::PrePrepare(pp) => Body::PbftPrePrepare(WirePrePrepare {
                msg_id,
                view: pp.view.0,
                sequence_number: pp.seq.0,
                digest: pp.digest,
                batch: pp
                    .batch
                    .as_ref()
                    .map(|batch| batch.requests().iter().map(wire_request).collect()),
                signature,
            }),
            Message::Prepare(vote) => Body::PbftPrepare(self.wire_vote(vote, msg_id, signature)?),
            Message::Commit(vote) => Body::PbftCommit(self.wire_vote(vote, msg_id, signature)?),
            Message::Checkpoint(c) => Body::PbftCheckpoint(WireCheckpoint {
                msg_id,
                sequence_number: c.seq.0,
                digest: c.digest,
                replica: self.wire_name(c.replica)?,
                signature,
            }),
            Message::ViewChange(vc) => Body::PbftViewChange(WireViewChange {
                msg_id,
                new_view: vc.new_view.0,
                replica: self.wire_name(vc.replica)?,
                checkpoint: self.wire_stable(&vc.checkpoint)?,
                prepared: vc
                    .prepared
                    .iter()
                    .map(|cert| self.wire_prepared(cert))
                    .collect::<Result<_, PeerError>>()?,
                signature,
            }),
            Message::NewView(nv) => Body::PbftNewView(WireNewView {
                msg_id,
                view: nv.view.0,
                view_changes: self.bodies(&nv.view_changes)?,
                pre_prepares: self.bodies(&nv.pre_prepares)?,
                signature,
            }),
            Message::FetchState(fetch) => Body::PbftFetchState(WireFetchState {
                msg_id,
                sequence_number: fetch.seq.0,
                replica: self.wire_name(fetch.replica)?,
                report: fetch.report.as_ref().map(wire_report),
                chunks: fetch.chunks.map(|range| WireChunkRange {
                    checkpoint: range.checkpoint.0,
                    digest: range.digest,
                    first: range.first,
                    count: range.count,
                }),
                signature,
            }),
            Message::State(st) => Body::PbftState(WireState {
                msg_id,
                replica: self.wire_name(st.replica)?,
                checkpoint: self.wire_stable(&st.checkpoint)?,
                service: hex::encode(&st.service),
                clients: hex::encode(&st.clients),
                committed: st
                    .committed
                    .iter()
                    .map(|cert| self.wire_committed(cert))
                    .collect::<Result<_, PeerError>>()?,
                manifest: st.manifest.as_ref().map(|m| WireManifest {
                    length: m.length,
                    chunks: m.chunks.iter().copied().map(WireDigest).collect(),
                }),
                chunk: st.chunk.as_ref().map(|c| WireChunk {
                    index: c.index,
                    data: hex::encode(&c.bytes),
                }),
                signature,
            }),
        })
    }

    pub(crate) fn wire_prepared(
        &self,
        cert: &PreparedCertificate,
    ) -> Result<WirePrepared, PeerError> {
        Ok(WirePrepared {
            pre_prepare: Box::new(self.message_to_body(&cert.pre_prepare, None)?),
            prepares: self.bodies(&cert.prepares)?,
        })
    }

    pub(crate) fn core_prepared(
        &self,
        cert: &WirePrepared,
    ) -> Result<PreparedCertificate, PeerError> {
        Ok(PreparedCertificate {
            pre_prepare: self.body_to_message(&cert.pre_prepare)?,
            prepares: self.messages(&cert.prepares)?,
        })
    }

    pub(crate) fn wire_committed(
        &self,
        cert: &CommittedCertificate,
    ) -> Result<WireCommitted, PeerError> {
        Ok(WireCommitted {
            pre_prepare: Box::new(self.message_to_body(&cert.pre_prepare, None)?),
            commits: self.bodies(&cert.commits)?,
        })
    }

    pub(crate) fn core_committed(
        &self,
        cert: &WireCommitted,
    ) -> Result<CommittedCertificate, PeerError> {
        Ok(CommittedCertificate {
            pre_prepare: self.body_to_message(&cert.pre_prepare)?,
            commits: self.messages(&cert.commits)?,
        })
    }

    pub(crate) fn wire_stable(
        &self,
        cp: &StableCheckpoint,
    ) -> Result<WireStableCheckpoint, PeerError> {
        Ok(WireStableCheckpoint {
            sequence_number: cp.seq.0,
            digest: cp.digest,
            proof: self.bodies(&cp.proof)?,
        })
    }

    pub(crate) fn core_stable(
        &self,
        cp: &WireStableCheckpoint,
    ) -> Result<StableCheckpoint, PeerError> {
        Ok(StableCheckpoint {
            seq: Seq(cp.sequence_number),
            digest: cp.digest,
            proof: self.messages(&cp.proof)?,
        })
    }

    fn bodies(&self, members: &[Signed]) -> Result<Vec<Body>, PeerError> {
        members
            .iter()
            .map(|m| self.message_to_body(m, None))
            .collect()
    }

    fn messages(&self, bodies: &[Body]) -> Result<Vec<Signed>, PeerError> {
        bodies.iter().map(|b| self.body_to_message(b)).collect()
    }

    /// The signed replica message a body carries.
    ///
    /// A pre-prepare keeps the digest it *claims*, and every message keeps
    /// the signature it carries; the replica checks both and rejects a
    /// mismatch with a typed reason.
    pub fn body_to_message(&self, body: &Body) -> Result<Signed, PeerError> {
        let (message, signature) = match body {
            Body::PbftForward(f) => (Message::Forward(core_request(&f.request)), f.signature),
            Body::PbftPrePrepare(pp) => (
                Message::PrePrepare(PrePrepare {
                    view: View(pp.view),
                    seq: Seq(pp.sequence_number),
                    digest: pp.digest,
                    batch: pp.batch.as_ref().map(|batch| {
                        Arc::new(Batch::new(batch.iter().map(core_request).collect()))
                    }),
                }),
                pp.signature,
            ),
            Body::PbftPrepare(v) => (Message::Prepare(self.core_vote(v)?), v.signature),
            Body::PbftCommit(v) => (Message::Commit(self.core_vote(v)?), v.signature),
            Body::PbftCheckpoint(c) => (
                Message::Checkpoint(CheckpointVote {
                    seq: Seq(c.sequence_number),
                    digest: c.digest,
                    replica: self.core_id(&c.replica)?,
                }),
                c.signature,
            ),
            Body::PbftViewChange(vc) => (
                Message::ViewChange(ViewChange {
                    new_view: View(vc.new_view),
                    checkpoint: self.core_stable(&vc.checkpoint)?,
                    prepared: vc
                        .prepared
                        .iter()
                        .map(|cert| self.core_prepared(cert))
                        .collect::<Result<_, PeerError>>()?,
                    replica: self.core_id(&vc.replica)?,
                }),
                vc.signature,
            ),
            Body::PbftNewView(nv) => (
                Message::NewView(NewView {
                    view: View(nv.view),
                    view_changes: self.messages(&nv.view_changes)?,
                    pre_prepares: self.messages(&nv.pre_prepares)?,
                }),
                nv.signature,
            ),
            Body::PbftFetchState(fetch) => (
                Message::FetchState(FetchState {
                    seq: Seq(fetch.sequence_number),
                    replica: self.core_id(&fetch.replica)?,
                    report: fetch.report.as_ref().map(core_report).transpose()?,
                    chunks: fetch.chunks.as_ref().map(|range| ChunkRange {
                        checkpoint: Seq(range.checkpoint),
                        digest: range.digest,
                        first: range.first,
                        count: range.count,
                    }),
                }),
                fetch.signature,
            ),
            Body::PbftState(st) => (
                Message::State(StateTransfer {
                    checkpoint: self.core_stable(&st.checkpoint)?,
                    service: Arc::new(snapshot(&st.service, "service")?),
                    clients: Arc::new(snapshot(&st.clients, "clients")?),
                    committed: st
                        .committed
                        .iter()
                        .map(|cert| self.core_committed(cert))
                        .collect::<Result<_, PeerError>>()?,
                    replica: self.core_id(&st.replica)?,
                    manifest: st.manifest.as_ref().map(|m| Manifest {
                        length: m.length,
                        chunks: Arc::new(m.chunks.iter().map(|d| d.0).collect()),
                    }),
                    chunk: match &st.chunk {
                        Some(c) => Some(Chunk {
                            index: c.index,
                            bytes: Arc::new(snapshot(&c.data, "chunk.data")?),
                        }),
                        None => None,
                    },
                }),
                st.signature,
            ),
            other => return Err(PeerError::NotAPeerMessage(other.type_name())),
        };
        Ok(Signed { message, signature })
    }

    fn wire_vote(
        &self,
        vote: &Vote,
        msg_id: Option<u64>,
        signature: Option<Signature>,
    ) -> Result<WireVote, PeerError> {
        Ok(WireVote {
            msg_id,
            view: vote.view.0,
            sequence_number: vote.seq.0,
            digest: vote.digest,
            replica: self.wire_name(vote.replica)?,
            signature,
        })
    }

    fn wire_name(&self, id: ReplicaId) -> Result<String, PeerError> {
        self.name_of(id)
            .map(str::to_string)
            .ok_or_else(|| PeerError::UnknownReplica(format!("#{}", id.0)))
    }

    fn core_id(&self, name: &str) -> Result<ReplicaId, PeerError> {
        self.id_of(name)
            .ok_or_else(|| PeerError::UnknownReplica(name.to_string()))
    }

    fn core_vote(&self, vote: &WireVote) -> Result<Vote, PeerError> {
        let replica = self.core_id(&vote.replica)?;
        Ok(Vote {
            view: View(vote.view),
            seq: Seq(vote.sequence_number),
            digest: vote.digest,
            replica,
        })
    }
}

pub(crate) fn snapshot(text: &str, field: &'static str) -> Result<Vec<u8>, PeerError> {
    hex::parse_vec(text).map_err(|e| PeerError::BadSnapshot(field, e.to_string()))
}

fn wire_request(request: &Request) -> WireRequest {
    WireRequest {
        client: request.client.as_str().to_string(),
        timestamp: request.timestamp,
        operation: request.operation.to_string(),
        client_signature: request.signature().copied(),
    }
}

fn core_request(request: &WireRequest) -> Request {
    Request::new(&request.client, request.timestamp, &request.operation)
        .with_signature(request.client_signature)
}

/// Why a `pbft_request` body cannot become a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// The body is not a `pbft_request`.
    NotARequest(&'static str),
    /// The body's `client` differs from the envelope's `src`. Clients are
    /// identified by the transport, so a request cannot speak for another
    /// client.
    ClientMismatch {
        /// The envelope's sender.
        src: String,
        /// The `client` field.
        client: String,
    },
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::NotARequest(kind) => write!(f, "{kind} is not a pbft_request"),
            RequestError::ClientMismatch { src, client } => write!(
                f,
                "field `client` is {client:?} but the request comes from {src:?}; \
                 a client may only send its own requests"
            ),
        }
    }
}

impl std::error::Error for RequestError {}

/// The core request a `pbft_request` from `src` asks for, with the
/// client's signature if it carries one.
pub fn request_from_body(src: &str, body: &Body) -> Result<Request, RequestError> {
    let Body::PbftRequest {
        operation,
        client,
        timestamp,
        signature,
        ..
    } = body
    else {
        return Err(RequestError::NotARequest(body.type_name()));
    };
    if let Some(client) = client {
        if client != src {
            return Err(RequestError::ClientMismatch {
                src: src.to_string(),
                client: client.clone(),
            });
        }
    }
    Ok(Request::new(src, *timestamp, operation).with_signature(*signature))
}

/// The `pbft_status_ok` body for a replica's status of one number.
///
/// `result` is set only for an executed batch of exactly one request;
/// `results` only for an executed batch of any other size.
pub fn status_ok_body(in_reply_to: u64, msg_id: u64, status: &SlotStatus) -> Body {
    let results: Option<Vec<Value>> = status
        .results
        .as_ref()
        .map(|r| r.iter().map(result_to_json).collect());
    let (result, results) = match results {
        Some(mut one) if one.len() == 1 => (one.pop(), None),
        many => (None, many),
    };
    Body::PbftStatusOk(StatusOk {
        in_reply_to,
        msg_id,
        sequence_number: status.seq.0,
        view: status.view.map(|v| v.0),
        phase: status.phase.as_str().to_string(),
        digest: status.digest,
        prepares_received: status.prepares_received,
        commits_received: status.commits_received,
        executed: status.executed,
        result,
        results,
    })
}

/// An execution result as JSON: `"ok"`, the value as a string, `null`, or
/// `{"error": text}`.
pub fn result_to_json(result: &ExecResult) -> Value {
    match result {
        ExecResult::Ok => Value::from("ok"),
        ExecResult::Value(v) => Value::from(v.as_str()),
        ExecResult::Null => Value::Null,
        ExecResult::Error(e) => serde_json::json!({ "error": e }),
    }
}

/// A status report as it travels.
fn wire_report(report: &StatusReport) -> WireReport {
    WireReport {
        view: report.view.0,
        through: report.through.0,
        pending: report
            .pending
            .iter()
            .map(|(seq, phase)| WirePending {
                sequence_number: seq.0,
                phase: phase.as_str().to_string(),
            })
            .collect(),
    }
}

/// A status report from the wire; every phase must be one the core knows.
fn core_report(report: &WireReport) -> Result<StatusReport, PeerError> {
    let pending = report
        .pending
        .iter()
        .map(|p| {
            let phase = [
                SlotPhase::None,
                SlotPhase::PrePrepare,
                SlotPhase::Prepared,
                SlotPhase::Committed,
                SlotPhase::Checkpointed,
            ]
            .into_iter()
            .find(|phase| phase.as_str() == p.phase)
            .ok_or_else(|| PeerError::BadPhase(p.phase.clone()))?;
            Ok((Seq(p.sequence_number), phase))
        })
        .collect::<Result<_, _>>()?;
    Ok(StatusReport {
        view: View(report.view),
        through: Seq(report.through),
        pending,
    })
}
