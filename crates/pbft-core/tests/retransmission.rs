//! Retransmission through status reports (Castro's thesis §5.2): a
//! replica that lost a message executes again within a few ticks, far
//! sooner than half a view-change timeout, on a lossy network without a
//! view change; and a peer that floods status reports gets bounded
//! answers.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::*;
use pbft_core::{
    Cluster, ClusterAuth, Config, FetchState, KvService, Message, NetworkFaults, Rejection, Seq,
    SlotPhase, StatusReport, View, ANSWERS_PER_TICK, MAX_ANSWER, MAX_CERTIFICATES, REPORT_AFTER,
};

/// A view-change timeout long enough that half of it (when a stalled
/// replica used to fetch what it lacked) is far from a few ticks.
const TIMEOUT: u64 = 100;

fn cluster_with_timeout() -> Cluster<KvService> {
    // No checkpoint within the tests' numbers: answers come from the log.
    let config = Config {
        view_change_timeout: TIMEOUT,
        ..Config::new(4).with_checkpoint_interval(256)
    };
    Cluster::new(&config, ClusterAuth::Seeded(5), |_| KvService::default()).expect("valid")
}

/// Ticks every replica (delivering everything after each tick) until
/// every replica has executed `seq`; returns how many ticks it took.
fn ticks_until_all_executed(c: &mut Cluster<KvService>, seq: Seq) -> u64 {
    let mut ticks = 0;
    while c.replicas().iter().any(|r| r.last_executed() < seq) {
        assert!(ticks < 4 * TIMEOUT, "{seq} never executed everywhere");
        c.tick_all();
        c.stabilize();
        ticks += 1;
    }
    ticks
}

#[test]
fn a_replica_that_lost_a_pre_prepare_executes_within_a_few_ticks() {
    let mut c = cluster_with_timeout();
    // The network loses the one pre-prepare to R3.
    let lost = Rc::new(Cell::new(false));
    let once = lost.clone();
    c.set_filter(move |e| {
        let drop = e.to == R3 && matches!(e.signed.message, Message::PrePrepare(_)) && !once.get();
        once.set(once.get() || drop);
        !drop
    });
    c.submit(R0, req("c1", 1, "set x=1"));
    c.stabilize();
    assert!(lost.get());
    assert_eq!(c.replica(R1).last_executed(), Seq(1), "the others go on");
    assert_eq!(c.replica(R3).last_executed(), Seq(0));
    let ticks = ticks_until_all_executed(&mut c, Seq(1));
    assert!(
        ticks <= REPORT_AFTER + 1,
        "R3 executed after {ticks} ticks; half a timeout is {}",
        TIMEOUT / 2
    );
    assert_eq!(c.replica(R3).service(), c.replica(R0).service());
}

#[test]
fn a_replica_that_lost_a_pre_prepare_asks_at_once_when_a_later_number_commits() {
    let mut c = cluster_with_timeout();
    let lost = Rc::new(Cell::new(false));
    let once = lost.clone();
    c.set_filter(move |e| {
        let drop = e.to == R3 && matches!(e.signed.message, Message::PrePrepare(_)) && !once.get();
        once.set(once.get() || drop);
        !drop
    });
    c.submit(R0, req("c1", 1, "set x=1"));
    c.stabilize();
    assert!(lost.get());
    assert_eq!(c.replica(R3).last_executed(), Seq(0));
    // The next number commits at R3 too, which shows it lost something
    // for number 1: it reports there and then, and no tick is needed.
    c.submit(R0, req("c1", 2, "set x=2"));
    c.stabilize();
    assert_eq!(c.replica(R3).last_executed(), Seq(2));
    assert_eq!(c.replica(R3).service(), c.replica(R0).service());
}

#[test]
fn a_replica_that_lost_its_commits_executes_within_a_few_ticks() {
    let mut c = cluster_with_timeout();
    c.set_filter(|e| !(e.to == R2 && matches!(e.signed.message, Message::Commit(_))));
    c.submit(R0, req("c1", 1, "set x=1"));
    c.stabilize();
    c.clear_filter();
    assert_eq!(c.replica(R2).status(Seq(1)).phase, SlotPhase::Prepared);
    let ticks = ticks_until_all_executed(&mut c, Seq(1));
    assert!(ticks <= REPORT_AFTER + 1, "after {ticks} ticks");
}

#[test]
fn under_loss_every_request_executes_everywhere_within_a_few_ticks_and_views_hold() {
    let mut c = cluster_with_timeout();
    c.set_faults(Some(NetworkFaults {
        drop_per_mille: 50,
        duplicate_per_mille: 0,
        reorder: false,
        seed: 3,
    }));
    let mut slowest = 0;
    let mut stalls = 0;
    for t in 1..=150u64 {
        // Clients at every replica: a backup forwards to the primary, and
        // a lost forward is sent again.
        let at = pbft_core::ReplicaId((t % 4) as u32);
        c.submit(at, req(&format!("c{}", t % 4), t, &format!("set k={t}")));
        c.stabilize();
        let ticks = ticks_until_all_executed(&mut c, Seq(t));
        slowest = slowest.max(ticks);
        stalls += u64::from(ticks > 0);
    }
    assert!(stalls > 10, "the network lost messages that mattered");
    // A report goes out after REPORT_AFTER ticks, and again after twice
    // as long when the report or its answer is lost too.
    assert!(
        slowest <= 3 * REPORT_AFTER + 2,
        "a request took {slowest} ticks; half a timeout is {}",
        TIMEOUT / 2
    );
    for r in c.replicas() {
        assert_eq!(
            r.view(),
            View(0),
            "{}: no view change for loss alone",
            r.id()
        );
    }
}

/// A status report from R3 that lacks everything from `seq` on.
fn lacking_everything(seq: u64) -> Message {
    Message::FetchState(FetchState {
        chunks: None,
        seq: Seq(seq),
        replica: R3,
        report: Some(StatusReport {
            view: View(0),
            through: Seq(seq - 1),
            pending: vec![],
        }),
    })
}

#[test]
fn a_peer_flooding_status_reports_gets_a_few_bounded_answers_per_tick() {
    let mut c = cluster_with_timeout();
    let executed = MAX_CERTIFICATES + 10;
    for t in 1..=executed {
        c.submit(R0, req("c1", t, &format!("set k={t}")));
        c.stabilize();
    }
    assert_eq!(c.replica(R0).last_executed(), Seq(executed));
    let answers = |c: &mut Cluster<KvService>, reports: usize| {
        c.take_events();
        for _ in 0..reports {
            c.inject(R3, R0, lacking_everything(1));
        }
        for envelope in c.take_in_flight() {
            c.deliver(envelope);
        }
        let sent: Vec<Message> = c
            .take_in_flight()
            .into_iter()
            .filter(|e| e.from == R0 && e.to == R3)
            .map(|e| e.signed.message)
            .collect();
        let refused = rejections(&c.take_events(), R0)
            .into_iter()
            .filter(|(from, r)| *from == R3 && *r == Rejection::TooFrequent)
            .count();
        (sent, refused)
    };
    let budget = ANSWERS_PER_TICK as usize;
    let (sent, refused) = answers(&mut c, 100);
    assert_eq!(
        refused,
        100 - budget,
        "a few reports answered, the rest refused"
    );
    assert_eq!(sent.len(), budget, "{sent:?}");
    for answer in &sent {
        let Message::State(state) = answer else {
            panic!("answered with {sent:?}");
        };
        assert_eq!(
            state.committed.len() as u64,
            MAX_CERTIFICATES,
            "at most a bounded answer"
        );
        assert!(state.service.is_empty() && state.clients.is_empty());
    }
    // Within the tick nothing more; after it, the budget again.
    assert_eq!(answers(&mut c, 5), (vec![], 5));
    c.tick(R0);
    let (sent, refused) = answers(&mut c, budget + 1);
    assert_eq!((sent.len(), refused), (budget, 1));
}

#[test]
fn a_status_report_listing_too_many_numbers_is_refused() {
    let mut c = cluster_with_timeout();
    c.submit(R0, req("c1", 1, "set x=1"));
    c.stabilize();
    let too_many = Message::FetchState(FetchState {
        chunks: None,
        seq: Seq(1),
        replica: R3,
        report: Some(StatusReport {
            view: View(0),
            through: Seq(MAX_ANSWER + 1),
            pending: (1..=MAX_ANSWER + 1)
                .map(|n| (Seq(n), SlotPhase::None))
                .collect(),
        }),
    });
    let unsorted = Message::FetchState(FetchState {
        chunks: None,
        seq: Seq(1),
        replica: R3,
        report: Some(StatusReport {
            view: View(0),
            through: Seq(3),
            pending: vec![(Seq(2), SlotPhase::None), (Seq(1), SlotPhase::None)],
        }),
    });
    for message in [too_many, unsorted] {
        let signed = c.replica(R3).sign(message);
        assert_eq!(
            deliver_only(&mut c, R3, R0, signed),
            vec![Rejection::InvalidReport]
        );
    }
}

#[test]
fn a_lost_forward_is_sent_again_while_other_requests_execute() {
    let mut c = cluster_with_timeout();
    // The network loses R1's one forward to the primary.
    let lost = Rc::new(Cell::new(false));
    let once = lost.clone();
    c.set_filter(move |e| {
        let drop = e.from == R1 && matches!(e.signed.message, Message::Forward(_)) && !once.get();
        once.set(once.get() || drop);
        !drop
    });
    c.submit(R1, req("c1", 1, "set x=1"));
    c.stabilize();
    assert!(lost.get());
    // Other clients keep the primary busy, so R1's execution never stalls.
    let mut ticks = 0;
    while c.replica(R1).service().get("x").is_none() {
        assert!(
            ticks < TIMEOUT,
            "the request waited for the view-change timer"
        );
        ticks += 1;
        c.submit(R0, req("c2", ticks, &format!("set y={ticks}")));
        c.stabilize();
        c.tick_all();
        c.stabilize();
    }
    assert!(ticks <= REPORT_AFTER + 1, "after {ticks} ticks");
    assert_eq!(c.replica(R1).view(), View(0));
}

#[test]
fn only_a_request_a_client_gave_here_is_forwarded_again() {
    let mut c = cluster_with_timeout();
    // The primary's pre-prepares are lost, so the request waits for the
    // whole timeout; count each backup's forwards to the primary.
    let forwards = Rc::new([Cell::new(0u32), Cell::new(0), Cell::new(0), Cell::new(0)]);
    let count = forwards.clone();
    c.set_filter(move |e| {
        if e.to == R0 && matches!(e.signed.message, Message::Forward(_)) {
            let n = &count[e.from.index()];
            n.set(n.get() + 1);
        }
        !(e.from == R0 && matches!(e.signed.message, Message::PrePrepare(_)))
    });
    c.submit(R1, req("c1", 1, "set x=1"));
    c.stabilize();
    // Short of the view change: half the timeout in, R1 relays the request
    // to every replica, and R2 and R3 pass it on to the primary once.
    for _ in 0..TIMEOUT - 5 {
        c.tick_all();
        c.stabilize();
    }
    assert_eq!(c.replica(R1).view(), View(0));
    // The first forward, three more a tick, two and four ticks apart, and
    // the relay: a primary that only sits on it is not sent a copy every
    // doubling interval up to the timeout.
    assert_eq!(forwards[1].get(), 5, "R1's forwards");
    for r in [R2, R3] {
        assert_eq!(forwards[r.index()].get(), 1, "{r} forwards only once");
    }
}

#[test]
fn a_replica_without_a_pre_prepare_is_sent_it_and_not_the_votes_it_has() {
    let mut c = cluster_with_timeout();
    // R3 loses the pre-prepare, and every commit is lost, so nobody has a
    // committed certificate to send instead.
    c.set_filter(|e| {
        let lost_pre_prepare = e.to == R3 && matches!(e.signed.message, Message::PrePrepare(_));
        !(lost_pre_prepare || matches!(e.signed.message, Message::Commit(_)))
    });
    c.submit(R0, req("c1", 1, "set x=1"));
    c.stabilize();
    c.clear_filter();
    assert_eq!(c.replica(R3).status(Seq(1)).phase, SlotPhase::None);
    assert_eq!(c.replica(R1).status(Seq(1)).phase, SlotPhase::Prepared);
    // R3 reports on its tick; deliver the report, and look at the answers.
    let mut ticks = 0;
    while c.in_flight().next().is_none() {
        assert!(ticks <= REPORT_AFTER, "no report");
        c.tick(R3);
        ticks += 1;
    }
    for envelope in c.take_in_flight() {
        assert!(matches!(envelope.signed.message, Message::FetchState(_)));
        c.deliver(envelope);
    }
    let answers: Vec<(pbft_core::ReplicaId, &'static str)> = c
        .in_flight()
        .filter(|e| e.to == R3)
        .map(|e| (e.from, e.signed.message.kind()))
        .collect();
    // Only the primary sends what R3 lacks (and its commit, which R3
    // lacks too); the backups' votes R3 holds already.
    assert_eq!(answers, [(R0, "pre-prepare"), (R0, "commit")]);
    // The commits still missing come with the next reports.
    c.stabilize();
    let ticks = ticks_until_all_executed(&mut c, Seq(1));
    assert!(ticks <= 3 * REPORT_AFTER + 2, "after {ticks} ticks");
}

#[test]
fn a_replica_changing_views_sends_no_status_report() {
    let mut c = cluster_with_timeout();
    // R3 is cut off with its client's request waiting: its timer fires and
    // it changes views alone, while the request still waits.
    c.set_filter(|e| e.from != R3 && e.to != R3);
    c.submit(R3, req("c1", 1, "set x=1"));
    c.stabilize();
    let mut reports = 0;
    for _ in 0..3 * TIMEOUT {
        c.tick(R3);
        let view_changing = c.replica(R3).view() > View(0);
        for envelope in c.take_in_flight() {
            let report = matches!(
                &envelope.signed.message,
                Message::FetchState(f) if f.report.is_some()
            );
            if envelope.from == R3 && report && view_changing {
                reports += 1;
            }
        }
    }
    assert!(c.replica(R3).view() > View(0), "R3 changed views");
    assert_eq!(reports, 0, "status reports while changing views");
}

/// Ticks every replica once and delivers everything but what `lost`
/// says the network loses; returns whether R3 sent a status report.
fn tick_and_note_report(
    c: &mut Cluster<KvService>,
    lost: &dyn Fn(&pbft_core::Envelope) -> bool,
) -> bool {
    c.tick_all();
    let mut reported = false;
    while c.in_flight().next().is_some() {
        for envelope in c.take_in_flight() {
            reported |= envelope.from == R3
                && matches!(&envelope.signed.message, Message::FetchState(f) if f.report.is_some());
            if !lost(&envelope) {
                c.deliver(envelope);
            }
        }
    }
    reported
}

#[test]
fn reports_that_had_to_back_off_stay_apart_after_one_execution() {
    let mut c = cluster_with_timeout();
    // R3 gets no commits and no answers: number 1 stalls there, and its
    // reports go out further and further apart.
    let blocked = |e: &pbft_core::Envelope| {
        e.to == R3 && matches!(e.signed.message, Message::Commit(_) | Message::State(_))
    };
    let nothing = |_: &pbft_core::Envelope| false;
    c.set_filter(move |e| !blocked(e));
    c.submit(R0, req("c1", 1, "set x=1"));
    c.stabilize();
    let reports = (0..40)
        .filter(|_| tick_and_note_report(&mut c, &blocked))
        .count();
    assert_eq!(c.replica(R3).last_executed(), Seq(0));
    assert!(reports >= 4, "{reports} reports while stalled");
    // One execution: R3 gets what it lacks.
    c.clear_filter();
    let mut ticks = 0;
    while c.replica(R3).last_executed() < Seq(1) {
        assert!(ticks < TIMEOUT, "R3 never executed 1");
        tick_and_note_report(&mut c, &nothing);
        ticks += 1;
    }
    // The next stall: the first report waits about half as long as the
    // last ones did, not one tick.
    c.set_filter(move |e| !blocked(e));
    c.submit(R0, req("c1", 2, "set x=2"));
    c.stabilize();
    let first = (1..=TIMEOUT)
        .find(|_| tick_and_note_report(&mut c, &blocked))
        .expect("a report");
    assert!(
        first > 4 * REPORT_AFTER,
        "the first report after {first} ticks"
    );
}

/// Runs `requests` client requests, one after another, over a network
/// that loses nothing but holds every message `delay` ticks; returns how
/// many status reports were sent and how many forwards went again, after
/// the first `warm_up` requests executed everywhere.
fn reports_on_a_slow_network(delay: u64, requests: u64, warm_up: u64) -> (u32, u32) {
    let mut c = cluster_with_timeout();
    let mut held: Vec<(u64, pbft_core::Envelope)> = Vec::new();
    let (mut reports, mut forwards, mut now) = (0, 0, 0u64);
    for t in 1..=requests {
        // A backup's client: its forward to the primary is on its way for
        // `delay` ticks too.
        c.submit(R1, req("c1", t, &format!("set x={t}")));
        while c.replicas().iter().any(|r| r.last_executed() < Seq(t)) {
            assert!(now < 100 * requests * delay.max(1), "#{t} never executed");
            for envelope in c.take_in_flight() {
                if t > warm_up {
                    match &envelope.signed.message {
                        Message::FetchState(f) if f.report.is_some() => reports += 1,
                        Message::Forward(_) if envelope.from == R1 => forwards += 1,
                        _ => {}
                    }
                }
                held.push((now + delay, envelope));
            }
            let (due, later): (Vec<_>, Vec<_>) = held.drain(..).partition(|(at, _)| *at <= now);
            held = later;
            for (_, envelope) in due {
                c.deliver(envelope);
            }
            c.tick_all();
            now += 1;
        }
    }
    (reports, forwards)
}

#[test]
fn a_slow_network_that_loses_nothing_gets_few_retransmissions() {
    // Each message takes 8 ticks: a number takes some 32 ticks from the
    // client to its execution, far longer than one tick, yet well within
    // the view-change timeout. Once the first numbers have measured the
    // round trip, what is not there yet is not sent again before it is
    // due: no request is forwarded again, and a replica reports at most
    // once per number (the backup that waits for its client's request
    // also waits out the forward's trip, which the round trip from the
    // pre-prepare to the commit leaves out). With a fixed wait of one
    // tick, every replica reported every doubling interval (351 reports)
    // and every request went again three times: on a congested network
    // such copies only add to the queues.
    let (requests, warm_up) = (12, 3);
    let (reports, forwards) = reports_on_a_slow_network(8, requests, warm_up);
    let numbers = (requests - warm_up) as u32;
    assert!(
        reports <= 4 * numbers,
        "{reports} status reports for {numbers} numbers on a network that loses nothing"
    );
    // The one forward per request, and no copy.
    assert_eq!(forwards, numbers, "forwards from R1");
}
