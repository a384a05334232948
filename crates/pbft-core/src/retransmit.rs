//! Retransmission of the normal case (in the spirit of the BFT library's
//! status messages, Castro's thesis §5.2).
//!
//! **Status reports.** A replica that has waited the measured round trip
//! of the normal case (see [`RoundTrip`]; at least [`REPORT_AFTER`]
//! ticks) with nothing executed while a number it knows of, or a request a
//! client gave it, waits to execute sends its peers a status report: a
//! `FetchState` from its first unexecuted number that lists, for each
//! number it has not committed, how far it came (no pre-prepare,
//! pre-prepared, prepared). Each peer answers with exactly what it lacks:
//! the committed certificates it holds for numbers the reporter cannot
//! complete from votes alone, the primary its pre-prepare where the
//! reporter has none, and every replica its own prepare and commit where
//! the reporter is short of them. While nothing executes, reports go out
//! again, twice as far apart each time, up to a base timeout apart. A
//! backup also forwards again the client requests that have waited as
//! long for a pre-prepare, in case the forward was lost. One lost message
//! thus costs a few ticks, not half a view-change timeout.
//!
//! Answers are bounded: a report covers at most [`MAX_ANSWER`] numbers,
//! an answer holds at most [`MAX_CERTIFICATES`] committed certificates,
//! and a peer answers each replica's reports at most once per
//! [`ANSWER_INTERVAL`] ticks, so a faulty peer that sends reports without
//! end gets at most one bounded answer per interval.
//!
//! **Resending on a stall.** When execution stalls for half a base
//! timeout with numbers of the current view pending, a replica also
//! multicasts again what it already sent for them, so that a peer that
//! lost the messages (or refused them, say a pre-prepare just above a
//! window that had not yet moved) can still complete them: the primary
//! its pre-prepares, a backup its prepares, and every replica its commits.
//! Each is the original signed message, so a receiver that had it already
//! rejects the copy as a duplicate and nothing changes.

use std::sync::Arc;

use crate::message::{FetchState, StateTransfer, StatusReport};
use crate::message::{Message, Signed, Vote};
use crate::output::{Destination, Output};
use crate::rejection::Rejection;
use crate::replica::Replica;
use crate::service::Service;
use crate::status::SlotPhase;
use crate::types::ReplicaId;
use crate::types::Seq;

/// The fewest ticks without an execution, while something waits to
/// execute, before a replica reports its status: the wait is the measured
/// round trip of the normal case when that is longer.
pub const REPORT_AFTER: u64 = 1;

/// The most answers to one peer's status reports (and small state
/// transfers) in one tick.
pub const ANSWERS_PER_TICK: u32 = 4;

/// The bytes of requests and snapshots that answers to one peer may carry
/// in one tick: once they are spent, its next report waits for the next
/// tick. With [`ANSWERS_PER_TICK`], this bounds what a faulty peer can
/// make a replica send it: at most this plus one answer a tick.
pub const ANSWER_BYTES_PER_TICK: usize = 4 << 20;

/// The encoded bytes of committed certificates past which an answer takes
/// no more: an answer stays far below the largest message a transport
/// carries, however large the batches.
pub const MAX_ANSWER_BYTES: usize = 4 << 20;

/// The most numbers one status report covers, and so the most own
/// messages per phase one answer holds.
pub const MAX_ANSWER: u64 = 32;

/// The most committed certificates one answer holds.
pub const MAX_CERTIFICATES: u64 = MAX_ANSWER;

/// The most numbers one answer sends this replica's own messages for.
const VOTED_NUMBERS: usize = 4;

/// The most client requests a backup forwards again in one tick.
const MAX_REFORWARD: usize = 32;

/// The most times a backup forwards one client request again in one view.
const REFORWARDS: u32 = 3;

/// Status-report bookkeeping of one replica.
#[derive(Clone, Debug)]
pub(crate) struct Reports {
    /// `last_executed` when last seen, and the tick from which the wait
    /// for the next report runs.
    seen: Seq,
    since: u64,
    /// Ticks from `since` to the next report: [`REPORT_AFTER`] at first,
    /// doubled by each report, up to a base timeout.
    wait: u64,
    /// Answers, and their bytes, each peer's reports may still have this
    /// tick.
    budget: Vec<(u32, usize)>,
    /// The number after the last executed one when a gap was last
    /// reported at once (see [`Replica::report_gap`]).
    gap_reported: Option<Seq>,
    /// The normal case's round trip as this replica measures it.
    pub(crate) round_trip: RoundTrip,
}

/// The most numbers whose round trip is timed at once: more than a window
/// ever holds.
const TIMED_NUMBERS: usize = 1024;

/// The normal case's round trip, measured the way TCP measures its own
/// (Jacobson's estimator, as in RFC 6298): for each number of the current
/// view, the ticks from the first time this replica holds its pre-prepare
/// to the time it commits there, smoothed, with their mean deviation. The
/// retransmission wait is the smoothed round trip plus four deviations:
/// a message not there by then is most likely lost, not still on its way.
///
/// A fixed wait of one tick suits a network that delivers within a tick.
/// On one whose queues hold messages for tens of ticks, every report and
/// every forward sent again after one tick is redundant: the original is
/// still on its way. Each adds to the queues (a report brings answers
/// from every peer), which makes the next wait longer still, until the
/// view-change timer fires on requests that were never lost: congestion
/// collapse. With the measured wait, the slower the network, the further
/// apart the retransmissions.
#[derive(Clone, Debug, Default)]
pub(crate) struct RoundTrip {
    /// When each number still timed first had a pre-prepare here.
    started: std::collections::BTreeMap<Seq, u64>,
    /// The smoothed round trip and its mean deviation, in eighths of a
    /// tick; `None` before the first sample.
    smoothed: Option<(u64, u64)>,
}

impl RoundTrip {
    /// Starts timing `seq` at `now`, unless it already is.
    pub(crate) fn start(&mut self, seq: Seq, now: u64) {
        if self.started.len() < TIMED_NUMBERS || self.started.contains_key(&seq) {
            self.started.entry(seq).or_insert(now);
        }
    }

    /// `seq` committed at `now`: one sample, if it was timed.
    pub(crate) fn finish(&mut self, seq: Seq, now: u64) {
        let Some(at) = self.started.remove(&seq) else {
            return;
        };
        let sample = now.saturating_sub(at).saturating_mul(8);
        self.smoothed = Some(match self.smoothed {
            None => (sample, sample / 2),
            Some((srtt, var)) => {
                let var = (3 * var + srtt.abs_diff(sample)) / 4;
                let srtt = (7 * srtt + sample) / 8;
                (srtt, var)
            }
        });
    }

    /// Stops timing every number: a number that waited through a view
    /// change says nothing of the network.
    pub(crate) fn clear(&mut self) {
        self.started.clear();
    }

    /// Stops timing the numbers up to `seq`, executed or collected.
    pub(crate) fn forget_through(&mut self, seq: Seq) {
        while let Some((&first, _)) = self.started.first_key_value() {
            if first > seq {
                break;
            }
            self.started.remove(&first);
        }
    }

    /// The retransmission wait in ticks: the smoothed round trip plus four
    /// deviations, rounded up, at least [`REPORT_AFTER`] and at most
    /// `most`.
    pub(crate) fn wait(&self, most: u64) -> u64 {
        let rto = self
            .smoothed
            .map_or(0, |(srtt, var)| (srtt + 4 * var).div_ceil(8));
        rto.clamp(REPORT_AFTER, most.max(REPORT_AFTER))
    }
}

impl Reports {
    pub(crate) fn new(n: usize) -> Reports {
        Reports {
            seen: Seq(0),
            since: 0,
            wait: REPORT_AFTER,
            budget: vec![(ANSWERS_PER_TICK, ANSWER_BYTES_PER_TICK); n],
            gap_reported: None,
            round_trip: RoundTrip::default(),
        }
    }
}

impl<S: Service> Replica<S> {
    /// Sends again this replica's own messages for the unexecuted numbers
    /// of the current view.
    pub(crate) fn resend_stalled(&self, out: &mut Vec<Output>) {
        if !self.vc.active {
            return;
        }
        let primary = self.is_primary();
        for (seq, slot) in self.log.after(self.last_executed) {
            if slot.view != self.view || slot.results.is_some() {
                continue;
            }
            let Some(pp) = &slot.pre_prepare else {
                continue;
            };
            if primary && pp.batch.is_some() {
                self.resend(
                    Message::PrePrepare(pp.clone()),
                    slot.pre_prepare_signature,
                    out,
                );
            }
            let own = |votes: &crate::votes::Votes| {
                votes
                    .signed_for(pp.digest)
                    .find(|(replica, _)| *replica == self.id)
                    .map(|(_, signature)| signature)
            };
            let vote = |seq: Seq| Vote {
                view: pp.view,
                seq,
                digest: pp.digest,
                replica: self.id,
            };
            if !primary {
                if let Some(signature) = own(&slot.prepares) {
                    self.resend(Message::Prepare(vote(seq)), signature, out);
                }
            }
            if let Some(signature) = own(&slot.commits) {
                self.resend(Message::Commit(vote(seq)), signature, out);
            }
        }
    }

    fn resend(
        &self,
        message: Message,
        signature: Option<crate::auth::Signature>,
        out: &mut Vec<Output>,
    ) {
        out.push(Output::Send {
            to: Destination::Others,
            signed: Signed { message, signature },
        });
    }
}

impl<S: Service> Replica<S> {
    /// On each tick: sends a status report when nothing has executed for
    /// the current wait while something waits to execute (see the module
    /// documentation).
    pub(crate) fn report_if_stalled(&mut self, out: &mut Vec<Output>) {
        self.reports
            .budget
            .fill((ANSWERS_PER_TICK, ANSWER_BYTES_PER_TICK));
        // A replica changing views needs the new view, which its view
        // change brings; peers in that view would answer a report with
        // messages it cannot take yet.
        let waiting = self.vc.active
            && (self.clients.oldest_wait().is_some()
                || self
                    .log
                    .after(self.last_executed)
                    .any(|(_, slot)| slot.results.is_none()));
        let base = self.vc_base_timeout().max(REPORT_AFTER);
        let reports = &mut self.reports;
        if !self.vc.active {
            reports.round_trip.clear();
        }
        reports.round_trip.forget_through(self.last_executed);
        // Never sooner than the measured round trip: before then, what is
        // missing is most likely still on its way.
        let floor = reports.round_trip.wait(base / 2);
        if !waiting || self.last_executed != reports.seen {
            // Progress halves the wait rather than starting it over: on a
            // network slow enough that stalls keep coming back, reports
            // stay as far apart as the stalls showed they must be.
            reports.seen = self.last_executed;
            reports.since = self.ticks;
            reports.wait = (reports.wait / 2).max(floor);
            return;
        }
        reports.wait = reports.wait.max(floor);
        if self.ticks < reports.since.saturating_add(reports.wait) {
            return;
        }
        reports.since = self.ticks;
        reports.wait = reports.wait.saturating_mul(2).min(base);
        self.send_report(out);
    }

    /// After each input: reports at once, before the tick would, when
    /// execution has a gap. A later number committed here while the next
    /// one to execute did not: on links that keep order that means a
    /// message for it was lost, since every replica sends its messages for
    /// a number before those for the next. Once per such number; if the
    /// report or its answers are lost too, the tick's report follows.
    pub(crate) fn report_gap(&mut self, out: &mut Vec<Output>) {
        if !self.vc.active {
            return;
        }
        let next = self.last_executed.next();
        let gap = self.reports.gap_reported != Some(next)
            && self
                .log
                .after(self.last_executed)
                .any(|(seq, slot)| seq > next && slot.committed_pre_prepare().is_some());
        if !gap {
            return;
        }
        self.reports.gap_reported = Some(next);
        self.send_report(out);
    }

    fn send_report(&mut self, out: &mut Vec<Output>) {
        let fetch = FetchState {
            report: Some(self.status_report()),
            ..FetchState::new(self.last_executed.next(), self.id)
        };
        self.send(Destination::Others, Message::FetchState(fetch), out);
    }

    /// On each tick, as a backup: forwards again the client requests that
    /// have waited [`REPORT_AFTER`] ticks or more for a pre-prepare, in
    /// case the forward was lost (the primary drops a copy of a request it
    /// already holds or ordered). Each such request goes again twice as
    /// far apart while it still waits, [`REFORWARDS`] times at most, and
    /// at most [`MAX_REFORWARD`] requests a tick: a primary that is merely
    /// slow is not flooded with copies. Beyond that, the relay to every
    /// replica at half a timeout and the view change take over. A new
    /// view starts it over. Only requests a client gave this replica go: one a
    /// peer relayed here is that peer's to send again. This does not wait
    /// for execution to stall: other clients' requests may execute
    /// meanwhile.
    pub(crate) fn reforward_waiting(&mut self, out: &mut Vec<Output>) {
        if self.is_primary() || !self.vc.active {
            return;
        }
        // Not before the measured round trip, for the same reason as a
        // report.
        let first = self.reports.round_trip.wait(self.vc_base_timeout() / 2);
        let due = self
            .clients
            .take_due_reforwards(self.ticks, first, REFORWARDS, MAX_REFORWARD);
        let primary = Destination::Replica(self.primary());
        for request in due {
            self.send(primary, Message::Forward(request), out);
        }
    }

    /// What this replica holds for the numbers after its last executed
    /// one, at most [`MAX_ANSWER`] of them.
    fn status_report(&self) -> StatusReport {
        let first = self.last_executed.next();
        let last = Seq(first.0.saturating_add(MAX_ANSWER - 1));
        let through = self
            .log
            .after(self.last_executed)
            .map(|(seq, _)| seq)
            .take_while(|seq| *seq <= last)
            .last()
            .unwrap_or(self.last_executed);
        let pending = (first.0..=through.0)
            .map(Seq)
            .map(|seq| (seq, self.phase_of(seq)))
            .filter(|(_, phase)| *phase < SlotPhase::Committed)
            .collect();
        StatusReport {
            view: self.view,
            through,
            pending,
        }
    }

    /// How far `seq` has come here: none, pre-prepared, prepared or
    /// committed.
    fn phase_of(&self, seq: Seq) -> SlotPhase {
        match self.log.get(seq) {
            None => SlotPhase::None,
            Some(slot) if slot.committed_pre_prepare().is_some() => SlotPhase::Committed,
            Some(slot) if slot.pre_prepare.is_none() => SlotPhase::None,
            Some(slot) if slot.commit_sent => SlotPhase::Prepared,
            Some(_) => SlotPhase::PrePrepare,
        }
    }

    /// A peer's status report, from its first unexecuted number `seq` on:
    /// answers with what it lacks, at most once per [`ANSWER_INTERVAL`]
    /// ticks. The caller has checked that this replica's stable checkpoint
    /// is below `seq`, so the peer needs no snapshot.
    pub(crate) fn answer_report(
        &mut self,
        from: ReplicaId,
        seq: Seq,
        report: &StatusReport,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        let end = seq.0.saturating_add(MAX_ANSWER);
        let in_order = report.pending.windows(2).all(|pair| pair[0].0 < pair[1].0);
        let covered = report
            .pending
            .iter()
            .all(|(n, _)| *n >= seq && *n <= report.through);
        if report.pending.len() > MAX_ANSWER as usize || !in_order || !covered {
            return Err(Rejection::InvalidReport);
        }
        if report.view < self.view {
            // The peer missed a view change: help it to the current view as
            // for a stale view change, or it would execute what certificates
            // bring it and never learn that its view was left.
            self.help_catch_up(from, report.view, false, out);
        }
        if !self.may_answer(from) {
            return Err(Rejection::TooFrequent);
        }
        let phase_at = |n: Seq| {
            if n > report.through {
                return SlotPhase::None;
            }
            match report.pending.binary_search_by_key(&n, |(n, _)| *n) {
                Ok(i) => report.pending[i].1,
                Err(_) => SlotPhase::Committed,
            }
        };
        let same_view = self.vc.active && report.view == self.view;
        // Committed certificates, consecutive from `seq` (the peer adopts
        // them in order), up to the last one the peer needs: a number it
        // has no pre-prepare for, or whose votes this replica cannot send.
        let mut certs = Vec::new();
        let mut needed = 0;
        let mut bytes = 0;
        for n in (seq.0..seq.0.saturating_add(MAX_CERTIFICATES)).map(Seq) {
            if bytes >= MAX_ANSWER_BYTES {
                break;
            }
            // Only with its batch: the peer refuses a state answer whose
            // certificate names a batch by digest only, as it could not
            // execute it (a slot filled from a new view may wait for it).
            let Some(cert) = self
                .committed_certificate(n)
                .filter(|cert| cert.pre_prepare().is_some_and(|pp| pp.batch.is_some()))
            else {
                break;
            };
            let phase = phase_at(n);
            bytes += cert.pre_prepare.message.payload_size();
            certs.push(cert);
            let votes_do = same_view && !self.own_messages(n, phase).is_empty();
            if phase < SlotPhase::Committed && (phase == SlotPhase::None || !votes_do) {
                needed = certs.len();
            }
        }
        certs.truncate(needed);
        let after = Seq(seq.0.saturating_add(certs.len() as u64));
        let mut own = Vec::new();
        if same_view {
            // Execution is in order, so the first numbers the peer cannot
            // complete are the ones it waits on; the rest can wait for its
            // next report.
            let lacking = (after.0..end)
                .map(Seq)
                .map(|n| self.own_messages(n, phase_at(n)))
                .filter(|messages| !messages.is_empty())
                .take(VOTED_NUMBERS);
            own.extend(lacking.flatten());
        }
        if certs.is_empty() && own.is_empty() {
            return Ok(());
        }
        self.spend_answer(from, bytes);
        if !certs.is_empty() {
            let state = StateTransfer {
                checkpoint: self.checkpoints.stable.clone(),
                service: Arc::default(),
                clients: Arc::default(),
                committed: certs,
                replica: self.id,
                manifest: None,
                chunk: None,
            };
            self.send(Destination::Replica(from), Message::State(state), out);
        }
        for signed in own {
            out.push(Output::Send {
                to: Destination::Replica(from),
                signed,
            });
        }
        Ok(())
    }

    /// Whether `from` may have another answer this tick.
    pub(crate) fn may_answer(&self, from: ReplicaId) -> bool {
        let (answers, bytes) = self.reports.budget[from.index()];
        answers > 0 && bytes > 0
    }

    /// Spends one of the answers `from` may have this tick, of `bytes`.
    pub(crate) fn spend_answer(&mut self, from: ReplicaId, bytes: usize) {
        let (answers, left) = &mut self.reports.budget[from.index()];
        *answers = answers.saturating_sub(1);
        *left = left.saturating_sub(bytes);
    }

    /// This replica's own signed messages of the current view for `seq`
    /// that a peer at `phase` lacks: the primary's pre-prepare where it has
    /// none, a backup's prepare until it is prepared, and the commit until
    /// it is committed.
    fn own_messages(&self, seq: Seq, phase: SlotPhase) -> Vec<Signed> {
        let mut own = Vec::new();
        let Some(slot) = self.log.get(seq).filter(|slot| slot.view == self.view) else {
            return own;
        };
        let Some(pp) = &slot.pre_prepare else {
            return own;
        };
        let primary = self.is_primary();
        // A peer with no pre-prepare needs the primary's first: it keeps
        // the votes it had, and its next report asks for the ones it still
        // lacks. Sending every vote again now would mostly repeat them.
        if phase >= SlotPhase::Committed || (phase == SlotPhase::None && !primary) {
            return own;
        }
        let mine = |votes: &crate::votes::Votes| {
            votes
                .signed_for(pp.digest)
                .find(|(replica, _)| *replica == self.id)
                .map(|(_, signature)| signature)
        };
        let vote = Vote {
            view: pp.view,
            seq,
            digest: pp.digest,
            replica: self.id,
        };
        if primary && phase == SlotPhase::None {
            own.push(Signed {
                message: Message::PrePrepare(pp.clone()),
                signature: slot.pre_prepare_signature,
            });
        }
        if !primary && phase < SlotPhase::Prepared {
            if let Some(signature) = mine(&slot.prepares) {
                own.push(Signed {
                    message: Message::Prepare(vote),
                    signature,
                });
            }
        }
        if let Some(signature) = mine(&slot.commits) {
            own.push(Signed {
                message: Message::Commit(vote),
                signature,
            });
        }
        own
    }
}

#[cfg(test)]
mod tests {
    use crate::cluster::Cluster;
    use crate::message::{Message, StatusReport};
    use crate::output::{Destination, Output};
    use crate::request::Request;
    use crate::types::{ReplicaId, Seq, View};

    const R1: ReplicaId = ReplicaId(1);
    const R3: ReplicaId = ReplicaId(3);

    /// A peer refuses a state answer with any certificate it cannot
    /// execute, so an answer carries certificates only up to the first
    /// whose batch is not here (a number committed by digest in a new
    /// view, say): the peer takes those and asks again for the rest.
    #[test]
    fn a_status_answer_stops_at_a_certificate_without_its_batch() {
        let mut c = Cluster::kv(4).expect("a cluster");
        c.set_filter(|e| e.to != R3);
        for t in 1..=2 {
            let op = format!("set x={t}");
            c.submit(ReplicaId(0), Request::new("c1", Some(t), &op));
            c.stabilize();
        }
        assert_eq!(c.replica(R1).last_executed(), Seq(2));
        let slot = c.replica_mut(R1).log.get_mut(Seq(2)).expect("a slot");
        slot.pre_prepare.as_mut().expect("a pre-prepare").batch = None;
        slot.held.clear();

        let report = StatusReport {
            view: View(0),
            through: Seq(0),
            pending: Vec::new(),
        };
        let mut out = Vec::new();
        c.replica_mut(R1)
            .answer_report(R3, Seq(1), &report, &mut out)
            .expect("answered");
        let answers: Vec<_> = out
            .into_iter()
            .filter_map(|o| match o {
                Output::Send {
                    to: Destination::Replica(R3),
                    signed,
                } => Some(signed),
                _ => None,
            })
            .collect();
        let [signed] = &answers[..] else {
            panic!("one answer, not {answers:?}");
        };
        let Message::State(state) = &signed.message else {
            panic!("a state answer, not {signed:?}");
        };
        let seqs: Vec<Seq> = state
            .committed
            .iter()
            .filter_map(|cert| cert.pre_prepare())
            .map(|pp| pp.seq)
            .collect();
        assert_eq!(seqs, [Seq(1)]);

        // And the peer takes it.
        c.take_in_flight();
        c.clear_filter();
        c.inject_signed(R1, R3, signed.clone());
        c.deliver_next();
        assert_eq!(c.replica(R3).last_executed(), Seq(1));
    }
}
