//! Signed messages: a replica cannot speak for another, an altered message
//! counts for nothing, and certificates are checked member by member.

mod common;

use std::sync::Arc;

use common::*;
use pbft_core::{
    AuthFailure, Batch, CertificateError, Cluster, Digest, KvService, Message, PrePrepare,
    PreparedCertificate, Rejection, ReplicaId, Seq, Signed, SlotPhase, View, Vote,
};

fn prepare(replica: ReplicaId, digest: Digest) -> Message {
    Message::Prepare(Vote {
        view: View(0),
        seq: Seq(1),
        digest,
        replica,
    })
}

/// A signed 4-replica cluster whose primary has pre-prepared one request
/// and heard nothing back.
fn isolated_primary(c: &mut Cluster<KvService>) -> Digest {
    c.submit(R0, req("c1", 1, "set x=1"));
    c.set_filter(|_| false);
    c.stabilize();
    c.clear_filter();
    c.take_events();
    c.replica(R0).status(Seq(1)).digest.expect("pre-prepared")
}

fn deliver_one(
    c: &mut Cluster<KvService>,
    from: ReplicaId,
    to: ReplicaId,
    s: Signed,
) -> Vec<Rejection> {
    deliver_only(c, from, to, s)
}

#[test]
fn a_replica_forging_anothers_vote_is_ignored() {
    let mut c = cluster(4);
    let d = isolated_primary(&mut c);
    // Byzantine R3 writes a prepare in R1's name and signs it with its own
    // key; the transport says it came from R1.
    let forged = c.replica(R3).sign(prepare(R1, d));
    let got = deliver_one(&mut c, R1, R0, forged);
    assert_eq!(got, [Rejection::Unauthentic(AuthFailure::Invalid)]);
    assert_eq!(c.replica(R0).status(Seq(1)).prepares_received, 0);
}

#[test]
fn forged_votes_never_complete_a_certificate() {
    let mut c = cluster(4);
    let d = isolated_primary(&mut c);
    // R3's own prepare is genuine; the one it forges for R1 is not.
    let genuine = c.replica(R3).sign(prepare(R3, d));
    assert!(deliver_one(&mut c, R3, R0, genuine).is_empty());
    let forged = c.replica(R3).sign(prepare(R1, d));
    deliver_one(&mut c, R1, R0, forged);
    let s = c.replica(R0).status(Seq(1));
    assert_eq!((s.phase, s.prepares_received), (SlotPhase::PrePrepare, 1));
}

#[test]
fn a_tampered_message_is_ignored() {
    let mut c = cluster(4);
    let d = isolated_primary(&mut c);
    let mut tampered = c.replica(R1).sign(prepare(R1, d));
    // Change the sequence number after signing.
    if let Message::Prepare(vote) = &mut tampered.message {
        vote.seq = Seq(2);
    }
    let got = deliver_one(&mut c, R1, R0, tampered);
    assert_eq!(got, [Rejection::Unauthentic(AuthFailure::Invalid)]);

    let mut flipped = c.replica(R1).sign(prepare(R1, d));
    if let Some(signature) = &mut flipped.signature {
        signature.0[0] ^= 0x80;
    }
    let got = deliver_one(&mut c, R1, R0, flipped);
    assert_eq!(got, [Rejection::Unauthentic(AuthFailure::Invalid)]);
    assert_eq!(c.replica(R0).status(Seq(1)).prepares_received, 0);
}

#[test]
fn a_pre_prepare_with_a_swapped_batch_is_ignored() {
    let mut c = cluster(4);
    let batch = Arc::new(Batch::single(req("c1", 1, "set x=1")));
    let mut pp = c
        .replica(R0)
        .sign(Message::PrePrepare(PrePrepare::new(View(0), Seq(1), batch)));
    // Swap in another batch and its digest: the primary never signed it.
    let other = Arc::new(Batch::single(req("c1", 1, "set x=2")));
    pp.message = Message::PrePrepare(PrePrepare::new(View(0), Seq(1), other));
    let got = deliver_one(&mut c, R0, R1, pp);
    assert_eq!(got, [Rejection::Unauthentic(AuthFailure::Invalid)]);
    assert_eq!(c.replica(R1).status(Seq(1)).phase, SlotPhase::None);
}

#[test]
fn an_unsigned_message_is_ignored() {
    let mut c = cluster(4);
    let d = isolated_primary(&mut c);
    let unsigned = Signed {
        message: prepare(R1, d),
        signature: None,
    };
    let got = deliver_one(&mut c, R1, R0, unsigned);
    assert_eq!(got, [Rejection::Unauthentic(AuthFailure::Missing)]);
}

#[test]
fn without_authentication_a_forgery_is_accepted() {
    // Why the unauthenticated mode is only for a trusted transport: the
    // same forgery as above now counts.
    let mut c = Cluster::kv(4).expect("valid");
    let d = isolated_primary(&mut c);
    let forged = Signed {
        message: prepare(R1, d),
        signature: None,
    };
    assert!(deliver_one(&mut c, R1, R0, forged).is_empty());
    assert_eq!(c.replica(R0).status(Seq(1)).prepares_received, 1);
}

/// A prepared certificate from replica R1 of a cluster that ran one
/// request to completion.
fn certificate(c: &mut Cluster<KvService>) -> PreparedCertificate {
    c.submit(R0, req("c1", 1, "set x=1"));
    c.stabilize();
    c.replica(R1)
        .prepared_certificate(Seq(1))
        .expect("R1 prepared number 1")
}

fn check(c: &Cluster<KvService>, cert: &PreparedCertificate) -> Result<(), CertificateError> {
    // Checked by another replica than the one that assembled it.
    let checker = c.replica(R2);
    cert.check(checker.quorums(), checker.authenticator())
}

#[test]
fn an_honest_prepared_certificate_checks() {
    let mut c = cluster(4);
    let cert = certificate(&mut c);
    // Its own prepare and one other backup's: the prepares beyond 2f
    // arrive once R1 is prepared and are dropped unverified.
    assert_eq!(cert.prepares.len(), 2, "R1 holds 2f prepares");
    assert_eq!(check(&c, &cert), Ok(()));
    assert!(c.replica(R1).prepared_certificate(Seq(2)).is_none());
}

#[test]
fn a_certificate_with_a_forged_member_is_rejected() {
    let mut c = cluster(4);
    let mut cert = certificate(&mut c);
    // Replace the other backup's prepare with one a third backup signed
    // in its name.
    let d = cert.pre_prepare().expect("pre-prepare").digest;
    let (at, other) = cert
        .prepares
        .iter()
        .enumerate()
        .find_map(|(at, p)| match &p.message {
            Message::Prepare(v) if v.replica != R1 => Some((at, v.replica)),
            _ => None,
        })
        .expect("another backup's prepare");
    let forger = if other == R3 { R2 } else { R3 };
    cert.prepares[at] = c.replica(forger).sign(prepare(other, d));
    assert_eq!(
        check(&c, &cert),
        Err(CertificateError::BadSignature {
            signer: other,
            failure: AuthFailure::Invalid
        })
    );
}

#[test]
fn a_certificate_padded_with_a_duplicate_is_rejected() {
    let mut c = cluster(4);
    let mut cert = certificate(&mut c);
    // Two genuine prepares plus a copy of one: three members, two voters.
    cert.prepares.truncate(2);
    cert.prepares.push(cert.prepares[0].clone());
    let voter = match &cert.prepares[0].message {
        Message::Prepare(v) => v.replica,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        check(&c, &cert),
        Err(CertificateError::Duplicate { replica: voter })
    );
}

#[test]
fn a_certificate_short_of_2f_prepares_is_rejected() {
    let mut c = cluster(4);
    let mut cert = certificate(&mut c);
    cert.prepares.truncate(1);
    assert_eq!(
        check(&c, &cert),
        Err(CertificateError::TooFew { have: 1, need: 2 })
    );
}

#[test]
fn a_certificate_with_a_forged_or_altered_pre_prepare_is_rejected() {
    let mut c = cluster(4);
    let cert = certificate(&mut c);
    let pp = cert.pre_prepare().expect("pre-prepare").clone();

    // Signed by a backup instead of the primary.
    let mut by_backup = cert.clone();
    by_backup.pre_prepare = c.replica(R1).sign(Message::PrePrepare(pp.clone()));
    assert_eq!(
        check(&c, &by_backup),
        Err(CertificateError::BadSignature {
            signer: R0,
            failure: AuthFailure::Invalid
        })
    );

    // The batch swapped without fixing the digest.
    let mut swapped = cert.clone();
    swapped.pre_prepare.message = Message::PrePrepare(PrePrepare {
        batch: Some(Arc::new(Batch::single(req("c1", 1, "set x=2")))),
        ..pp
    });
    assert_eq!(check(&c, &swapped), Err(CertificateError::DigestMismatch));
}

#[test]
fn certificate_members_must_match_and_come_from_backups() {
    let mut c = cluster(4);
    let cert = certificate(&mut c);
    let d = cert.pre_prepare().expect("pre-prepare").digest;

    let mut other_digest = cert.clone();
    other_digest.prepares[0] = c.replica(R1).sign(prepare(R1, Digest([9; 32])));
    assert_eq!(
        check(&c, &other_digest),
        Err(CertificateError::Mismatch { index: 0 })
    );

    let mut from_primary = cert.clone();
    from_primary.prepares[0] = c.replica(R0).sign(prepare(R0, d));
    assert_eq!(check(&c, &from_primary), Err(CertificateError::FromPrimary));

    let mut outsider = cert.clone();
    outsider.prepares[0] = Signed {
        message: prepare(ReplicaId(7), d),
        signature: None,
    };
    assert_eq!(
        check(&c, &outsider),
        Err(CertificateError::NonMember {
            replica: ReplicaId(7)
        })
    );

    let mut commit = cert;
    commit.prepares[0] = c.replica(R1).sign(Message::Commit(Vote {
        view: View(0),
        seq: Seq(1),
        digest: d,
        replica: R1,
    }));
    assert_eq!(
        check(&c, &commit),
        Err(CertificateError::WrongKind { index: 0 })
    );
}
