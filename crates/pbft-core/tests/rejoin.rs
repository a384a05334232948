//! After a fault heals, every honest replica serves its clients again,
//! without waiting for another view change: an old primary that missed a
//! view change learns the new view from any replica, a backup changing
//! views alone follows what the others commit, and a request one backup
//! hears of reaches every backup's timer when the primary sits on it.

mod common;

use common::*;
use pbft_core::{
    Cluster, Event, KvService, Message, Output, Rejection, ReplicaId, Request, Seq, View,
    DEFAULT_VIEW_CHANGE_TIMEOUT,
};

const TIMEOUT: u64 = DEFAULT_VIEW_CHANGE_TIMEOUT;

fn tick(c: &mut Cluster<KvService>, n: u64) {
    for _ in 0..n {
        c.tick_all();
        c.stabilize();
    }
}

/// Ticks until replica `at` executes `request`, at most `limit` ticks, and
/// returns how many it took.
fn ticks_until_executed(
    c: &mut Cluster<KvService>,
    at: ReplicaId,
    request: &Request,
    limit: u64,
) -> Option<u64> {
    let executed = |events: &[Event]| {
        events.iter().any(|e| {
            e.replica == at
                && matches!(&e.output, Output::Executed(x) if x.batch.requests().contains(request))
        })
    };
    c.stabilize();
    if executed(&c.take_events()) {
        return Some(0);
    }
    for t in 1..=limit {
        c.tick_all();
        c.stabilize();
        if executed(&c.take_events()) {
            return Some(t);
        }
    }
    None
}

/// R0, the primary of view 0, is cut off; the others move to view 1 and
/// execute there. Returns the cluster with the network healed.
fn old_primary_left_behind() -> Cluster<KvService> {
    let mut c = cluster(4);
    c.set_filter(|e| e.from != R0 && e.to != R0);
    for r in [R1, R2, R3] {
        c.submit(r, req("c1", 1, "set x=1"));
    }
    c.stabilize();
    tick(&mut c, TIMEOUT + 2);
    for r in [R1, R2, R3] {
        assert_eq!(c.replica(r).view(), View(1), "{r} moved to view 1");
        assert!(c.replica(r).view_active());
        assert_eq!(c.replica(r).last_executed(), Seq(1));
    }
    assert_eq!(c.replica(R0).view(), View(0));
    assert!(c.replica(R0).is_primary(), "R0 still believes it leads");
    c.clear_filter();
    c.take_events();
    c
}

#[test]
fn an_old_primary_that_missed_a_view_change_serves_its_client_again() {
    let mut c = old_primary_left_behind();
    // A client of R0 sends it one request, once. R0 orders it in view 0;
    // the others, in view 1, answer its pre-prepare with the new view.
    let request = req("c2", 1, "set y=2");
    c.submit(R0, request.clone());
    let took = ticks_until_executed(&mut c, R0, &request, 2 * TIMEOUT);
    assert!(took.is_some(), "R0 answers its client within two timeouts");
    assert_eq!(c.replica(R0).view(), View(1));
    assert!(c.replica(R0).view_active());
    for r in [R1, R2, R3] {
        assert_eq!(c.replica(r).view(), View(1), "{r}: no new view change");
        assert_eq!(c.replica(r).service().get("y"), Some("2"));
    }
}

#[test]
fn a_new_view_relayed_by_a_backup_installs() {
    let mut c = old_primary_left_behind();
    // Only R2 may speak to R0: the primary of view 1 cannot reach it.
    c.set_filter(|e| e.to != R0 || e.from == R2);
    let request = req("c2", 1, "set y=2");
    c.submit(R0, request);
    c.stabilize();
    assert_eq!(
        c.replica(R0).view(),
        View(1),
        "R2's copy of the new view installs"
    );
    assert!(c.replica(R0).view_active());
}

/// R3 is cut off alone, its client's request times out there, and it
/// starts a view change nobody joins. Returns the cluster healed, with R3
/// changing views alone and the others still working in view 0.
fn backup_changing_views_alone() -> Cluster<KvService> {
    let mut c = cluster(4);
    c.submit(R0, req("c0", 1, "set a=0"));
    c.stabilize();
    c.set_filter(|e| e.from != R3 && e.to != R3);
    c.submit(R3, req("c3", 1, "set b=3"));
    c.stabilize();
    tick(&mut c, TIMEOUT + 2);
    assert_eq!(c.replica(R3).view(), View(1));
    assert!(!c.replica(R3).view_active(), "R3 changes views alone");
    c.clear_filter();
    c.stabilize();
    for r in [R0, R1, R2] {
        assert_eq!(
            c.replica(r).view(),
            View(0),
            "{r}: one view change moves nobody"
        );
    }
    assert!(!c.replica(R3).view_active(), "R3 still changes views alone");
    c.take_events();
    c
}

#[test]
fn a_backup_changing_views_alone_serves_its_client() {
    let mut c = backup_changing_views_alone();
    let request = req("c4", 1, "set d=4");
    c.submit(R3, request.clone());
    let took = ticks_until_executed(&mut c, R3, &request, 2 * TIMEOUT);
    assert!(took.is_some(), "R3 answers its client within two timeouts");
    assert_eq!(c.replica(R3).service().get("d"), Some("4"));
    for r in [R0, R1, R2] {
        assert_eq!(c.replica(r).view(), View(0), "{r}: still no view change");
        assert_eq!(c.replica(r).service().get("d"), Some("4"));
    }
    // R3 learned what view 0 committed without voting in it.
    assert!(!c.replica(R3).view_active());
    assert_eq!(c.replica(R3).last_executed(), c.replica(R0).last_executed());
}

#[test]
fn a_backup_changing_views_sends_no_vote_of_the_view_it_left() {
    let mut c = backup_changing_views_alone();
    c.submit(R3, req("c4", 1, "set d=4"));
    c.stabilize();
    let votes = c
        .take_events()
        .into_iter()
        .filter(|e| e.replica == R3)
        .filter(|e| {
            matches!(&e.output, Output::Send { signed, .. }
                if matches!(signed.message, Message::Prepare(_) | Message::Commit(_)))
        })
        .count();
    assert_eq!(votes, 0, "R3 promised to leave view 0");
    assert_eq!(c.replica(R3).service().get("d"), Some("4"));
}

/// View 0's pre-prepare of a batch at number 2 that R3, changing views
/// alone, has not seen.
fn unseen_pre_prepare() -> pbft_core::PrePrepare {
    let batch = pbft_core::Batch::single(req("c9", 1, "set z=9"));
    pbft_core::PrePrepare::new(View(0), Seq(2), std::sync::Arc::new(batch))
}

/// View 0's commits for `pp` from every replica but R3, delivered to R3.
fn commit_to_r3(c: &mut Cluster<KvService>, pp: &pbft_core::PrePrepare) {
    for r in [R0, R1, R2] {
        let vote = pbft_core::Vote {
            view: pp.view,
            seq: pp.seq,
            digest: pp.digest,
            replica: r,
        };
        c.inject(r, R3, Message::Commit(vote));
    }
}

#[test]
fn commits_alone_do_not_make_a_following_replica_execute() {
    let mut c = backup_changing_views_alone();
    // Commits for a batch whose pre-prepare never reached R3: without the
    // batch there is nothing to execute, and with a forged pre-prepare
    // from a replica that is not view 0's primary, nothing either.
    let pp = unseen_pre_prepare();
    let executed = c.replica(R3).last_executed();
    c.inject(R1, R3, Message::PrePrepare(pp.clone()));
    c.stabilize();
    let got = rejections(&c.take_events(), R3);
    assert!(
        got.iter()
            .any(|(_, r)| matches!(r, Rejection::NotPrimary { .. })),
        "{got:?}"
    );
    commit_to_r3(&mut c, &pp);
    c.stabilize();
    assert_eq!(c.replica(R3).last_executed(), executed);
    assert_eq!(c.replica(R3).service().get("z"), None);
}

#[test]
fn a_request_sent_once_to_one_backup_is_ordered_when_the_primary_sits_on_it() {
    let mut c = cluster(4);
    // The primary hears everything but orders nothing it is forwarded:
    // it drops every pre-prepare it would send.
    c.set_filter(|e| !(e.from == R0 && matches!(e.signed.message, Message::PrePrepare(_))));
    let request = req("c1", 1, "set x=1");
    c.submit(R1, request.clone());
    let took = ticks_until_executed(&mut c, R1, &request, 3 * TIMEOUT);
    assert!(took.is_some(), "the backups change views and order it");
    for r in [R1, R2, R3] {
        assert_eq!(c.replica(r).view(), View(1));
        assert_eq!(c.replica(r).service().get("x"), Some("1"));
    }
}

#[test]
fn a_following_replica_learns_a_pre_prepare_only_with_its_batch() {
    let mut c = backup_changing_views_alone();
    // View 0's primary names a batch by digest alone: a certificate formed
    // from it could never execute, so it is refused, as in the normal case.
    let pp = unseen_pre_prepare();
    let executed = c.replica(R3).last_executed();
    c.inject(R0, R3, Message::PrePrepare(pp.without_batch()));
    c.stabilize();
    let got = rejections(&c.take_events(), R3);
    assert!(
        got.iter()
            .any(|(_, r)| matches!(r, Rejection::MissingBatch { seq } if *seq == Seq(2))),
        "{got:?}"
    );
    commit_to_r3(&mut c, &pp);
    c.stabilize();
    assert_eq!(c.replica(R3).last_executed(), executed);
    // The same pre-prepare with its batch completes the certificate.
    c.inject(R0, R3, Message::PrePrepare(pp));
    c.stabilize();
    assert_eq!(c.replica(R3).service().get("z"), Some("9"));
}

#[test]
fn a_request_relayed_before_a_view_change_is_relayed_again_after_it() {
    // R3's client's request went to every replica while R3 was cut off,
    // and was lost; the others never heard of it. Once R3 changes views,
    // it sends the request to every replica again, and the primary the
    // others follow orders it.
    let mut c = backup_changing_views_alone();
    let request = req("c3", 1, "set b=3");
    let took = ticks_until_executed(&mut c, R3, &request, 2 * TIMEOUT);
    assert!(took.is_some(), "R3 answers its client within two timeouts");
    for r in [R0, R1, R2, R3] {
        assert_eq!(c.replica(r).service().get("b"), Some("3"), "{r}");
    }
}

#[test]
fn a_new_view_relayed_without_its_batches_still_gets_them() {
    // R0, primary of view 0, is cut off; the others order A in view 1,
    // then move to view 2, whose new view names A's batch by digest.
    let mut c = cluster(4);
    c.set_filter(|e| e.from != R0 && e.to != R0);
    let a = req("c1", 1, "set a=1");
    for r in [R1, R2, R3] {
        c.submit(r, a.clone());
    }
    c.stabilize();
    tick(&mut c, TIMEOUT + 2);
    assert_eq!(c.replica(R1).view(), View(1));
    assert_eq!(c.replica(R1).service().get("a"), Some("1"));
    c.set_filter(|e| {
        e.from != R0
            && e.to != R0
            && !(e.from == R1 && matches!(e.signed.message, Message::PrePrepare(_)))
    });
    for r in [R2, R3] {
        c.submit(r, req("c2", 1, "set b=2"));
    }
    c.stabilize();
    tick(&mut c, 3 * TIMEOUT);
    for r in [R1, R2, R3] {
        assert_eq!(c.replica(r).view(), View(2), "{r}");
        assert!(c.replica(r).view_active(), "{r}");
    }
    // Only R3 reaches R0: its relayed new view names A by digest alone,
    // and R0 never held A. R0 votes on the digest, finds execution
    // stalled, and fetches the committed certificate, which carries A.
    c.set_filter(|e| e.to != R0 || e.from == R3);
    c.take_events();
    c.submit(R0, req("c3", 1, "set c=3"));
    let took = ticks_until_executed(&mut c, R0, &a, 4 * TIMEOUT);
    assert!(took.is_some(), "R0 gets A's batch and executes it");
    assert_eq!(c.replica(R0).view(), View(2));
    assert_eq!(c.replica(R0).service().get("a"), Some("1"));
}

/// A cluster of four in which R0, the primary of view 0, has joined a view
/// change to view 1 that R1 and R2 asked for (f + 1 of them), and no new
/// view reaches it; R3 hears nothing.
fn primary_left_changing_views() -> Cluster<KvService> {
    let mut c = cluster(4);
    c.set_filter(|e| e.to != R3 && e.from != R3);
    for r in [R1, R2] {
        c.submit(r, req(&format!("c{}", r.0), 1, "set x=1"));
    }
    c.set_filter(|e| e.to != R3 && e.from != R3 && e.from != R0 && e.to != R0);
    c.stabilize();
    tick(&mut c, TIMEOUT + 2);
    c.set_filter(|e| {
        e.to != R3 && e.from != R3 && !matches!(e.signed.message, Message::NewView(_))
    });
    tick(&mut c, TIMEOUT);
    assert_eq!(c.replica(R0).view(), View(1), "R0 joined the view change");
    assert!(!c.replica(R0).view_active());
    c
}

#[test]
fn a_primary_changing_views_never_forwards_a_retry_to_itself() {
    let mut c = primary_left_changing_views();
    // A client of R0 sends a request, then retries it.
    let request = req("c9", 1, "set y=9");
    c.submit(R0, request.clone());
    c.submit(R0, request);
    let events = c.take_events();
    let to_self = events
        .iter()
        .filter(|e| e.replica == R0)
        .any(|e| matches!(&e.output, Output::Send { to: pbft_core::Destination::Replica(r), .. } if *r == R0));
    assert!(!to_self, "R0 sent a message to itself");
    c.stabilize();
    let got = rejections(&c.take_events(), R0);
    assert!(
        !got.iter().any(|(_, r)| matches!(r, Rejection::FromSelf)),
        "{got:?}"
    );
}

/// The forwarded requests `at` put on the network, by destination; they
/// are taken off it.
fn forwards_sent(c: &mut Cluster<KvService>, at: ReplicaId) -> Vec<ReplicaId> {
    let (forwards, rest): (Vec<_>, Vec<_>) = c
        .take_in_flight()
        .into_iter()
        .partition(|e| e.from == at && matches!(e.signed.message, Message::Forward(_)));
    for envelope in rest {
        c.deliver(envelope);
    }
    forwards.into_iter().map(|e| e.to).collect()
}

#[test]
fn a_retry_at_a_primary_changing_views_is_not_sent_to_every_replica_again() {
    let mut c = primary_left_changing_views();
    // A client of R0 sends a request: every other replica gets it.
    let request = req("c9", 1, "set y=9");
    c.submit(R0, request.clone());
    assert_eq!(forwards_sent(&mut c, R0), [R1, R2, R3]);
    // Its retries (a PBFT client multicasts them, §4.1) would each cost
    // n - 1 more copies of the request; each goes to view 1's primary
    // alone, which holds it for when that view starts.
    for _ in 0..5 {
        c.submit(R0, request.clone());
    }
    assert_eq!(forwards_sent(&mut c, R0), [R1; 5]);
    // Once the network heals, the request executes at R0.
    c.clear_filter();
    assert!(ticks_until_executed(&mut c, R0, &request, 4 * TIMEOUT).is_some());
}

#[test]
fn a_new_primary_answers_its_client_from_restored_state() {
    // R1's client's request is prepared in view 0 but commits nowhere, so
    // view 1's new view orders it again, with R1, the client's replica,
    // as primary. R1 then misses the commits of view 1: the others
    // execute the request and take a checkpoint, and R1 restores that
    // checkpoint instead of executing. Its client must still be answered.
    let config = pbft_core::Config::new(4).with_checkpoint_interval(1);
    let mut c = Cluster::new(&config, pbft_core::ClusterAuth::Seeded(3), |_| {
        KvService::default()
    })
    .expect("valid");
    c.set_filter(|e| match &e.signed.message {
        Message::Commit(vote) => vote.view == View(1) && e.to != R1,
        // Committed certificates alone would let R1 execute the number.
        Message::State(state) => e.to != R1 || !state.service.is_empty(),
        _ => true,
    });
    let request = req("c1", 1, "set x=1");
    c.submit(R1, request.clone());
    c.stabilize();
    let mut answered = false;
    for _ in 0..6 * TIMEOUT {
        c.tick_all();
        c.stabilize();
        let events = c.take_events();
        answered |= events.iter().any(|e| {
            e.replica == R1
                && matches!(&e.output, Output::Answered { request: r, .. } if *r == request)
        });
        if answered {
            break;
        }
    }
    assert_eq!(c.replica(R1).view(), View(1), "R1 is the primary of view 1");
    assert!(
        c.replica(R0).last_executed() >= Seq(1),
        "the others executed it"
    );
    assert!(answered, "R1 answered its client");
}
