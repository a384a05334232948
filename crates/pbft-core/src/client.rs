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
    /// Requests clients gave this replica (as a backup) that no accepted
    /// pre-prepare holds yet, with the tick the wait began: the
    /// view-change timer runs from the oldest (§4.4).
    awaiting_order: ByClient<u64>,
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

    /// Notes that a client waits here, since tick `now`, for `request` to
    /// be ordered. A retry keeps the original start.
    pub(crate) fn await_order(&mut self, request: Request, now: u64) {
        self.awaiting_order.insert_if_absent(request, now);
    }

    /// The tick the oldest wait began, if a client waits here.
    pub(crate) fn oldest_wait(&self) -> Option<u64> {
        self.awaiting_order.values().min().copied()
    }

    /// Starts every wait over at `now`: a new view gets a full timeout.
    pub(crate) fn restart_waits(&mut self, now: u64) {
        for since in self.awaiting_order.values_mut() {
            *since = now;
        }
    }

    /// The requests clients wait for here, in a deterministic order.
    pub(crate) fn awaiting(&self) -> Vec<Request> {
        self.awaiting_order
            .requests()
            .into_iter()
            .cloned()
            .collect()
    }

    /// Takes every request clients wait for here.
    pub(crate) fn take_awaiting(&mut self) -> Vec<Request> {
        self.awaiting_order
            .drain()
            .into_iter()
            .map(|(request, _)| request)
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
        if self.awaiting_order.remove(request).is_some() {
            self.note_acked(request);
            true
        } else {
            false
        }
    }

    /// Notes that a client was told `request` has a number.
    pub(crate) fn note_acked(&mut self, request: &Request) {
        self.acked.insert_if_absent(request.clone(), ());
    }

    /// Takes the last replies of a table restored from a checkpoint. Numbers
    /// in the log are reassigned from here on, so the index of ordered
    /// requests starts over.
    pub(crate) fn replace_replies(&mut self, restored: ClientTable) {
        self.last_reply = restored.last_reply;
        self.in_log.clear();
        // Requests the restored state executed are no longer waited for.
        for (client, last) in &self.last_reply {
            self.awaiting_order.settle(client, last.timestamp);
            self.acked.settle(client, last.timestamp);
        }
    }

    /// On a view change: numbers not yet executed may be reassigned, so
    /// acknowledged requests wait for the new view's pre-prepare again.
    pub(crate) fn requeue_unexecuted(&mut self, now: u64) {
        for (request, ()) in self.acked.drain() {
            self.awaiting_order.insert_if_absent(request, now);
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
            Known::New if self.is_primary() => {
                self.order(request, true, out);
            }
            Known::New => {
                self.clients.await_order(request.clone(), self.ticks);
                self.send(
                    Destination::Replica(self.primary()),
                    Message::Forward(request),
                    out,
                );
            }
        }
    }

    /// A request a backup relayed to this replica.
    pub(crate) fn on_forward(
        &mut self,
        request: Request,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        if !self.is_primary() {
            return Err(Rejection::ForwardToBackup);
        }
        self.service
            .check(&request.operation)
            .map_err(Rejection::InvalidOperation)?;
        if self.clients.classify(&request) == Known::New && !self.order(request, false, out) {
            return Err(Rejection::Overloaded);
        }
        Ok(())
    }

    /// As primary: orders `request` now, alone, if there is room for
    /// another number in flight, or holds it until a number executes or a
    /// stable checkpoint moves the window (§4.3: the primary never assigns
    /// a number above `H`); held requests then go out in batches (§5.1).
    /// `ack` says whether a client waits here for the acknowledgement.
    ///
    /// Returns false when the request could not even be held back because
    /// [`MAX_PENDING`](crate::pending::MAX_PENDING) requests already are.
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

    /// Proposes held-back requests, in batches of at most `max_batch`,
    /// while there is room in flight.
    pub(crate) fn propose_pending(&mut self, out: &mut Vec<Output>) {
        if !self.is_primary() || !self.vc.active {
            return;
        }
        while !self.pending.is_empty() && self.room_in_flight() {
            let mut batch = Vec::new();
            while batch.len() < self.max_batch {
                let Some((request, ack)) = self.pending.pop_front() else {
                    break;
                };
                match self.clients.classify(&request) {
                    Known::New => batch.push((request, ack)),
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
