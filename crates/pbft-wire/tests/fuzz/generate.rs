//! Strategies for field values, bodies and envelopes of every type.

use pbft_core::{Digest, Signature};
use pbft_wire::{
    Body, Envelope, StatusOk, WireCheckpoint, WireChunk, WireChunkRange, WireCommitted, WireDigest,
    WireFetchState, WireForward, WireManifest, WireNewView, WirePrePrepare, WirePrepared,
    WireRequest, WireStableCheckpoint, WireState, WireViewChange, WireVote,
};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::strategy::Union;
use serde_json::Value;

// ---------------------------------------------------------------------------
// Field values
// ---------------------------------------------------------------------------

/// Integers, with the extremes and the edges of `f64` precision often.
pub fn int() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(i64::MAX as u64),
        Just((i64::MAX as u64) + 1),
        Just(1 << 53),
        Just((1 << 53) + 1),
        any::<u64>(),
    ]
}

/// Strings: any unicode, or the characters JSON must or may escape.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x1f\"\\\\/\\x7f\u{80}\u{2028}\u{2029}\u{fffd}\u{10ffff}é😀ab]{0,12}",
    ]
}

/// Any JSON value, nested a few levels.
pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        int().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::from)),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::from),
            btree_map(text(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

pub fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

pub fn signature() -> impl Strategy<Value = Option<Signature>> {
    option::of(any::<[u8; 64]>().prop_map(Signature))
}

pub fn request() -> impl Strategy<Value = WireRequest> {
    (text(), option::of(int()), text(), signature()).prop_map(
        |(client, timestamp, operation, client_signature)| WireRequest {
            client,
            timestamp,
            operation,
            client_signature,
        },
    )
}

pub fn vote() -> impl Strategy<Value = WireVote> {
    (
        option::of(int()),
        int(),
        int(),
        digest(),
        text(),
        signature(),
    )
        .prop_map(
            |(msg_id, view, sequence_number, digest, replica, signature)| WireVote {
                msg_id,
                view,
                sequence_number,
                digest,
                replica,
                signature,
            },
        )
}

pub fn status_ok() -> impl Strategy<Value = StatusOk> {
    (
        (int(), int(), int(), option::of(int()), text()),
        (
            option::of(digest()),
            any::<usize>(),
            any::<usize>(),
            any::<bool>(),
        ),
        (option::of(json()), option::of(vec(json(), 0..3))),
    )
        .prop_map(
            |(
                (in_reply_to, msg_id, sequence_number, view, phase),
                (digest, prepares_received, commits_received, executed),
                (result, results),
            )| StatusOk {
                in_reply_to,
                msg_id,
                sequence_number,
                view,
                phase,
                digest,
                prepares_received,
                commits_received,
                executed,
                result,
                results,
            },
        )
}

// ---------------------------------------------------------------------------
// Bodies and envelopes
// ---------------------------------------------------------------------------

/// Every body type that holds no other body.
pub fn flat_body() -> BoxedStrategy<Body> {
    Union::new(vec![
        (int(), text(), vec(text(), 0..4))
            .prop_map(|(msg_id, node_id, node_ids)| Body::Init {
                msg_id,
                node_id,
                node_ids,
            })
            .boxed(),
        (int(), int())
            .prop_map(|(in_reply_to, msg_id)| Body::InitOk {
                in_reply_to,
                msg_id,
            })
            .boxed(),
        (
            int(),
            text(),
            option::of(text()),
            option::of(int()),
            signature(),
        )
            .prop_map(
                |(msg_id, operation, client, timestamp, signature)| Body::PbftRequest {
                    msg_id,
                    operation,
                    client,
                    timestamp,
                    signature,
                },
            )
            .boxed(),
        (int(), int(), int(), int(), text())
            .prop_map(
                |(in_reply_to, msg_id, sequence_number, view, phase)| Body::PbftRequestOk {
                    in_reply_to,
                    msg_id,
                    sequence_number,
                    view,
                    phase,
                },
            )
            .boxed(),
        (int(), int())
            .prop_map(|(msg_id, sequence_number)| Body::PbftStatus {
                msg_id,
                sequence_number,
            })
            .boxed(),
        status_ok().prop_map(Body::PbftStatusOk).boxed(),
        (option::of(int()), option::of(int()), any::<u32>(), text())
            .prop_map(|(in_reply_to, msg_id, code, text)| Body::Error {
                in_reply_to,
                msg_id,
                code,
                text,
            })
            .boxed(),
        (int(), json(), signature())
            .prop_map(|(msg_id, key, signature)| Body::Read {
                msg_id,
                key,
                signature,
            })
            .boxed(),
        (int(), int(), json(), option::of(int()))
            .prop_map(|(in_reply_to, msg_id, value, view)| Body::ReadOk {
                in_reply_to,
                msg_id,
                value,
                view,
            })
            .boxed(),
        (int(), json(), json(), signature())
            .prop_map(|(msg_id, key, value, signature)| Body::Write {
                msg_id,
                key,
                value,
                signature,
            })
            .boxed(),
        (int(), int(), option::of(int()))
            .prop_map(|(in_reply_to, msg_id, view)| Body::WriteOk {
                in_reply_to,
                msg_id,
                view,
            })
            .boxed(),
        (int(), json(), json(), json(), signature())
            .prop_map(|(msg_id, key, from, to, signature)| Body::Cas {
                msg_id,
                key,
                from,
                to,
                signature,
            })
            .boxed(),
        (int(), int(), option::of(int()))
            .prop_map(|(in_reply_to, msg_id, view)| Body::CasOk {
                in_reply_to,
                msg_id,
                view,
            })
            .boxed(),
        (option::of(int()), request(), signature())
            .prop_map(|(msg_id, request, signature)| {
                Body::PbftForward(WireForward {
                    msg_id,
                    request,
                    signature,
                })
            })
            .boxed(),
        (
            option::of(int()),
            int(),
            int(),
            digest(),
            option::of(vec(request(), 0..3)),
            signature(),
        )
            .prop_map(
                |(msg_id, view, sequence_number, digest, batch, signature)| {
                    Body::PbftPrePrepare(WirePrePrepare {
                        msg_id,
                        view,
                        sequence_number,
                        digest,
                        batch,
                        signature,
                    })
                },
            )
            .boxed(),
        vote().prop_map(Body::PbftPrepare).boxed(),
        vote().prop_map(Body::PbftCommit).boxed(),
        (option::of(int()), int(), digest(), text(), signature())
            .prop_map(|(msg_id, sequence_number, digest, replica, signature)| {
                Body::PbftCheckpoint(WireCheckpoint {
                    msg_id,
                    sequence_number,
                    digest,
                    replica,
                    signature,
                })
            })
            .boxed(),
        (
            option::of(int()),
            int(),
            text(),
            option::of((int(), digest(), int(), int())),
            signature(),
        )
            .prop_map(|(msg_id, sequence_number, replica, chunks, signature)| {
                Body::PbftFetchState(WireFetchState {
                    msg_id,
                    sequence_number,
                    replica,
                    report: None,
                    chunks: chunks.map(|(checkpoint, digest, first, count)| WireChunkRange {
                        checkpoint,
                        digest,
                        first,
                        count,
                    }),
                    signature,
                })
            })
            .boxed(),
    ])
    .boxed()
}

pub fn stable_checkpoint(
    inner: BoxedStrategy<Body>,
) -> impl Strategy<Value = WireStableCheckpoint> {
    (int(), digest(), vec(inner, 0..3)).prop_map(|(sequence_number, digest, proof)| {
        WireStableCheckpoint {
            sequence_number,
            digest,
            proof,
        }
    })
}

/// Every body type; the wire allows any body where one holds others.
pub fn body() -> BoxedStrategy<Body> {
    flat_body()
        .prop_recursive(2, 12, 3, |inner| {
            let pair = || (inner.clone().prop_map(Box::new), vec(inner.clone(), 0..3));
            Union::new(vec![
                (
                    option::of(int()),
                    int(),
                    text(),
                    stable_checkpoint(inner.clone()),
                    vec(pair(), 0..2),
                    signature(),
                )
                    .prop_map(
                        |(msg_id, new_view, replica, checkpoint, prepared, signature)| {
                            Body::PbftViewChange(WireViewChange {
                                msg_id,
                                new_view,
                                replica,
                                checkpoint,
                                prepared: prepared
                                    .into_iter()
                                    .map(|(pre_prepare, prepares)| WirePrepared {
                                        pre_prepare,
                                        prepares,
                                    })
                                    .collect(),
                                signature,
                            })
                        },
                    )
                    .boxed(),
                (
                    option::of(int()),
                    int(),
                    vec(inner.clone(), 0..3),
                    vec(inner.clone(), 0..3),
                    signature(),
                )
                    .prop_map(|(msg_id, view, view_changes, pre_prepares, signature)| {
                        Body::PbftNewView(WireNewView {
                            msg_id,
                            view,
                            view_changes,
                            pre_prepares,
                            signature,
                        })
                    })
                    .boxed(),
                (
                    (option::of(int()), text(), stable_checkpoint(inner.clone())),
                    (text(), text(), vec(pair(), 0..2), signature()),
                    (
                        option::of((int(), vec(digest(), 0..3))),
                        option::of((int(), text())),
                    ),
                )
                    .prop_map(
                        |(
                            (msg_id, replica, checkpoint),
                            (service, clients, committed, signature),
                            (manifest, chunk),
                        )| {
                            Body::PbftState(WireState {
                                msg_id,
                                replica,
                                checkpoint,
                                service,
                                clients,
                                committed: committed
                                    .into_iter()
                                    .map(|(pre_prepare, commits)| WireCommitted {
                                        pre_prepare,
                                        commits,
                                    })
                                    .collect(),
                                manifest: manifest.map(|(length, chunks)| WireManifest {
                                    length,
                                    chunks: chunks.into_iter().map(WireDigest).collect(),
                                }),
                                chunk: chunk.map(|(index, data)| WireChunk { index, data }),
                                signature,
                            })
                        },
                    )
                    .boxed(),
            ])
        })
        .boxed()
}

pub fn envelope() -> impl Strategy<Value = Envelope> {
    (text(), text(), body()).prop_map(|(src, dest, body)| Envelope { src, dest, body })
}
