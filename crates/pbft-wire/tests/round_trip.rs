//! Every body type survives encode → decode, and core messages survive
//! core → wire → core.

use std::sync::Arc;

use pbft_core::{
    Batch, CheckpointVote, Chunk, ChunkRange, Digest, ExecResult, FetchState, Manifest, Message,
    PrePrepare, ReplicaId, Request, Seq, Signature, Signed, SlotPhase, SlotStatus,
    StableCheckpoint, StateTransfer, StatusReport, View, Vote,
};
use pbft_wire::{
    decode, encode, request_from_body, result_to_json, status_ok_body, Body, Directory, Envelope,
    PeerError, RequestError, StatusOk, WireCheckpoint, WireChunk, WireChunkRange, WireCommitted,
    WireDigest, WireFetchState, WireForward, WireManifest, WireNewView, WirePending,
    WirePrePrepare, WirePrepared, WireReport, WireRequest, WireStableCheckpoint, WireState,
    WireViewChange, WireVote,
};
use serde_json::{json, Value};

fn digest(byte: u8) -> Digest {
    Digest([byte; 32])
}

fn directory() -> Directory {
    Directory::new(vec!["n1".into(), "n2".into(), "n3".into(), "n4".into()]).expect("valid")
}

fn every_body() -> Vec<Body> {
    let request = WireRequest {
        client: "c1".into(),
        timestamp: Some(3),
        operation: "set x=1".into(),
        client_signature: None,
    };
    let signed_request = WireRequest {
        client_signature: Some(Signature([0x3c; 64])),
        ..request.clone()
    };
    let vote = WireVote {
        msg_id: Some(9),
        view: 2,
        sequence_number: 7,
        digest: digest(0xab),
        replica: "n3".into(),
        signature: Some(Signature([0x5a; 64])),
    };
    let checkpoint = WireCheckpoint {
        msg_id: None,
        sequence_number: 128,
        digest: digest(4),
        replica: "n2".into(),
        signature: Some(Signature([9; 64])),
    };
    let pre_prepare = WirePrePrepare {
        msg_id: None,
        view: 1,
        sequence_number: 129,
        digest: digest(6),
        batch: Some(vec![]),
        signature: None,
    };
    let view_change = WireViewChange {
        msg_id: None,
        new_view: 1,
        replica: "n3".into(),
        checkpoint: WireStableCheckpoint {
            sequence_number: 128,
            digest: digest(4),
            proof: vec![Body::PbftCheckpoint(checkpoint.clone())],
        },
        prepared: vec![WirePrepared {
            pre_prepare: Box::new(Body::PbftPrePrepare(pre_prepare.clone())),
            prepares: vec![Body::PbftPrepare(vote.clone())],
        }],
        signature: None,
    };
    vec![
        Body::Init {
            msg_id: 1,
            node_id: "n1".into(),
            node_ids: vec!["n1".into(), "n2".into()],
        },
        Body::InitOk {
            in_reply_to: 1,
            msg_id: 0,
        },
        Body::PbftRequest {
            msg_id: 2,
            operation: "set x=42".into(),
            client: Some("c1".into()),
            timestamp: None,
            signature: None,
        },
        Body::PbftRequest {
            msg_id: 2,
            operation: "get x".into(),
            client: None,
            timestamp: Some(u64::MAX),
            signature: Some(Signature([0x11; 64])),
        },
        Body::PbftRequestOk {
            in_reply_to: 2,
            msg_id: 1,
            sequence_number: 1,
            view: 0,
            phase: "pre-prepare".into(),
        },
        Body::PbftStatus {
            msg_id: 3,
            sequence_number: 1,
        },
        Body::PbftStatusOk(StatusOk {
            in_reply_to: 3,
            msg_id: 2,
            sequence_number: 1,
            view: Some(0),
            phase: "committed".into(),
            digest: Some(digest(1)),
            prepares_received: 3,
            commits_received: 4,
            executed: true,
            result: Some(Value::Null),
            results: None,
        }),
        Body::PbftStatusOk(StatusOk {
            in_reply_to: 3,
            msg_id: 2,
            sequence_number: 9,
            view: None,
            phase: "none".into(),
            digest: None,
            prepares_received: 0,
            commits_received: 0,
            executed: false,
            result: None,
            results: Some(vec![json!("ok"), json!({"error": "no"})]),
        }),
        Body::Error {
            in_reply_to: Some(4),
            msg_id: Some(5),
            code: 12,
            text: "bad".into(),
        },
        Body::Error {
            in_reply_to: None,
            msg_id: None,
            code: 13,
            text: "crash".into(),
        },
        Body::Read {
            msg_id: 3,
            key: json!(0),
            signature: None,
        },
        Body::Read {
            msg_id: 4,
            key: json!("k"),
            signature: Some(Signature([0x22; 64])),
        },
        Body::ReadOk {
            in_reply_to: 3,
            msg_id: 4,
            value: json!({"nested": [1, "two"]}),
            view: None,
        },
        Body::ReadOk {
            in_reply_to: 3,
            msg_id: 4,
            value: json!(7),
            view: Some(2),
        },
        Body::Write {
            msg_id: 5,
            key: json!("k"),
            value: json!(null),
            signature: Some(Signature([0x33; 64])),
        },
        Body::WriteOk {
            in_reply_to: 5,
            msg_id: 6,
            view: None,
        },
        Body::WriteOk {
            in_reply_to: 5,
            msg_id: 6,
            view: Some(1),
        },
        Body::Cas {
            msg_id: 7,
            key: json!(1),
            from: json!(2),
            to: json!(3),
            signature: Some(Signature([0x44; 64])),
        },
        Body::CasOk {
            in_reply_to: 7,
            msg_id: 8,
            view: Some(u64::MAX),
        },
        Body::PbftForward(WireForward {
            msg_id: None,
            request: request.clone(),
            signature: None,
        }),
        Body::PbftForward(WireForward {
            msg_id: None,
            request: signed_request.clone(),
            signature: Some(Signature([0x55; 64])),
        }),
        Body::PbftPrePrepare(WirePrePrepare {
            msg_id: Some(4),
            view: 0,
            sequence_number: 1,
            digest: digest(7),
            batch: Some(vec![request, signed_request]),
            signature: Some(Signature([1; 64])),
        }),
        Body::PbftPrePrepare(WirePrePrepare {
            msg_id: None,
            view: 1,
            sequence_number: 2,
            digest: digest(8),
            batch: Some(vec![]),
            signature: None,
        }),
        Body::PbftPrepare(vote.clone()),
        Body::PbftCommit(WireVote {
            msg_id: None,
            signature: None,
            ..vote.clone()
        }),
        Body::PbftCheckpoint(checkpoint.clone()),
        Body::PbftViewChange(view_change.clone()),
        Body::PbftNewView(WireNewView {
            msg_id: Some(3),
            view: 1,
            view_changes: vec![Body::PbftViewChange(view_change)],
            pre_prepares: vec![Body::PbftPrePrepare(pre_prepare.clone())],
            signature: Some(Signature([8; 64])),
        }),
        Body::PbftFetchState(WireFetchState {
            msg_id: None,
            sequence_number: 8,
            replica: "n4".into(),
            report: None,
            chunks: None,
            signature: None,
        }),
        Body::PbftFetchState(WireFetchState {
            msg_id: None,
            sequence_number: 8,
            replica: "n4".into(),
            chunks: None,
            report: Some(WireReport {
                view: 2,
                through: 11,
                pending: vec![
                    WirePending {
                        sequence_number: 8,
                        phase: "none".into(),
                    },
                    WirePending {
                        sequence_number: 10,
                        phase: "prepared".into(),
                    },
                ],
            }),
            signature: None,
        }),
        Body::PbftFetchState(WireFetchState {
            msg_id: Some(9),
            sequence_number: 8,
            replica: "n4".into(),
            report: None,
            chunks: Some(WireChunkRange {
                checkpoint: 128,
                digest: digest(4),
                first: 3,
                count: 4,
            }),
            signature: Some(Signature([3; 64])),
        }),
        Body::PbftState(WireState {
            msg_id: None,
            replica: "n1".into(),
            checkpoint: WireStableCheckpoint {
                sequence_number: 128,
                digest: digest(4),
                proof: vec![Body::PbftCheckpoint(checkpoint.clone())],
            },
            service: "00ff".into(),
            clients: String::new(),
            committed: vec![WireCommitted {
                pre_prepare: Box::new(Body::PbftPrePrepare(pre_prepare.clone())),
                commits: vec![Body::PbftCommit(vote.clone())],
            }],
            manifest: None,
            chunk: None,
            signature: Some(Signature([2; 64])),
        }),
        Body::PbftState(WireState {
            msg_id: None,
            replica: "n1".into(),
            checkpoint: WireStableCheckpoint {
                sequence_number: 128,
                digest: digest(4),
                proof: vec![Body::PbftCheckpoint(checkpoint.clone())],
            },
            service: String::new(),
            clients: String::new(),
            committed: vec![],
            manifest: Some(WireManifest {
                length: 3_000_000,
                chunks: vec![WireDigest(digest(5)), WireDigest(digest(6))],
            }),
            chunk: None,
            signature: Some(Signature([2; 64])),
        }),
        Body::PbftState(WireState {
            msg_id: None,
            replica: "n1".into(),
            checkpoint: WireStableCheckpoint {
                sequence_number: 128,
                digest: digest(4),
                proof: vec![],
            },
            service: String::new(),
            clients: String::new(),
            committed: vec![],
            manifest: None,
            chunk: Some(WireChunk {
                index: 1,
                data: "00ff10".into(),
            }),
            signature: Some(Signature([2; 64])),
        }),
    ]
}

#[test]
fn every_body_type_round_trips() {
    let bodies = every_body();
    let mut seen: Vec<&str> = bodies.iter().map(Body::type_name).collect();
    seen.dedup();
    assert_eq!(seen, Body::TYPES, "the list covers every type, in order");
    for body in bodies {
        let envelope = Envelope {
            src: "a".into(),
            dest: "b".into(),
            body,
        };
        let line = encode(&envelope);
        assert!(!line.contains('\n'), "one line: {line}");
        assert_eq!(decode(&line).as_ref(), Ok(&envelope), "{line}");
        let value: Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(value["body"]["type"], envelope.body.type_name());
    }
}

#[test]
fn a_null_result_is_not_an_absent_result() {
    let with_null = r#"{"src":"n1","dest":"c1","body":{"type":"pbft_status_ok","in_reply_to":3,"msg_id":2,"sequence_number":1,"phase":"committed","prepares_received":3,"commits_received":4,"executed":true,"result":null}}"#;
    let without = with_null.replace(r#","result":null"#, "");
    let status = |line: &str| match decode(line).expect("decodes").body {
        Body::PbftStatusOk(s) => s.result,
        other => panic!("not a status: {other:?}"),
    };
    assert_eq!(status(with_null), Some(Value::Null));
    assert_eq!(status(&without), None);
    let reencoded = encode(&decode(with_null).expect("decodes"));
    assert!(reencoded.contains(r#""result":null"#), "{reencoded}");
}

#[test]
fn unknown_fields_are_ignored_at_every_level() {
    let line = r#"{"id":5,"src":"c1","dest":"n1","extra":[1],"body":{"type":"pbft_status","msg_id":3,"sequence_number":1,"trace":"x"}}"#;
    assert_eq!(
        decode(line).expect("decodes").body,
        Body::PbftStatus {
            msg_id: 3,
            sequence_number: 1
        }
    );
}

#[test]
fn core_messages_round_trip_through_the_wire() {
    let dir = directory();
    let request = Request::new("c1", Some(4), "set x=1");
    let batch = Arc::new(Batch::single(request.clone()));
    let vote = Vote {
        view: View(3),
        seq: Seq(11),
        digest: batch.digest(),
        replica: ReplicaId(2),
    };
    let messages = [
        Message::Forward(request),
        Message::PrePrepare(PrePrepare::new(View(3), Seq(11), batch)),
        Message::PrePrepare(PrePrepare::new(
            View(0),
            Seq(1),
            Arc::new(Batch::new(vec![])),
        )),
        Message::Prepare(vote),
        Message::Commit(vote),
        Message::Checkpoint(CheckpointVote {
            seq: Seq(256),
            digest: digest(5),
            replica: ReplicaId(3),
        }),
        Message::FetchState(FetchState {
            report: Some(StatusReport {
                view: View(2),
                through: Seq(12),
                pending: vec![(Seq(9), SlotPhase::None), (Seq(11), SlotPhase::Prepared)],
            }),
            ..FetchState::new(Seq(9), ReplicaId(1))
        }),
        Message::FetchState(FetchState::new(Seq(9), ReplicaId(1))),
        Message::FetchState(FetchState {
            chunks: Some(ChunkRange {
                checkpoint: Seq(256),
                digest: digest(5),
                first: 7,
                count: 4,
            }),
            ..FetchState::new(Seq(9), ReplicaId(1))
        }),
        Message::State(state(None, None)),
        Message::State(state(
            Some(Manifest {
                length: 5_000_000,
                chunks: Arc::new(vec![digest(1), digest(2), digest(3)]),
            }),
            None,
        )),
        Message::State(state(
            None,
            Some(Chunk {
                index: 2,
                bytes: Arc::new(vec![0, 1, 2, 255]),
            }),
        )),
    ];
    let signers = [None, Some(Signature([3; 64]))];
    for (message, signature) in messages
        .into_iter()
        .flat_map(|m| signers.map(|s| (m.clone(), s)))
    {
        let signed = Signed { message, signature };
        let body = dir.message_to_body(&signed, Some(1)).expect("members");
        let line = encode(&Envelope {
            src: "n1".into(),
            dest: "n2".into(),
            body,
        });
        let back = decode(&line).expect("decodes");
        assert_eq!(dir.body_to_message(&back.body), Ok(signed), "{line}");
    }
}

/// A state message with the optional parts given.
fn state(manifest: Option<Manifest>, chunk: Option<Chunk>) -> StateTransfer {
    let inline = manifest.is_none() && chunk.is_none();
    StateTransfer {
        checkpoint: StableCheckpoint {
            seq: Seq(256),
            digest: digest(5),
            proof: vec![],
        },
        service: Arc::new(if inline { vec![1, 2, 3] } else { vec![] }),
        clients: Arc::new(vec![]),
        committed: vec![],
        replica: ReplicaId(0),
        manifest,
        chunk,
    }
}

#[test]
fn a_pre_prepare_keeps_the_digest_it_claims() {
    let dir = directory();
    let body = Body::PbftPrePrepare(WirePrePrepare {
        msg_id: None,
        view: 0,
        sequence_number: 1,
        digest: digest(0),
        batch: Some(vec![WireRequest {
            client: "c1".into(),
            timestamp: None,
            operation: "get x".into(),
            client_signature: None,
        }]),
        signature: None,
    });
    let Ok(Message::PrePrepare(pp)) = dir.body_to_message(&body).map(|s| s.message) else {
        panic!("a pre-prepare");
    };
    assert_eq!(pp.digest, digest(0), "claimed, not recomputed");
    assert_ne!(pp.batch.expect("carried").digest(), pp.digest);
}

#[test]
fn votes_name_members_only() {
    let dir = directory();
    let vote = WireVote {
        msg_id: None,
        view: 0,
        sequence_number: 1,
        digest: digest(0),
        replica: "n9".into(),
        signature: None,
    };
    assert_eq!(
        dir.body_to_message(&Body::PbftPrepare(vote)),
        Err(PeerError::UnknownReplica("n9".into()))
    );
    let outsider = Signed {
        message: Message::Commit(Vote {
            view: View(0),
            seq: Seq(1),
            digest: digest(0),
            replica: ReplicaId(4),
        }),
        signature: None,
    };
    assert!(matches!(
        dir.message_to_body(&outsider, None),
        Err(PeerError::UnknownReplica(_))
    ));
    let status = Body::PbftStatus {
        msg_id: 1,
        sequence_number: 1,
    };
    assert_eq!(
        dir.body_to_message(&status),
        Err(PeerError::NotAPeerMessage("pbft_status"))
    );
}

#[test]
fn a_request_belongs_to_its_sender() {
    let body = |client: Option<&str>| Body::PbftRequest {
        msg_id: 1,
        operation: "get x".into(),
        client: client.map(str::to_string),
        timestamp: Some(2),
        signature: None,
    };
    let expected = Request::new("c1", Some(2), "get x");
    assert_eq!(request_from_body("c1", &body(None)), Ok(expected.clone()));
    assert_eq!(request_from_body("c1", &body(Some("c1"))), Ok(expected));
    assert_eq!(
        request_from_body("c1", &body(Some("c2"))),
        Err(RequestError::ClientMismatch {
            src: "c1".into(),
            client: "c2".into()
        })
    );
}

#[test]
fn status_reports_result_for_one_request_and_results_otherwise() {
    let status = |results: Option<Vec<ExecResult>>| SlotStatus {
        seq: Seq(1),
        view: Some(View(0)),
        phase: SlotPhase::Committed,
        digest: Some(digest(1)),
        prepares_received: 3,
        commits_received: 4,
        executed: results.is_some(),
        results,
    };
    let fields = |s: SlotStatus| match status_ok_body(3, 2, &s) {
        Body::PbftStatusOk(ok) => (ok.result, ok.results),
        other => panic!("{other:?}"),
    };
    assert_eq!(fields(status(None)), (None, None));
    assert_eq!(
        fields(status(Some(vec![ExecResult::Null]))),
        (Some(Value::Null), None)
    );
    assert_eq!(fields(status(Some(vec![]))), (None, Some(vec![])));
    assert_eq!(
        fields(status(Some(vec![
            ExecResult::Ok,
            ExecResult::Value("v".into())
        ]))),
        (None, Some(vec![json!("ok"), json!("v")]))
    );
}

#[test]
fn results_have_one_json_shape_each() {
    assert_eq!(result_to_json(&ExecResult::Ok), json!("ok"));
    assert_eq!(result_to_json(&ExecResult::Value("42".into())), json!("42"));
    assert_eq!(result_to_json(&ExecResult::Null), Value::Null);
    assert_eq!(
        result_to_json(&ExecResult::Error("bad op".into())),
        json!({"error": "bad op"})
    );
}

/// Every message a signed cluster sends through a view change that keeps
/// a prepared number (view changes with certificates, a new view with
/// pre-prepares) survives the wire unchanged.
#[test]
fn view_change_traffic_round_trips() {
    use pbft_core::{Cluster, ReplicaId as R};
    use std::cell::RefCell;
    use std::rc::Rc;

    let dir = directory();
    let mut c = Cluster::kv_signed(4, 5).expect("valid");
    let seen: Rc<RefCell<Vec<(R, Signed)>>> = Rc::default();
    let log = Rc::clone(&seen);
    // Commits never arrive, so number 1 prepares but does not commit.
    c.set_filter(move |e| {
        log.borrow_mut().push((e.from, e.signed.clone()));
        !matches!(e.signed.message, Message::Commit(_))
    });
    c.submit(R(0), Request::new("c1", Some(1), "set x=1"));
    c.stabilize();
    let log = Rc::clone(&seen);
    c.set_filter(move |e| {
        log.borrow_mut().push((e.from, e.signed.clone()));
        e.from != R(0)
    });
    for r in 1..4 {
        c.submit(R(r), Request::new("c2", Some(1), "set y=2"));
    }
    for _ in 0..20 {
        c.tick_all();
        c.stabilize();
    }
    assert_eq!(c.replica(R(1)).view(), View(1));
    let seen = seen.take();
    let kinds: std::collections::BTreeSet<&str> =
        seen.iter().map(|(_, s)| s.message.kind()).collect();
    assert!(
        kinds.contains("view-change") && kinds.contains("new-view"),
        "{kinds:?}"
    );
    let with_certificates = seen
        .iter()
        .any(|(_, s)| matches!(&s.message, Message::ViewChange(vc) if !vc.prepared.is_empty()));
    assert!(
        with_certificates,
        "a view change carried a prepared certificate"
    );
    for (from, signed) in seen {
        let body = dir.message_to_body(&signed, None).expect("members");
        let line = encode(&Envelope {
            src: dir.name_of(from).expect("member").into(),
            dest: "n1".into(),
            body,
        });
        let back = decode(&line).expect("decodes");
        assert_eq!(dir.body_to_message(&back.body), Ok(signed), "{line}");
    }
}

#[test]
fn a_clients_signature_survives_relay_and_pre_prepare() {
    let dir = directory();
    let signature = Some(Signature([0x6d; 64]));
    let request = Request::new("c1", Some(4), "set x=1").with_signature(signature);
    let unsigned = Request::new("c2", Some(1), "get x");
    let batch = Arc::new(Batch::new(vec![unsigned, request.clone()]));
    let messages = [
        Message::Forward(request),
        Message::PrePrepare(PrePrepare::new(View(0), Seq(1), batch)),
    ];
    for message in messages {
        let signed = Signed {
            message,
            signature: Some(Signature([3; 64])),
        };
        let body = dir.message_to_body(&signed, None).expect("members");
        let line = encode(&Envelope {
            src: "n2".into(),
            dest: "n1".into(),
            body,
        });
        // Beside the relaying replica's own signature, under its own name.
        assert_eq!(line.matches(r#""client_signature":""#).count(), 1, "{line}");
        let back = decode(&line).expect("decodes");
        let Ok(message) = dir.body_to_message(&back.body).map(|s| s.message) else {
            panic!("a peer message: {line}");
        };
        // Requests compare without their signatures: look at them.
        let signatures: Vec<_> = match &message {
            Message::Forward(r) => vec![r.signature().copied()],
            Message::PrePrepare(pp) => pp
                .batch
                .iter()
                .flat_map(|batch| batch.requests())
                .map(|r| r.signature().copied())
                .collect(),
            other => panic!("{other:?}"),
        };
        assert_eq!(signatures.last(), Some(&signature), "{line}");
        assert!(signatures[..signatures.len() - 1]
            .iter()
            .all(Option::is_none));
        if let Message::PrePrepare(pp) = &message {
            let batch = pp
                .batch
                .as_ref()
                .expect("the pre-prepare carries its batch");
            assert_eq!(pp.digest, batch.digest(), "the batch digest binds it");
        }
    }
}

#[test]
fn a_clients_signature_is_read_from_requests_and_lin_kv_bodies() {
    let hex = "6d".repeat(64);
    let line = format!(
        r#"{{"src":"c1","dest":"n1","body":{{"type":"pbft_request","msg_id":1,"operation":"get x","timestamp":1,"signature":"{hex}"}}}}"#
    );
    let envelope = decode(&line).expect("decodes");
    let request = request_from_body("c1", &envelope.body).expect("a request");
    assert_eq!(request.signature(), Some(&Signature([0x6d; 64])));
    for body in [
        r#""type":"read","msg_id":1,"key":0"#,
        r#""type":"write","msg_id":1,"key":0,"value":1"#,
        r#""type":"cas","msg_id":1,"key":0,"from":1,"to":2"#,
    ] {
        // The fast path (type first) and the buffered one (type last).
        for line in [
            format!(r#"{{"src":"c1","dest":"n1","body":{{{body},"signature":"{hex}"}}}}"#),
            format!(r#"{{"src":"c1","dest":"n1","body":{{"signature":"{hex}",{body}}}}}"#),
        ] {
            let envelope = decode(&line).expect("decodes");
            let signature = match envelope.body {
                Body::Read { signature, .. }
                | Body::Write { signature, .. }
                | Body::Cas { signature, .. } => signature,
                other => panic!("{other:?}"),
            };
            assert_eq!(signature, Some(Signature([0x6d; 64])), "{line}");
        }
    }
    let bad = line.replace(&hex, "6d");
    assert!(decode(&bad).is_err(), "a short signature is refused");
}
