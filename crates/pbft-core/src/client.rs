//! Client requests: intake, forwarding, and at-most-once execution.
//!
//! A replica remembers, per client, the last request it executed and its
//! result (§4.1). A request with a timestamp at or below that record is
//! never executed again: a retry of the latest one is answered with the
//! sequence number it already has, and an older one is refused as stale.

use std::collections::HashMap;

use crate::by_client::ByClient;
use crate::canonical::{put_bytes, Reader};
use crate::message::Message;
use crate::output::{Destination, Ordered, Output, Refusal};
use crate::pending::Held;
use crate::rejection::Rejection;
use crate::replica::Replica;
use crate::request::{Batch, Request};
use crate::service::{ExecResult, Service};
use crate::types::{ClientId, Seq, View};

/// The last request executed for one client, and its result.
#[derive(Clone, Debug)]
struct LastReply {
    timestamp: u64,
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
}

/// Per-client bookkeeping.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientTable {
    last_reply: HashMap<ClientId, LastReply>,
    /// Timestamped requests in accepted pre-prepares, not yet executed.
    in_log: HashMap<(ClientId, u64), (View, Seq)>,
    /// Requests clients gave this replica (as a backup), or that peers
    /// relayed to it, that no accepted pre-prepare holds yet: the
    /// view-change timer runs from the oldest (§4.4).
    awaiting_order: ByClient<Wait>,
    /// Requests whose clients this replica acknowledged, not executed yet.
    /// A view change can discard the pre-prepare they were acknowledged
    /// for; they then wait again.
    acked: ByClient<()>,
}

impl ClientTable {
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
        };
        self.awaiting_order.insert_if_absent(request, wait)
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

    /// Takes every request waiting here, with whether a client waits here
    /// for it.
    pub(crate) fn take_awaiting(&mut self) -> Vec<(Request, bool)> {
        self.awaiting_order
            .drain()
            .into_iter()
            .map(|(request, wait)| (request, wait.here))
            .collect()
    }

    /// The result of `request` if it is its client's latest executed one.
    pub(crate) fn cached_result(&self, request: &Request) -> Option<(Seq, ExecResult)> {
        let t = request.timestamp?;
        let last = self.last_reply.get(&request.client)?;
        (last.timestamp == t).then(|| (last.seq, last.result.clone()))
    }

    pub(crate) fn classify(&self, request: &Request) -> Known {
        let Some(t) = request.timestamp else {
            return Known::New;
        };
        if let Some(last) = self.last_reply.get(&request.client) {
            if t == last.timestamp {
                return Known::Ordered {
                    view: last.view,
                    seq: last.seq,
                };
            }
            if t < last.timestamp {
                return Known::Stale {
                    latest: last.timestamp,
                };
            }
        }
        match self.in_log.get(&(request.client.clone(), t)) {
            Some(&(view, seq)) => Known::Ordered { view, seq },
            None => Known::New,
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
    /// Returns the requests a client waits for here that the restored
    /// state executed last for their client, with their number and result:
    /// this replica never executes them itself, so it answers them now.
    pub(crate) fn replace_replies(
        &mut self,
        restored: ClientTable,
    ) -> Vec<(Request, Seq, ExecResult)> {
        self.last_reply = restored.last_reply;
        self.in_log.clear();
        // Requests the restored state executed are no longer waited for.
        let mut answers = Vec::new();
        for (client, last) in &self.last_reply {
            let waiting = self.awaiting_order.take_settled(client, last.timestamp);
            let mut settled: Vec<Request> = waiting
                .into_iter()
                .filter(|(_, wait)| wait.here)
                .map(|(request, _)| request)
                .collect();
            let acked = self.acked.take_settled(client, last.timestamp);
            settled.extend(acked.into_iter().map(|(request, ())| request));
            for request in settled {
                let answered = answers.iter().any(|(r, _, _)| *r == request);
                if request.timestamp == Some(last.timestamp) && !answered {
                    answers.push((request, last.seq, last.result.clone()));
                }
            }
        }
        answers.sort_by(|a, b| a.0.cmp(&b.0));
        answers
    }

    /// On a view change: numbers not yet executed may be reassigned, so
    /// acknowledged requests wait for the new view's pre-prepare again.
    pub(crate) fn requeue_unexecuted(&mut self, now: u64) {
        for (request, ()) in self.acked.drain() {
            self.await_order(request, now, true);
        }
        self.in_log.clear();
    }

    /// Executes `request`, ordered at `(view, seq)`, unless it already was.
    pub(crate) fn execute<S: Service>(
        &mut self,
        service: &mut S,
        request: &Request,
        view: View,
        seq: Seq,
    ) -> ExecResult {
        let Some(t) = request.timestamp else {
            self.acked.remove(request);
            return service.execute(&request.operation);
        };
        self.in_log.remove(&(request.client.clone(), t));
        // Whatever happens below, this client no longer waits here for
        // this request or any older one.
        self.awaiting_order.settle(&request.client, t);
        self.acked.settle(&request.client, t);
        if let Some(last) = self.last_reply.get(&request.client) {
            if t == last.timestamp {
                return last.result.clone();
            }
            if t < last.timestamp {
                return ExecResult::Error(format!(
                    "request superseded: timestamp {} of this client was already executed",
                    last.timestamp
                ));
            }
        }
        let result = service.execute(&request.operation);
        self.last_reply.insert(
            request.client.clone(),
            LastReply {
                timestamp: t,
                view,
                seq,
                result: result.clone(),
            },
        );
        result
    }
}

impl<S: Service> Replica<S> {
    /// A request straight from a client (§4.1). The primary orders it; a
    /// backup relays it to the primary and acknowledges it once a
    /// pre-prepare for it is accepted.
    pub(crate) fn on_client_request(&mut self, request: Request, out: &mut Vec<Output>) {
        let (size, limit) = (request.size(), self.max_request_bytes);
        if size > limit {
            out.push(Output::Refused {
                request,
                reason: Refusal::TooLarge { size, limit },
            });
            return;
        }
        if let Err(reason) = self.service.check(&request.operation) {
            out.push(Output::Refused {
                request,
                reason: Refusal::InvalidOperation(reason),
            });
            return;
        }
        match self.clients.classify(&request) {
            Known::Ordered { view, seq } => {
                // §4.1: a retry of an executed request gets its reply again.
                let cached = self.clients.cached_result(&request);
                out.push(Output::Ordered(Ordered {
                    request: request.clone(),
                    view,
                    seq,
                }));
                if let Some((seq, result)) = cached {
                    out.push(Output::Answered {
                        request,
                        seq,
                        result,
                    });
                }
            }
            Known::Stale { latest } => out.push(Output::Refused {
                request,
                reason: Refusal::Stale { latest },
            }),
            Known::New if self.is_primary() && self.vc.active => {
                self.order(request, true, out);
            }
            Known::New => {
                let first = self.clients.await_order(request.clone(), self.ticks, true);
                // While changing views, the primary the others follow may
                // still be that of a view this replica left (`follow.rs`):
                // every other replica gets the request the first time, and
                // the last installed view's primary a client's retry.
                let to = if self.vc.active {
                    Destination::Replica(self.primary())
                } else if first {
                    self.clients.note_relayed(&request);
                    Destination::Others
                } else {
                    Destination::Replica(self.quorums.primary(self.vc.last_installed))
                };
                self.send(to, Message::Forward(request), out);
            }
        }
    }

    /// A request a backup relayed to this replica.
    pub(crate) fn on_forward(
        &mut self,
        request: Request,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        self.check_request_size(&request)?;
        self.service
            .check(&request.operation)
            .map_err(Rejection::InvalidOperation)?;
        if !self.is_primary() || !self.vc.active {
            return self.on_relayed(request, out);
        }
        if self.clients.classify(&request) == Known::New && !self.order(request, false, out) {
            return Err(Rejection::Overloaded);
        }
        Ok(())
    }

    /// A request another backup relayed here, because the primary did
    /// not order it in time or because that backup is changing views.
    /// This replica waits for it too, so its own timer runs (§4.4), and
    /// passes it to the primary once: a request heard by one honest
    /// replica reaches the primary, or else every honest backup's timer
    /// runs. Relayed requests are never relayed again from here, so a
    /// request costs at most `n` copies per wait.
    fn on_relayed(&mut self, request: Request, out: &mut Vec<Output>) -> Result<(), Rejection> {
        if self.clients.classify(&request) != Known::New {
            return Ok(());
        }
        if self.clients.awaiting_len() >= MAX_RELAYED_WAITS {
            return Err(Rejection::Overloaded);
        }
        let first = self.clients.await_order(request.clone(), self.ticks, false);
        if first && self.vc.active {
            self.send(
                Destination::Replica(self.primary()),
                Message::Forward(request),
                out,
            );
        }
        Ok(())
    }

    /// Rejects a request from a peer that is larger than this replica
    /// accepts from its clients.
    pub(crate) fn check_request_size(&self, request: &Request) -> Result<(), Rejection> {
        let (size, limit) = (request.size(), self.max_request_bytes);
        if size > limit {
            return Err(Rejection::RequestTooLarge { size, limit });
        }
        Ok(())
    }

    /// A backup's clients' requests that have waited half a base timeout
    /// for the primary to order them go to every other replica, once, so
    /// that every honest backup's timer runs for them (and, while this
    /// replica changes views, so that the primary the others follow hears
    /// of them). A request a peer relayed here is not relayed again: the
    /// peer sent it to every replica. On each tick.
    pub(crate) fn relay_waiting(&mut self, out: &mut Vec<Output>) {
        if self.is_primary() && self.vc.active {
            return;
        }
        let half = (self.vc_base_timeout() / 2).max(1);
        for request in self.clients.take_due_relays(self.ticks, half) {
            self.send(Destination::Others, Message::Forward(request), out);
        }
    }

    /// As primary: orders `request` now, alone, if there is room for
    /// another number in flight, or holds it until a number executes or a
    /// stable checkpoint moves the window (§4.3: the primary never assigns
    /// a number above `H`); held requests then go out in batches (§5.1).
    /// `ack` says whether a client waits here for the acknowledgement.
    ///
    /// Returns false when the request could not even be held back because
    /// [`MAX_PENDING`](crate::pending::MAX_PENDING) requests, or
    /// [`MAX_PENDING_BYTES`](crate::pending::MAX_PENDING_BYTES) bytes of
    /// them, already are.
    fn order(&mut self, request: Request, ack: bool, out: &mut Vec<Output>) -> bool {
        if self.vc.active && self.pending.is_empty() && self.room_in_flight() {
            self.propose_batch(vec![(request, ack)], out);
            return true;
        }
        match self.pending.hold(request.clone(), ack) {
            Held::Queued | Held::Merged => true,
            Held::Full => {
                if ack {
                    out.push(Output::Refused {
                        request,
                        reason: Refusal::Overloaded,
                    });
                }
                false
            }
        }
    }

    /// Whether the primary may assign another number now: one more stays
    /// within the window and within `max_in_flight` numbers not yet
    /// executed.
    fn room_in_flight(&self) -> bool {
        let next = self.last_assigned.next();
        let in_flight = self.last_assigned.0.saturating_sub(self.last_executed.0);
        next <= self.checkpoints.high() && in_flight < self.max_in_flight
    }

    /// Proposes `requests` as one batch, with the acknowledgements of the
    /// ones a client waits for here placed before the pre-prepare they
    /// announce.
    fn propose_batch(&mut self, requests: Vec<(Request, bool)>, out: &mut Vec<Output>) {
        let at = out.len();
        let acked: Vec<Request> = requests
            .iter()
            .filter(|(_, ack)| *ack)
            .map(|(request, _)| request.clone())
            .collect();
        let batch = Batch::new(requests.into_iter().map(|(request, _)| request).collect());
        let seq = self.propose(batch, out);
        let view = self.view;
        for (i, request) in acked.into_iter().enumerate() {
            self.clients.note_acked(&request);
            out.insert(at + i, Output::Ordered(Ordered { request, view, seq }));
        }
    }

    /// Proposes held-back requests, in batches of at most `max_batch`
    /// requests and `max_batch_bytes` bytes, while there is room in
    /// flight.
    pub(crate) fn propose_pending(&mut self, out: &mut Vec<Output>) {
        if !self.is_primary() || !self.vc.active {
            return;
        }
        while !self.pending.is_empty() && self.room_in_flight() {
            let mut batch = Vec::new();
            let mut bytes = 0usize;
            while batch.len() < self.max_batch {
                // Bounded by bytes too: a batch always fits one message.
                let fits = self.pending.front_size().is_some_and(|size| {
                    batch.is_empty() || bytes.saturating_add(size) <= self.max_batch_bytes
                });
                if !fits {
                    break;
                }
                let Some((request, ack)) = self.pending.pop_front() else {
                    break;
                };
                match self.clients.classify(&request) {
                    Known::New => {
                        bytes = bytes.saturating_add(request.size());
                        batch.push((request, ack));
                    }
                    Known::Ordered { view, seq } if ack => {
                        out.push(Output::Ordered(Ordered { request, view, seq }))
                    }
                    Known::Stale { latest } if ack => out.push(Output::Refused {
                        request,
                        reason: Refusal::Stale { latest },
                    }),
                    Known::Ordered { .. } | Known::Stale { .. } => {}
                }
            }
            if !batch.is_empty() {
                self.propose_batch(batch, out);
            }
        }
    }
}
