//! A replica ignores messages the protocol does not allow, records a typed
//! reason for each, and never lets them count toward a certificate.

mod common;

use std::sync::Arc;

use common::*;
use pbft_core::{
    Batch, Cluster, Digest, KvService, Message, Phase, PrePrepare, Rejection, ReplicaId, Seq,
    SlotPhase, View, Vote,
};

fn batch(op: &str) -> Arc<Batch> {
    Arc::new(Batch::single(req("c1", 1, op)))
}

fn pre_prepare(seq: u64, op: &str) -> Message {
    Message::PrePrepare(PrePrepare::new(View(0), Seq(seq), batch(op)))
}

fn vote(replica: ReplicaId, seq: u64, digest: Digest) -> Vote {
    Vote {
        view: View(0),
        seq: Seq(seq),
        digest,
        replica,
    }
}

/// Drops whatever is in flight, delivers one message to `to` alone, and
/// returns what `to` rejected.
fn deliver(
    c: &mut Cluster<KvService>,
    from: ReplicaId,
    to: ReplicaId,
    m: Message,
) -> Vec<Rejection> {
    c.set_filter(|_| false);
    c.stabilize();
    c.clear_filter();
    c.take_events();
    c.inject(from, to, m);
    assert!(c.deliver_next());
    rejections(c.events(), to)
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

#[test]
fn a_message_from_a_non_member_is_ignored() {
    let mut c = cluster(4);
    let d = batch("set x=1").digest();
    let outsider = ReplicaId(9);
    let got = deliver(&mut c, outsider, R1, Message::Prepare(vote(outsider, 1, d)));
    assert_eq!(got, [Rejection::NonMember]);
    assert_eq!(c.replica(R1).status(Seq(1)).prepares_received, 0);
}

#[test]
fn a_message_for_another_view_is_ignored() {
    let mut c = cluster(4);
    let d = batch("set x=1").digest();
    let mut v = vote(R2, 1, d);
    v.view = View(3);
    let got = deliver(&mut c, R2, R1, Message::Prepare(v));
    assert_eq!(
        got,
        [Rejection::WrongView {
            current: View(0),
            received: View(3)
        }]
    );
    let pp = PrePrepare::new(View(1), Seq(1), batch("set x=1"));
    let got = deliver(&mut c, R1, R2, Message::PrePrepare(pp));
    assert!(matches!(got[..], [Rejection::WrongView { .. }]));
    assert_eq!(c.replica(R2).status(Seq(1)).phase, SlotPhase::None);
}

#[test]
fn a_pre_prepare_whose_digest_does_not_match_its_batch_is_ignored() {
    let mut c = cluster(4);
    let mut pp = PrePrepare::new(View(0), Seq(1), batch("set x=1"));
    let honest = pp.digest;
    pp.digest = batch("set x=666").digest();
    let got = deliver(&mut c, R0, R1, Message::PrePrepare(pp.clone()));
    assert_eq!(
        got,
        [Rejection::DigestMismatch {
            seq: Seq(1),
            claimed: pp.digest,
            actual: honest
        }]
    );
    assert_eq!(c.replica(R1).status(Seq(1)).phase, SlotPhase::None);
    assert_eq!(c.in_flight().count(), 0, "no prepare was sent for it");
}

#[test]
fn a_second_pre_prepare_with_another_digest_is_ignored() {
    let mut c = cluster(4);
    let first = batch("set x=1").digest();
    let second = batch("set x=2").digest();
    assert!(deliver(&mut c, R0, R1, pre_prepare(1, "set x=1")).is_empty());
    let got = deliver(&mut c, R0, R1, pre_prepare(1, "set x=2"));
    assert_eq!(
        got,
        [Rejection::ConflictingPrePrepare {
            view: View(0),
            seq: Seq(1),
            accepted: first,
            offered: second
        }]
    );
    assert_eq!(c.replica(R1).status(Seq(1)).digest, Some(first));
    // The very same pre-prepare again is a harmless duplicate.
    let got = deliver(&mut c, R0, R1, pre_prepare(1, "set x=1"));
    assert_eq!(got, [Rejection::DuplicatePrePrepare { seq: Seq(1) }]);
}

#[test]
fn a_pre_prepare_from_a_backup_is_ignored() {
    let mut c = cluster(4);
    let got = deliver(&mut c, R2, R1, pre_prepare(1, "set x=1"));
    assert_eq!(got, [Rejection::NotPrimary { primary: R0 }]);
}

#[test]
fn a_duplicate_vote_counts_once() {
    let mut c = cluster(4);
    c.submit(R0, req("c1", 1, "set x=1"));
    c.set_filter(|_| false); // The primary hears nothing from the network.
    c.stabilize();
    c.clear_filter();
    let d = c
        .replica(R0)
        .status(Seq(1))
        .digest
        .expect("primary pre-prepared");
    assert!(deliver(&mut c, R2, R0, Message::Prepare(vote(R2, 1, d))).is_empty());
    let got = deliver(&mut c, R2, R0, Message::Prepare(vote(R2, 1, d)));
    assert_eq!(
        got,
        [Rejection::DuplicateVote {
            phase: Phase::Prepare,
            seq: Seq(1)
        }]
    );
    let s = c.replica(R0).status(Seq(1));
    assert_eq!(s.prepares_received, 1);
    assert_eq!(
        s.phase,
        SlotPhase::PrePrepare,
        "2f = 2 distinct prepares are needed"
    );
}

#[test]
fn a_replica_voting_for_two_digests_keeps_its_first_vote() {
    let mut c = cluster(4);
    let (a, b) = (batch("set x=1").digest(), batch("set x=2").digest());
    assert!(deliver(&mut c, R2, R1, Message::Commit(vote(R2, 1, a))).is_empty());
    let got = deliver(&mut c, R2, R1, Message::Commit(vote(R2, 1, b)));
    assert_eq!(
        got,
        [Rejection::ConflictingVote {
            phase: Phase::Commit,
            seq: Seq(1),
            first: a,
            second: b
        }]
    );
}

#[test]
fn a_vote_under_another_replicas_name_is_ignored() {
    let mut c = cluster(4);
    let d = batch("set x=1").digest();
    let got = deliver(&mut c, R3, R1, Message::Prepare(vote(R2, 1, d)));
    assert_eq!(got, [Rejection::SenderMismatch { claimed: R2 }]);
    assert_eq!(c.replica(R1).status(Seq(1)).prepares_received, 0);
}

#[test]
fn a_prepare_from_the_primary_is_ignored() {
    let mut c = cluster(4);
    let d = batch("set x=1").digest();
    let got = deliver(&mut c, R0, R1, Message::Prepare(vote(R0, 1, d)));
    assert_eq!(got, [Rejection::PrepareFromPrimary]);
}

#[test]
fn a_message_claiming_to_be_from_the_receiver_is_ignored() {
    let mut c = cluster(4);
    let d = batch("set x=1").digest();
    let got = deliver(&mut c, R1, R1, Message::Commit(vote(R1, 1, d)));
    assert_eq!(got, [Rejection::FromSelf]);
}

#[test]
fn sequence_number_zero_is_ignored() {
    let mut c = cluster(4);
    let got = deliver(&mut c, R0, R1, pre_prepare(0, "set x=1"));
    assert_eq!(got, [Rejection::ZeroSeq]);
    let d = batch("set x=1").digest();
    let got = deliver(&mut c, R2, R1, Message::Commit(vote(R2, 0, d)));
    assert_eq!(got, [Rejection::ZeroSeq]);
}

#[test]
fn forwarded_requests_must_be_valid_and_reach_the_primary() {
    let mut c = cluster(4);
    // A backup relayed to passes the request on to the primary.
    let got = deliver(&mut c, R2, R1, Message::Forward(req("c1", 1, "set x=1")));
    assert_eq!(got, []);
    c.stabilize();
    assert_eq!(c.replica(R1).service().get("x"), Some("1"));
    let got = deliver(&mut c, R2, R0, Message::Forward(req("c2", 1, "drop table")));
    assert!(matches!(got[..], [Rejection::InvalidOperation(_)]));
    assert_eq!(c.replica(R0).status(Seq(2)).phase, SlotPhase::None);
}

#[test]
fn forged_votes_cannot_complete_a_certificate() {
    // Replica 3 is Byzantine: it sends prepares and commits in the names of
    // replicas 1 and 2 to replica 0. None of them count.
    let mut c = cluster(4);
    c.submit(R0, req("c1", 1, "set x=1"));
    c.set_filter(|_| false);
    c.stabilize();
    c.clear_filter();
    let d = c.replica(R0).status(Seq(1)).digest.expect("pre-prepared");
    for name in [R1, R2] {
        deliver(&mut c, R3, R0, Message::Prepare(vote(name, 1, d)));
        deliver(&mut c, R3, R0, Message::Commit(vote(name, 1, d)));
    }
    let s = c.replica(R0).status(Seq(1));
    assert_eq!((s.prepares_received, s.commits_received), (0, 0));
    assert_eq!(s.phase, SlotPhase::PrePrepare);
}
