//! Messages turned away before their signature is checked: votes beyond a
//! quorum and repeats. Each test hands over a vote with a broken or missing
//! signature, so a check of it would say `Unauthentic`.

mod common;

use common::*;
use pbft_core::{
    AuthFailure, Cluster, Digest, Event, KvService, Message, Output, Phase, Rejection, ReplicaId,
    Seq, Signed, SlotPhase, View, Vote,
};

fn prepare(replica: ReplicaId, digest: Digest) -> Message {
    Message::Prepare(Vote {
        view: View(0),
        seq: Seq(1),
        digest,
        replica,
    })
}

/// Every rejection replica `at` recorded, the unneeded ones included.
fn all_rejections(events: &[Event], at: ReplicaId) -> Vec<Rejection> {
    events
        .iter()
        .filter(|e| e.replica == at)
        .filter_map(|e| match &e.output {
            Output::Rejected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// Delivers `signed` from `from` to `to` alone and returns what `to`
/// rejected, the unneeded votes included.
fn deliver(
    c: &mut Cluster<KvService>,
    from: ReplicaId,
    to: ReplicaId,
    signed: Signed,
) -> Vec<Rejection> {
    all_rejections(&deliver_alone(c, from, to, signed), to)
}

/// A signed cluster whose primary pre-prepared one request and heard
/// nothing back.
fn isolated_primary(c: &mut Cluster<KvService>) -> Digest {
    c.submit(R0, req("c1", 1, "set x=1"));
    c.set_filter(|_| false);
    c.stabilize();
    c.clear_filter();
    c.take_events();
    c.replica(R0).status(Seq(1)).digest.expect("pre-prepared")
}

fn unsigned(message: Message) -> Signed {
    Signed {
        message,
        signature: None,
    }
}

#[test]
fn a_prepare_beyond_the_quorum_is_dropped_unverified_and_still_shown() {
    let mut c = cluster(4);
    let d = isolated_primary(&mut c);
    for backup in [R1, R2] {
        let genuine = c.replica(backup).sign(prepare(backup, d));
        assert_eq!(deliver(&mut c, backup, R0, genuine), []);
    }
    assert_eq!(c.replica(R0).status(Seq(1)).phase, SlotPhase::Prepared);

    let late = unsigned(prepare(R3, d));
    assert_eq!(
        deliver(&mut c, R3, R0, late),
        [Rejection::Unneeded {
            phase: Phase::Prepare,
            seq: Seq(1)
        }]
    );
    // The status shows it was heard; the certificate holds only the two
    // verified prepares.
    assert_eq!(c.replica(R0).status(Seq(1)).prepares_received, 3);
    let cert = c
        .replica(R0)
        .prepared_certificate(Seq(1))
        .expect("prepared");
    assert_eq!(cert.prepares.len(), 2);
    let checker = c.replica(R1);
    assert_eq!(
        cert.check(checker.quorums(), checker.authenticator()),
        Ok(())
    );
}

#[test]
fn a_needed_prepare_is_still_verified() {
    let mut c = cluster(4);
    let d = isolated_primary(&mut c);
    let genuine = c.replica(R1).sign(prepare(R1, d));
    assert_eq!(deliver(&mut c, R1, R0, genuine), []);
    // One more is needed, so this one is checked, and refused.
    let got = deliver(&mut c, R2, R0, unsigned(prepare(R2, d)));
    assert_eq!(got, [Rejection::Unauthentic(AuthFailure::Missing)]);
    let s = c.replica(R0).status(Seq(1));
    assert_eq!((s.phase, s.prepares_received), (SlotPhase::PrePrepare, 1));
}

#[test]
fn a_repeat_of_a_held_vote_is_dropped_unverified() {
    let mut c = cluster(4);
    let d = isolated_primary(&mut c);
    let genuine = c.replica(R1).sign(prepare(R1, d));
    let mut broken = genuine.clone();
    if let Some(signature) = &mut broken.signature {
        signature.0[0] ^= 0x80;
    }
    assert_eq!(deliver(&mut c, R1, R0, genuine), []);
    assert_eq!(
        deliver(&mut c, R1, R0, broken),
        [Rejection::DuplicateVote {
            phase: Phase::Prepare,
            seq: Seq(1)
        }]
    );
}

#[test]
fn a_commit_after_committing_is_dropped_unverified() {
    let mut c = cluster(4);
    let d = isolated_primary(&mut c);
    let commit = |replica| {
        Message::Commit(Vote {
            view: View(0),
            seq: Seq(1),
            digest: d,
            replica,
        })
    };
    for backup in [R1, R2] {
        let genuine = c.replica(backup).sign(prepare(backup, d));
        assert_eq!(deliver(&mut c, backup, R0, genuine), []);
    }
    for backup in [R1, R2] {
        let genuine = c.replica(backup).sign(commit(backup));
        assert_eq!(deliver(&mut c, backup, R0, genuine), []);
    }
    assert_eq!(c.replica(R0).status(Seq(1)).phase, SlotPhase::Committed);
    assert_eq!(
        deliver(&mut c, R3, R0, unsigned(commit(R3))),
        [Rejection::Unneeded {
            phase: Phase::Commit,
            seq: Seq(1)
        }]
    );
    assert_eq!(c.replica(R0).status(Seq(1)).commits_received, 4);
}
