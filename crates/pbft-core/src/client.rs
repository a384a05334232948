//! Client requests: intake, forwarding, and at-most-once execution.
//!
//! A replica remembers, per client, the last request it executed and its
//! result (§4.1). A request with a timestamp at or below that record is
//! never executed again, and a retry is answered with the sequence number
//! the request already has.

use std::collections::HashMap;

use crate::message::Message;
use crate::output::{Destination, Ordered, Output, Refusal};
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
enum Known {
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
    /// pre-prepare holds yet, with how many times each was submitted.
    awaiting_order: HashMap<Request, usize>,
}

impl ClientTable {
    fn classify(&self, request: &Request) -> Known {
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
        match self.awaiting_order.get_mut(request) {
            Some(count) => {
                *count -= 1;
                if *count == 0 {
                    self.awaiting_order.remove(request);
                }
                true
            }
            None => false,
        }
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
            return service.execute(&request.operation);
        };
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
        self.in_log.remove(&(request.client.clone(), t));
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
                out.push(Output::Ordered(Ordered { request, view, seq }))
            }
            Known::Stale { latest } => out.push(Output::Refused {
                request,
                reason: Refusal::Stale { latest },
            }),
            Known::New if self.is_primary() => {
                let (view, seq) = (self.view, self.last_assigned.next());
                out.push(Output::Ordered(Ordered {
                    request: request.clone(),
                    view,
                    seq,
                }));
                self.propose(Batch::single(request), out);
            }
            Known::New => {
                *self
                    .clients
                    .awaiting_order
                    .entry(request.clone())
                    .or_insert(0) += 1;
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
        if self.clients.classify(&request) == Known::New {
            self.propose(Batch::single(request), out);
        }
        Ok(())
    }
}
