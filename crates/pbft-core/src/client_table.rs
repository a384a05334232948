//! Per-client bookkeeping (§4.1): the last request each client had
//! executed and its result, and the requests waiting to be ordered.
//!
//! A replica remembers, per client, the last request it executed, its
//! digest and its result (§4.1). A request with a timestamp at or below
//! that record is never executed again: a retry of the latest one (the
//! same digest) is answered with the sequence number and result it already
//! has, another request under that timestamp is refused as a conflict, and
//! an older one is refused as stale. The result answers only the request
//! that produced it: a faulty replica that orders a forged operation under
//! a client's next timestamp cannot get the client's real request
//! acknowledged with it.
//!
//! A timestamp further than [`Config::max_timestamp_gap`] ahead of the
//! client's record (0 for a client with none) is refused, and executes as
//! an error without touching the record if a faulty primary orders it, so
//! a forged request with a huge timestamp cannot make the client's later
//! requests stale. Execution decides from the replicated record alone, so
//! every replica decides alike.
//!
//! [`Config::max_timestamp_gap`]: crate::Config::max_timestamp_gap

use std::collections::HashMap;

use crate::by_client::ByClient;
use crate::canonical::{put_bytes, Reader};
use crate::config::DEFAULT_MAX_TIMESTAMP_GAP;
use crate::digest::Digest;
use crate::output::{Output, Refusal};
use crate::request::Request;
use crate::service::{ExecResult, Service};
use crate::types::{ClientId, Seq, View};

/// The last request executed for one client, and its result.
#[derive(Clone, Debug)]
struct LastReply {
    timestamp: u64,
    /// The digest of the request executed under `timestamp`: only that
    /// request is answered with `result`.
    digest: Digest,
    view: View,
    seq: Seq,
    result: ExecResult,
}

/// A request waiting to be ordered.
#[derive(Clone, Copy, Debug)]
struct Wait {
    /// The tick the wait began.
    since: u64,
    /// Whether a client waits here for it, rather than only a peer that
    /// relayed it.
    here: bool,
    /// Whether every other replica has been sent it: by this replica, or
    /// by a peer that relayed it here.
    relayed: bool,
    /// For a client's request at a backup: the tick it is next forwarded
    /// again to the primary, in case the forward was lost, and how many
    /// times it was; `None` until the first time.
    reforward: Option<(u64, u32)>,
}

/// The most requests relayed by peers that a backup waits for at once;
/// beyond that a relayed request is dropped as
/// [`Rejection::Overloaded`], as the primary drops one it cannot hold.
pub const MAX_RELAYED_WAITS: usize = crate::pending::MAX_PENDING;

/// What a replica knows about a request it is handed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Known {
    /// Not ordered yet, as far as this replica knows.
    New,
    /// Already has a number: executed, or in an accepted pre-prepare.
    Ordered { view: View, seq: Seq },
    /// Older than the client's last executed request.
    Stale { latest: u64 },
    /// The client's last executed timestamp, but another request executed
    /// under it.
    Conflict { timestamp: u64 },
    /// Further ahead of the client's last executed timestamp, `latest`,
    /// than the configured gap.
    TooFarAhead { timestamp: u64, latest: u64 },
}

/// Per-client bookkeeping.
#[derive(Clone, Debug)]
pub(crate) struct ClientTable {
    last_reply: HashMap<ClientId, LastReply>,
    /// Timestamped requests in accepted pre-prepares, not yet executed, by
    /// client and timestamp. A faulty primary may order two requests under
    /// one timestamp, so an entry only names the number to look at: the
    /// request is known as ordered only if the pre-prepare there holds it
    /// (see [`Replica::classify`]).
    in_log: HashMap<(ClientId, u64), (View, Seq)>,
    /// Requests clients gave this replica (as a backup), or that peers
    /// relayed to it, that no accepted pre-prepare holds yet: the
    /// view-change timer runs from the oldest (§4.4).
    awaiting_order: ByClient<Wait>,
    /// Requests whose clients this replica acknowledged, not executed yet.
    /// A view change can discard the pre-prepare they were acknowledged
    /// for; they then wait again.
    acked: ByClient<()>,
    /// How far ahead of a client's record a timestamp may be.
    pub(crate) max_gap: u64,
}

impl Default for ClientTable {
    fn default() -> Self {
        ClientTable::new(DEFAULT_MAX_TIMESTAMP_GAP)
    }
}

/// How a timestamped request stands against its client's record.
enum Prior {
    /// It is the client's last executed request.
    Same,
    /// Another request executed under its timestamp.
    Conflict,
    /// A later timestamp than its own executed.
    Superseded(u64),
    /// Its timestamp is after the record's, `latest` (0 without one).
    After(u64),
}

impl ClientTable {
    /// An empty table that accepts timestamps at most `max_gap` ahead of
    /// each client's record.
    pub(crate) fn new(max_gap: u64) -> ClientTable {
        ClientTable {
            last_reply: HashMap::new(),
            in_log: HashMap::new(),
            awaiting_order: ByClient::default(),
            acked: ByClient::default(),
            max_gap,
        }
    }

    /// Where a request with timestamp `t` from `client` stands against the
    /// client's record. `digest` gives the request's digest; it is called
    /// only when `t` is the record's timestamp.
    fn prior(&self, client: &ClientId, t: u64, digest: impl FnOnce() -> Digest) -> Prior {
        match self.last_reply.get(client) {
            None => Prior::After(0),
            Some(last) if t == last.timestamp && digest() == last.digest => Prior::Same,
            Some(last) if t == last.timestamp => Prior::Conflict,
            Some(last) if t < last.timestamp => Prior::Superseded(last.timestamp),
            Some(last) => Prior::After(last.timestamp),
        }
    }

    /// The replicated part of the table, the last reply per client, as
    /// bytes in client order: part of every checkpoint's state.
    pub(crate) fn snapshot(&self) -> Vec<u8> {
        let mut clients: Vec<_> = self.last_reply.iter().collect();
        clients.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = Vec::new();
        out.extend_from_slice(&(clients.len() as u64).to_be_bytes());
        for (client, last) in clients {
            put_bytes(&mut out, client.as_str().as_bytes());
            // Not the view: replicas may execute one batch in different
            // views (some before a view change, some after), and the state
            // digest must not depend on it.
            for n in [last.timestamp, last.seq.0] {
                out.extend_from_slice(&n.to_be_bytes());
            }
            out.extend_from_slice(last.digest.as_bytes());
            match &last.result {
                ExecResult::Ok => out.push(0),
                ExecResult::Value(v) => {
                    out.push(1);
                    put_bytes(&mut out, v.as_bytes());
                }
                ExecResult::Null => out.push(2),
                ExecResult::Error(e) => {
                    out.push(3);
                    put_bytes(&mut out, e.as_bytes());
                }
            }
        }
        out
    }

    /// Replaces the last replies with a snapshot's, for state transfer.
    pub(crate) fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let mut reader = Reader::new(snapshot);
        let count = reader.u64()?;
        let mut last_reply = HashMap::new();
        for _ in 0..count {
            let client = ClientId::from(reader.string()?);
            let (timestamp, seq) = (reader.u64()?, Seq(reader.u64()?));
            let digest = reader.digest()?;
            // The view is not part of the state; a retry is answered with
            // the number, in view 0.
            let view = View(0);
            let result = match reader.u8()? {
                0 => ExecResult::Ok,
                1 => ExecResult::Value(reader.string()?.to_string()),
                2 => ExecResult::Null,
                3 => ExecResult::Error(reader.string()?.to_string()),
                tag => return Err(format!("unknown result tag {tag}")),
            };
            let last = LastReply {
                timestamp,
                digest,
                view,
                seq,
                result,
            };
            if last_reply.insert(client, last).is_some() {
                return Err("a client appears twice".to_string());
            }
        }
        reader.finish()?;
        self.last_reply = last_reply;
        self.in_log.clear();
        Ok(())
    }

    /// Notes that `request` waits here, since tick `now`, to be ordered:
    /// for a client of this replica (`here`), or for a peer that relayed
    /// it. A retry keeps the original start. Returns whether the request
    /// was not waiting yet.
    pub(crate) fn await_order(&mut self, request: Request, now: u64, here: bool) -> bool {
        if let Some(wait) = self.awaiting_order.get_mut(&request) {
            wait.here |= here;
            // Relayed by a peer: every replica has it already.
            wait.relayed |= !here;
            return false;
        }
        let wait = Wait {
            since: now,
            here,
            relayed: !here,
            reforward: None,
        };
        self.awaiting_order.insert_if_absent(request, wait)
    }

    /// Whether every other replica has been sent `request`, by this
    /// replica or a peer, since it began to wait here or since this
    /// replica's last view change began (`relay_again`).
    pub(crate) fn is_relayed(&self, request: &Request) -> bool {
        self.awaiting_order
            .get(request)
            .is_some_and(|wait| wait.relayed)
    }

    /// Notes that `request` was sent to every other replica.
    pub(crate) fn note_relayed(&mut self, request: &Request) {
        if let Some(wait) = self.awaiting_order.get_mut(request) {
            wait.relayed = true;
        }
    }

    /// On a view change, at `now`: every request a client gave this
    /// replica is marked not relayed and waits from `now`, so that
    /// `relay_waiting` sends it to every replica once more half a base
    /// timeout into the view change. The replicas that were sent it before
    /// may have lost it, or dropped it with a pre-prepare the view change
    /// discards (a replica only relayed a request forgets it then), and the
    /// primary the others follow may never have heard of it. Waiting half
    /// a timeout lets a short fault heal first. The wait's start matters
    /// for nothing else while the view changes: the new view restarts
    /// every wait.
    pub(crate) fn relay_again(&mut self, now: u64) {
        for wait in self.awaiting_order.values_mut() {
            if wait.here {
                wait.relayed = false;
                wait.since = now;
            }
        }
    }

    /// How many requests wait to be ordered here.
    pub(crate) fn awaiting_len(&self) -> usize {
        self.awaiting_order.len()
    }

    /// The tick the oldest wait began, if a request waits here.
    pub(crate) fn oldest_wait(&self) -> Option<u64> {
        self.awaiting_order.values().map(|w| w.since).min()
    }

    /// Starts every wait over at `now`: a new view gets a full timeout.
    pub(crate) fn restart_waits(&mut self, now: u64) {
        for wait in self.awaiting_order.values_mut() {
            wait.since = now;
            wait.reforward = None;
        }
    }

    /// The requests waiting here, in a deterministic order.
    pub(crate) fn awaiting(&self) -> Vec<Request> {
        self.awaiting_order
            .requests()
            .into_iter()
            .cloned()
            .collect()
    }

    /// The requests a client gave this replica that have waited `wait`
    /// ticks at `now` and that no replica has relayed yet, marked relayed
    /// now; in a deterministic order.
    pub(crate) fn take_due_relays(&mut self, now: u64, wait: u64) -> Vec<Request> {
        let due: Vec<Request> = self
            .awaiting_order
            .entries()
            .into_iter()
            .filter(|(_, w)| w.here && !w.relayed && w.since.saturating_add(wait) <= now)
            .map(|(request, _)| request.clone())
            .collect();
        for request in &due {
            if let Some(wait) = self.awaiting_order.get_mut(request) {
                wait.relayed = true;
            }
        }
        due
    }

    /// The requests a client gave this replica that are due at `now` to
    /// be forwarded again: first `first` ticks after the wait began, then
    /// twice as far apart each time, `times` times at most; at most `max`
    /// of them, in the order of [`awaiting`](Self::awaiting), each
    /// scheduled for its next time. The start of the wait, which drives
    /// the view-change timer and the relay to every replica, is left
    /// alone.
    pub(crate) fn take_due_reforwards(
        &mut self,
        now: u64,
        first: u64,
        times: u32,
        max: usize,
    ) -> Vec<Request> {
        let due: Vec<Request> = self
            .awaiting_order
            .entries()
            .into_iter()
            .filter(|(_, w)| {
                let (at, sent) = w.reforward.unwrap_or((w.since.saturating_add(first), 0));
                w.here && sent < times && at <= now
            })
            .take(max)
            .map(|(request, _)| request.clone())
            .collect();
        for request in &due {
            if let Some(wait) = self.awaiting_order.get_mut(request) {
                let sent = wait.reforward.map_or(0, |(_, sent)| sent) + 1;
                let after = first.saturating_mul(1 << sent.min(32));
                wait.reforward = Some((now.saturating_add(after), sent));
            }
        }
        due
    }

    /// Takes every request waiting here, with whether a client waits here
    /// for it.
    pub(crate) fn take_awaiting(&mut self) -> Vec<(Request, bool)> {
        self.awaiting_order
            .drain()
            .into_iter()
            .map(|(request, wait)| (request, wait.here))
            .collect()
    }

    /// The result of `request` if it is its client's latest executed one:
    /// the same timestamp and the same digest.
    pub(crate) fn cached_result(&self, request: &Request) -> Option<(Seq, ExecResult)> {
        let t = request.timestamp?;
        let last = self.last_reply.get(&request.client)?;
        (last.timestamp == t && last.digest == request.digest())
            .then(|| (last.seq, last.result.clone()))
    }

    /// What this replica knows about `request`. `holds(seq)` says whether
    /// the accepted pre-prepare at `seq` holds `request` itself, not only
    /// another request under its timestamp.
    pub(crate) fn classify(&self, request: &Request, holds: impl FnOnce(Seq) -> bool) -> Known {
        let Some(t) = request.timestamp else {
            return Known::New;
        };
        let latest = match self.prior(&request.client, t, || request.digest()) {
            Prior::Same => {
                let last = &self.last_reply[&request.client];
                return Known::Ordered {
                    view: last.view,
                    seq: last.seq,
                };
            }
            Prior::Conflict => return Known::Conflict { timestamp: t },
            Prior::Superseded(latest) => return Known::Stale { latest },
            Prior::After(latest) => latest,
        };
        if t - latest > self.max_gap {
            return Known::TooFarAhead {
                timestamp: t,
                latest,
            };
        }
        // Another request under this timestamp in the log is no answer for
        // this one: execution decides which of them runs.
        match self.in_log.get(&(request.client.clone(), t)) {
            Some(&(view, seq)) if holds(seq) => Known::Ordered { view, seq },
            _ => Known::New,
        }
    }

    /// Notes that an accepted pre-prepare orders `request` at `(view, seq)`.
    /// Returns true when a client is waiting here for that acknowledgement.
    pub(crate) fn note_ordered(&mut self, request: &Request, view: View, seq: Seq) -> bool {
        if let Some(t) = request.timestamp {
            let executed = self
                .last_reply
                .get(&request.client)
                .is_some_and(|last| last.timestamp >= t);
            if !executed {
                self.in_log.insert((request.client.clone(), t), (view, seq));
            }
        }
        // Every submission of the request is answered by this one number.
        match self.awaiting_order.remove(request) {
            Some(wait) if wait.here => {
                self.note_acked(request);
                true
            }
            _ => false,
        }
    }

    /// Notes that a client was told `request` has a number.
    pub(crate) fn note_acked(&mut self, request: &Request) {
        self.acked.insert_if_absent(request.clone(), ());
    }

    /// Takes the last replies of a table restored from a checkpoint. Numbers
    /// in the log are reassigned from here on, so the index of ordered
    /// requests starts over.
    ///
    /// Returns what to tell the clients that wait here for requests the
    /// restored state settled, in request order: this replica never
    /// executes those itself. The request the restored state executed last
    /// for its client (the same timestamp and digest) is answered with its
    /// number and result; another under that timestamp is refused as a
    /// conflict, as execution would have refused it.
    pub(crate) fn replace_replies(&mut self, restored: ClientTable) -> Vec<Output> {
        self.last_reply = restored.last_reply;
        self.in_log.clear();
        // Requests the restored state executed are no longer waited for.
        let mut settled: Vec<(Request, &LastReply)> = Vec::new();
        for (client, last) in &self.last_reply {
            let waiting = self.awaiting_order.take_settled(client, last.timestamp);
            let acked = self.acked.take_settled(client, last.timestamp);
            let told = waiting
                .into_iter()
                .filter(|(_, wait)| wait.here)
                .map(|(request, _)| request)
                .chain(acked.into_iter().map(|(request, ())| request));
            for request in told {
                let at_last = request.timestamp == Some(last.timestamp);
                if at_last && !settled.iter().any(|(r, _)| *r == request) {
                    settled.push((request, last));
                }
            }
        }
        settled.sort_by(|a, b| a.0.cmp(&b.0));
        settled
            .into_iter()
            .map(|(request, last)| {
                // Only the request that produced the result is answered
                // with it.
                if request.digest() == last.digest {
                    Output::Answered {
                        request,
                        seq: last.seq,
                        result: last.result.clone(),
                    }
                } else {
                    Output::Refused {
                        request,
                        reason: Refusal::Conflict {
                            timestamp: last.timestamp,
                        },
                    }
                }
            })
            .collect()
    }

    /// On a view change: numbers not yet executed may be reassigned, so
    /// acknowledged requests wait for the new view's pre-prepare again.
    pub(crate) fn requeue_unexecuted(&mut self, now: u64) {
        for (request, ()) in self.acked.drain() {
            self.await_order(request, now, true);
        }
        self.in_log.clear();
    }

    /// Executes `request`, whose digest is `digest`, ordered at
    /// `(view, seq)`, unless it already was.
    /// Requests clients wait for here that it leaves without a chance to
    /// execute (others under its timestamp, once it runs) go into
    /// `conflicts`, so that their clients can be told.
    pub(crate) fn execute<S: Service>(
        &mut self,
        service: &mut S,
        request: &Request,
        digest: Digest,
        view: View,
        seq: Seq,
        conflicts: &mut Vec<Request>,
    ) -> ExecResult {
        let Some(t) = request.timestamp else {
            self.acked.remove(request);
            return service.execute(&request.operation);
        };
        let key = (request.client.clone(), t);
        if self.in_log.get(&key).is_some_and(|&(_, at)| at == seq) {
            // Only its own entry: another request under `t` may be in the
            // log at another number.
            self.in_log.remove(&key);
        }
        let prior = self.prior(&request.client, t, || digest);
        if let Prior::After(latest) = prior {
            if t - latest > self.max_gap {
                // Not the client's record to move, nor its waits to settle:
                // the next request of the client is still judged against
                // `latest`.
                self.awaiting_order.remove(request);
                self.acked.remove(request);
                return ExecResult::Error(format!(
                    "request refused: timestamp {t} is more than {} ahead of this client's \
                     last executed timestamp ({latest})",
                    self.max_gap
                ));
            }
            // This client no longer waits here for this request or any
            // older one, nor for another under `t`: once this one runs,
            // that one never can, and its client is told.
            // Only a client's own wait is told: a peer that relayed one
            // tells its own client.
            self.awaiting_order
                .settle_noting(request, t, |wait| wait.here, conflicts);
            self.acked.settle_noting(request, t, |()| true, conflicts);
        } else {
            // The same: this client no longer waits here for this request
            // or any older one.
            self.awaiting_order.settle(&request.client, t);
            self.acked.settle(&request.client, t);
        }
        match prior {
            Prior::Same => return self.last_reply[&request.client].result.clone(),
            Prior::Conflict => {
                // Ordered twice under one timestamp: the first one's result
                // belongs to the first one only.
                return ExecResult::Error(format!(
                    "request refused: timestamp {t} of this client was already used by \
                     another request"
                ));
            }
            Prior::Superseded(latest) => {
                return ExecResult::Error(format!(
                    "request superseded: timestamp {latest} of this client was already executed"
                ));
            }
            Prior::After(_) => {}
        }
        let result = service.execute(&request.operation);
        let last = LastReply {
            timestamp: t,
            digest,
            view,
            seq,
            result: result.clone(),
        };
        // In place when the client has a record: one lookup, no new key.
        match self.last_reply.get_mut(&request.client) {
            Some(record) => *record = last,
            None => {
                self.last_reply.insert(request.client.clone(), last);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::KvService;

    #[test]
    fn a_restored_table_still_tells_the_executed_request_from_another() {
        let mut table = ClientTable::default();
        let mut kv = KvService::default();
        let executed = Request::new("c1", Some(1), "set k=666");
        table.execute(
            &mut kv,
            &executed,
            executed.digest(),
            View(0),
            Seq(1),
            &mut Vec::new(),
        );
        let mut restored = ClientTable::default();
        restored.restore(&table.snapshot()).expect("restores");
        assert_eq!(restored.snapshot(), table.snapshot());
        assert_eq!(
            restored.classify(&executed, |_| false),
            Known::Ordered {
                view: View(0),
                seq: Seq(1)
            }
        );
        let real = Request::new("c1", Some(1), "set k=1");
        assert_eq!(
            restored.classify(&real, |_| false),
            Known::Conflict { timestamp: 1 }
        );
        assert_eq!(restored.cached_result(&real), None);
        assert!(matches!(
            restored.execute(
                &mut kv,
                &real,
                real.digest(),
                View(0),
                Seq(2),
                &mut Vec::new()
            ),
            ExecResult::Error(_)
        ));
        assert_eq!(kv.get("k"), Some("666"), "the real one did not run");
    }

    #[test]
    fn a_restored_result_answers_only_its_own_waiting_request() {
        let mut source = ClientTable::default();
        let mut kv = KvService::default();
        let executed = Request::new("c1", Some(1), "set k=666");
        source.execute(
            &mut kv,
            &executed,
            executed.digest(),
            View(0),
            Seq(1),
            &mut Vec::new(),
        );
        let restored = || {
            let mut table = ClientTable::default();
            table.restore(&source.snapshot()).expect("restores");
            table
        };
        let mut behind = ClientTable::default();
        let real = Request::new("c1", Some(1), "set k=1");
        behind.await_order(real.clone(), 0, true);
        assert_eq!(
            behind.replace_replies(restored()),
            vec![Output::Refused {
                request: real,
                reason: Refusal::Conflict { timestamp: 1 }
            }],
            "another request's result is no answer"
        );
        assert!(behind.awaiting().is_empty());
        let mut behind = ClientTable::default();
        behind.await_order(executed.clone(), 0, true);
        assert_eq!(
            behind.replace_replies(restored()),
            vec![Output::Answered {
                request: executed,
                seq: Seq(1),
                result: ExecResult::Ok
            }]
        );
    }

    #[test]
    fn the_gap_is_measured_from_the_record() {
        let mut table = ClientTable::new(10);
        let mut kv = KvService::default();
        let far = Request::new("c1", Some(11), "set k=1");
        assert_eq!(
            table.classify(&far, |_| false),
            Known::TooFarAhead {
                timestamp: 11,
                latest: 0
            }
        );
        assert!(matches!(
            table.execute(
                &mut kv,
                &far,
                far.digest(),
                View(0),
                Seq(1),
                &mut Vec::new()
            ),
            ExecResult::Error(_)
        ));
        assert_eq!(kv.get("k"), None);
        let near = Request::new("c1", Some(10), "set k=2");
        assert_eq!(table.classify(&near, |_| false), Known::New);
        table.execute(
            &mut kv,
            &near,
            near.digest(),
            View(0),
            Seq(2),
            &mut Vec::new(),
        );
        assert_eq!(
            table.classify(&far, |_| false),
            Known::New,
            "now within the gap"
        );
    }
}
