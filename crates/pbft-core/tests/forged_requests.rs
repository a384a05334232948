//! Requests a faulty replica orders in a client's name (§4.1): a result
//! answers only the request that produced it, a forged timestamp far ahead
//! cannot lock a client out, and a client that signs its requests has them
//! ordered only with its signature, whoever relays them.

mod common;

use std::sync::Arc;

use common::*;
use pbft_core::{
    AuthFailure, Batch, ClientId, Cluster, ClusterAuth, Config, Ed25519Auth, ExecResult, KvService,
    Message, Output, PrePrepare, Refusal, Rejection, Request, Seq, View,
};

fn pre_prepare(seq: u64, request: &Request) -> Message {
    Message::PrePrepare(PrePrepare::new(
        View(0),
        Seq(seq),
        Arc::new(Batch::single(request.clone())),
    ))
}

/// Whether replica `at` answered anything from its cache.
fn answered(c: &Cluster<KvService>, at: pbft_core::ReplicaId) -> Vec<ExecResult> {
    c.events()
        .iter()
        .filter(|e| e.replica == at)
        .filter_map(|e| match &e.output {
            Output::Answered { result, .. } => Some(result.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_forged_request_under_the_next_timestamp_is_no_answer_for_the_real_one() {
    let mut c = cluster(4);
    // Backup R3 guesses c1's next timestamp and relays a forgery.
    c.inject(R3, R0, Message::Forward(req("c1", 1, "set k=666")));
    c.stabilize();
    assert!(c
        .replicas()
        .iter()
        .all(|r| r.service().get("k") == Some("666")));
    c.take_events();
    // The real request arrives: nobody acknowledges or answers it.
    for r in [R0, R1] {
        c.submit(r, req("c1", 1, "set k=1"));
        assert!(acks(c.events(), r).is_empty(), "{r} acknowledged it");
        assert!(answered(&c, r).is_empty(), "{r} answered it");
        assert_eq!(
            refusals(c.events(), r),
            [Refusal::Conflict { timestamp: 1 }]
        );
    }
    assert_eq!(c.in_flight().count(), 0, "nothing is proposed");
    // A retry of the forgery itself is still answered, as §4.1 says.
    c.submit(R0, req("c1", 1, "set k=666"));
    assert_eq!(answered(&c, R0), [ExecResult::Ok]);
}

#[test]
fn a_forgery_in_the_log_does_not_acknowledge_the_real_request() {
    let mut c = cluster(4);
    let forged = req("c1", 1, "set k=666");
    let signed = c.replica(R0).sign(pre_prepare(1, &forged));
    let rejected = deliver_only(&mut c, R0, R1, signed);
    assert!(rejected.is_empty(), "{rejected:?}");
    c.take_events();
    c.submit(R1, req("c1", 1, "set k=1"));
    assert!(
        acks(c.events(), R1).is_empty(),
        "acknowledged for the forgery"
    );
    assert!(refusals(c.events(), R1).is_empty());
    assert!(
        c.in_flight()
            .any(|e| matches!(e.signed.message, Message::Forward(_))),
        "relayed to the primary like any new request"
    );
}

#[test]
fn a_client_waiting_for_its_request_is_told_when_a_forgery_takes_its_timestamp() {
    let mut c = cluster(4);
    // A faulty primary R0 orders a forgery and ignores everything else.
    c.set_filter(|e| e.to != R0 && (e.from != R0 || e.signed.message.kind() == "pre-prepare"));
    let forged = req("c1", 1, "set k=666");
    for backup in [R1, R2, R3] {
        c.inject(R0, backup, pre_prepare(1, &forged));
    }
    let real = req("c1", 1, "set k=1");
    c.submit(R1, real.clone());
    c.stabilize();
    assert!([R1, R2, R3]
        .iter()
        .all(|r| c.replica(*r).service().get("k") == Some("666")));
    let events = c.take_events();
    assert!(acks(&events, R1).is_empty());
    assert_eq!(refusals(&events, R1), [Refusal::Conflict { timestamp: 1 }]);
    let refused: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.output {
            Output::Refused { request, .. } => Some((e.replica, request.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(refused, [(R1, real)], "only where the client waits");
}

#[test]
fn a_second_request_ordered_under_one_timestamp_gets_no_result_of_the_first() {
    let mut c = cluster(4);
    // A faulty primary orders a forged read, then the real write, both
    // under c1's timestamp 1.
    let forged = req("c1", 1, "get k");
    let real = req("c1", 1, "set k=1");
    for backup in [R1, R2, R3] {
        c.inject(R0, backup, pre_prepare(1, &forged));
        c.inject(R0, backup, pre_prepare(2, &real));
    }
    c.stabilize();
    let events = c.take_events();
    for backup in [R1, R2, R3] {
        let runs = executions(&events, backup);
        assert_eq!(runs.len(), 2, "{backup}");
        assert_eq!(runs[0].1, [ExecResult::Null]);
        assert!(
            matches!(&runs[1].1[..], [ExecResult::Error(e)] if e.contains("another request")),
            "{:?}",
            runs[1].1
        );
        assert_eq!(c.replica(backup).service().get("k"), None, "not executed");
    }
}

#[test]
fn a_relayed_request_far_ahead_does_not_make_later_ones_stale() {
    let mut c = cluster(4);
    c.inject(R3, R0, Message::Forward(req("c1", 1 << 62, "set k=666")));
    c.stabilize();
    let events = c.take_events();
    assert!(
        matches!(
            &rejections(&events, R0)[..],
            [(R3, Rejection::TimestampTooFarAhead { timestamp, latest: 0, .. })]
                if *timestamp == 1 << 62
        ),
        "{:?}",
        rejections(&events, R0)
    );
    c.submit(R1, req("c1", 1, "set k=1"));
    c.stabilize();
    let events = c.take_events();
    assert!(refusals(&events, R1).is_empty());
    assert_eq!(acks(&events, R1).len(), 1);
    assert!(c
        .replicas()
        .iter()
        .all(|r| r.service().get("k") == Some("1")));
    // At intake too.
    c.submit(R1, req("c1", 2 + (1 << 20), "set k=2"));
    assert!(matches!(
        refusals(c.events(), R1)[..],
        [Refusal::TooFarAhead { latest: 1, .. }]
    ));
}

#[test]
fn a_request_far_ahead_that_a_faulty_primary_orders_executes_as_an_error() {
    let mut c = cluster(4);
    let forged = req("c1", 1 << 62, "set k=666");
    for backup in [R1, R2, R3] {
        c.inject(R0, backup, pre_prepare(1, &forged));
    }
    c.stabilize();
    for backup in [R1, R2, R3] {
        let results = c.replica(backup).status(Seq(1)).results;
        assert!(
            matches!(results.as_deref(), Some([ExecResult::Error(_)])),
            "{results:?}"
        );
        assert_eq!(c.replica(backup).service().get("k"), None);
    }
    // The client's record did not move: its next request is not stale.
    c.take_events();
    c.submit(R1, req("c1", 1, "set k=1"));
    assert!(refusals(c.events(), R1).is_empty(), "{:?}", c.events());
}

const SECRET: [u8; 32] = [5; 32];

/// A signed cluster where client `c1` signs with [`SECRET`].
fn keyed_cluster() -> Cluster<KvService> {
    let config =
        Config::new(4).with_client_keys([(ClientId::from("c1"), Ed25519Auth::public_key(SECRET))]);
    Cluster::new(&config, ClusterAuth::Seeded(42), |_| KvService::default()).expect("cluster")
}

#[test]
fn a_keyed_clients_unsigned_or_badly_signed_request_is_refused_at_intake() {
    let mut c = keyed_cluster();
    let unsigned = req("c1", 1, "set k=1");
    let badly = unsigned.clone().signed_with(&[6; 32]);
    for r in [R0, R1] {
        c.submit(r, unsigned.clone());
        c.submit(r, badly.clone());
        assert_eq!(
            refusals(c.events(), r),
            [
                Refusal::Unauthentic(AuthFailure::Missing),
                Refusal::Unauthentic(AuthFailure::Invalid)
            ]
        );
    }
    assert_eq!(c.in_flight().count(), 0, "nothing relayed or proposed");
}

#[test]
fn a_keyed_clients_unsigned_request_is_rejected_when_relayed() {
    let mut c = keyed_cluster();
    c.inject(R3, R0, Message::Forward(req("c1", 1, "set k=666")));
    let badly = req("c1", 1, "set k=666").signed_with(&[6; 32]);
    c.inject(R3, R0, Message::Forward(badly));
    c.stabilize();
    let events = c.take_events();
    let client = ClientId::from("c1");
    assert_eq!(
        rejections(&events, R0),
        [
            (
                R3,
                Rejection::UnauthenticRequest {
                    client: client.clone(),
                    failure: AuthFailure::Missing
                }
            ),
            (
                R3,
                Rejection::UnauthenticRequest {
                    client,
                    failure: AuthFailure::Invalid
                }
            )
        ]
    );
    assert!(c.replicas().iter().all(|r| r.last_executed() == Seq(0)));
}

#[test]
fn a_pre_prepare_with_a_keyed_clients_unsigned_request_is_rejected() {
    let mut c = keyed_cluster();
    let batch = Batch::new(vec![req("c2", 1, "set j=1"), req("c1", 1, "set k=666")]);
    let pp = Message::PrePrepare(PrePrepare::new(View(0), Seq(1), Arc::new(batch)));
    let signed = c.replica(R0).sign(pp);
    let rejected = deliver_only(&mut c, R0, R1, signed);
    assert_eq!(
        rejected,
        [Rejection::UnauthenticRequest {
            client: ClientId::from("c1"),
            failure: AuthFailure::Missing
        }]
    );
    assert_eq!(
        c.replica(R1).status(Seq(1)).phase,
        pbft_core::SlotPhase::None
    );
}

#[test]
fn a_correctly_signed_request_is_relayed_ordered_and_executed() {
    let mut c = keyed_cluster();
    c.submit(R1, req("c1", 1, "set k=1").signed_with(&SECRET));
    // A client without a key is accepted unsigned.
    c.submit(R2, req("c2", 1, "set j=2"));
    c.stabilize();
    let events = c.take_events();
    for r in [R0, R1, R2, R3] {
        assert!(
            rejections(&events, r).is_empty(),
            "{:?}",
            rejections(&events, r)
        );
        assert_eq!(c.replica(r).service().get("k"), Some("1"));
        assert_eq!(c.replica(r).service().get("j"), Some("2"));
    }
    assert_eq!(acks(&events, R1).len(), 1);
    assert_eq!(acks(&events, R2).len(), 1);
}

/// Whether replica `at` sent a `Forward`.
fn forwarded(events: &[pbft_core::Event], at: pbft_core::ReplicaId) -> bool {
    events.iter().filter(|e| e.replica == at).any(|e| {
        matches!(&e.output, Output::Send { signed, .. }
            if matches!(signed.message, Message::Forward(_)))
    })
}

#[test]
fn a_backup_relayed_an_unsigned_or_far_ahead_request_neither_waits_nor_passes_it_on() {
    let mut c = keyed_cluster();
    // R3 relays to the backup R1, as a backup whose primary sits on a
    // request does: R1 would wait for it and pass it to R0.
    c.inject(R3, R1, Message::Forward(req("c1", 1, "set k=666")));
    c.inject(R3, R1, Message::Forward(req("c2", 1 << 62, "set j=666")));
    c.stabilize();
    let events = c.take_events();
    assert_eq!(
        rejections(&events, R1),
        [
            (
                R3,
                Rejection::UnauthenticRequest {
                    client: ClientId::from("c1"),
                    failure: AuthFailure::Missing
                }
            ),
            (
                R3,
                Rejection::TimestampTooFarAhead {
                    client: ClientId::from("c2"),
                    timestamp: 1 << 62,
                    latest: 0
                }
            )
        ]
    );
    assert!(!forwarded(&events, R1), "passed on to the primary");
    // Nothing waits at R1, so its timer never suspects the primary.
    for _ in 0..2 * pbft_core::DEFAULT_VIEW_CHANGE_TIMEOUT {
        c.tick_all();
        c.stabilize();
    }
    assert_eq!(c.replica(R1).view(), View(0));
    assert!(c.replica(R1).view_active());
}

#[test]
fn a_replica_following_the_view_it_left_keeps_no_unsigned_pre_prepare() {
    let mut c = keyed_cluster();
    // R3 is cut off alone and starts a view change nobody joins.
    c.set_filter(|e| e.from != R3 && e.to != R3);
    c.submit(R3, req("c3", 1, "set b=3"));
    c.stabilize();
    for _ in 0..pbft_core::DEFAULT_VIEW_CHANGE_TIMEOUT + 2 {
        c.tick_all();
        c.stabilize();
    }
    c.clear_filter();
    c.stabilize();
    assert_eq!(c.replica(R0).view(), View(0));
    assert_eq!(c.replica(R3).view(), View(1));
    assert!(!c.replica(R3).view_active(), "R3 follows view 0");
    c.take_events();
    // View 0's primary sends R3 a pre-prepare with a forgery for c1.
    let executed = c.replica(R3).last_executed();
    let seq = executed.0 + 1;
    let forged = c
        .replica(R0)
        .sign(pre_prepare(seq, &req("c1", 1, "set k=666")));
    let rejected = deliver_only(&mut c, R0, R3, forged);
    assert_eq!(
        rejected,
        [Rejection::UnauthenticRequest {
            client: ClientId::from("c1"),
            failure: AuthFailure::Missing
        }]
    );
    // Nor does it execute once the others commit it.
    for r in [R0, R1, R2] {
        let vote = pbft_core::Vote {
            view: View(0),
            seq: Seq(seq),
            digest: Batch::single(req("c1", 1, "set k=666")).digest(),
            replica: r,
        };
        c.inject(r, R3, Message::Commit(vote));
    }
    c.stabilize();
    assert_eq!(c.replica(R3).service().get("k"), None);
}

#[test]
fn a_held_request_with_a_bad_signature_is_refused_when_its_batch_goes_out() {
    // One number in flight at a time, so requests wait at the primary and
    // go out together, checked as one batch.
    let secrets = [("c1", [5u8; 32]), ("c2", [7; 32]), ("c3", [8; 32])];
    let config = Config::new(4)
        .with_batching(16, 1)
        .with_client_keys(secrets.map(|(c, s)| (ClientId::from(c), Ed25519Auth::public_key(s))));
    let mut c =
        Cluster::new(&config, ClusterAuth::Seeded(42), |_| KvService::default()).expect("cluster");
    c.submit(R0, req("c1", 1, "set a=1").signed_with(&secrets[0].1));
    // Held behind number 1: two good requests and one in c2's name
    // signed with another key.
    let forged = req("c2", 1, "set b=666").signed_with(&[6; 32]);
    c.submit(R0, req("c1", 2, "set a=2").signed_with(&secrets[0].1));
    c.submit(R0, forged.clone());
    c.submit(R0, req("c3", 1, "set c=3").signed_with(&secrets[2].1));
    c.submit(R0, req("c1", 3, "set a=666").signed_with(&[9; 32]));
    assert!(refusals(c.events(), R0).is_empty(), "held, not refused yet");
    c.stabilize();
    let events = c.take_events();
    assert_eq!(
        refusals(&events, R0),
        [
            Refusal::Unauthentic(AuthFailure::Invalid),
            Refusal::Unauthentic(AuthFailure::Invalid)
        ],
        "each forgery refused once"
    );
    for r in [R0, R1, R2, R3] {
        assert!(
            rejections(&events, r).is_empty(),
            "{r}: {:?}",
            rejections(&events, r)
        );
        let replica = c.replica(r);
        assert_eq!(
            replica.last_executed(),
            Seq(2),
            "{r}: one batch after the first"
        );
        assert_eq!(replica.service().get("a"), Some("2"), "{r}");
        assert_eq!(replica.service().get("b"), None, "{r}");
        assert_eq!(replica.service().get("c"), Some("3"), "{r}");
    }
    // Its real client's request under that timestamp is still new.
    c.submit(R0, req("c2", 1, "set b=2").signed_with(&secrets[1].1));
    c.stabilize();
    assert_eq!(c.replica(R3).service().get("b"), Some("2"));
}

#[test]
fn a_held_request_with_a_bad_signature_does_not_wait_at_a_primary_that_changes_views() {
    let secrets = [("c1", [5u8; 32]), ("c2", [7; 32])];
    let config = Config::new(4)
        .with_batching(16, 1)
        .with_client_keys(secrets.map(|(c, s)| (ClientId::from(c), Ed25519Auth::public_key(s))));
    let mut c =
        Cluster::new(&config, ClusterAuth::Seeded(42), |_| KvService::default()).expect("cluster");
    // Number 1 never commits, so what follows waits at the primary until
    // the backups give up on view 0.
    c.set_filter(|e| !matches!(e.signed.message, Message::Commit(_)));
    let first = req("c1", 1, "set a=1").signed_with(&secrets[0].1);
    for r in [R0, R1, R2, R3] {
        c.submit(r, first.clone());
    }
    let genuine = req("c1", 2, "set a=2").signed_with(&secrets[0].1);
    let forged = req("c2", 1, "set b=666").signed_with(&[6; 32]);
    c.submit(R0, genuine.clone());
    c.submit(R0, forged.clone());
    let mut relayed = Vec::new();
    for _ in 0..200 {
        c.tick_all();
        for e in c.in_flight().filter(|e| e.from == R0) {
            if let Message::Forward(request) = &e.signed.message {
                relayed.push(request.clone());
            }
        }
        c.stabilize();
        if c.replica(R0).view() > View(0) && !relayed.is_empty() {
            break;
        }
    }
    assert!(c.replica(R0).view() > View(0), "the view changed");
    assert!(
        relayed.contains(&genuine),
        "the genuine request waits and is passed on"
    );
    assert!(!relayed.contains(&forged), "the forgery is not");
}

#[test]
fn a_forged_copy_held_first_does_not_shut_out_the_clients_own() {
    let secret = [5u8; 32];
    let config = Config::new(4)
        .with_batching(16, 1)
        .with_client_keys([(ClientId::from("c1"), Ed25519Auth::public_key(secret))]);
    let mut c =
        Cluster::new(&config, ClusterAuth::Seeded(42), |_| KvService::default()).expect("cluster");
    c.submit(R0, req("c1", 1, "set a=1").signed_with(&secret));
    // Behind number 1, the primary holds a forgery of c1's next request,
    // unchecked; the backups get the real one and relay it.
    let forged = req("c1", 2, "set a=2").signed_with(&[6; 32]);
    c.submit(R0, forged.clone());
    for r in [R1, R2, R3] {
        c.submit(r, req("c1", 2, "set a=2").signed_with(&secret));
    }
    c.stabilize();
    // The forger keeps the pipeline busy and sends its copy again and again.
    for n in 0..100 {
        c.submit(R0, Request::new("c9", None, &format!("set z={n}")));
        c.submit(R0, forged.clone());
        c.tick_all();
        c.stabilize();
        if c.replicas()
            .iter()
            .all(|r| r.service().get("a") == Some("2"))
        {
            break;
        }
    }
    for r in [R0, R1, R2, R3] {
        assert_eq!(c.replica(r).view(), View(0), "{r}: no view change");
        assert_eq!(c.replica(r).service().get("a"), Some("2"), "{r}");
    }
}
