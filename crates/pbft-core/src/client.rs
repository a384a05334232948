//! Client requests at a replica: intake, relaying to the primary, and
//! the primary's proposals of held requests. What a replica remembers per
//! client, and at-most-once execution, are in `client_table.rs`.

use crate::message::Message;
use crate::output::{Destination, Ordered, Output, Refusal};
use crate::pending::Held;
use crate::rejection::Rejection;
use crate::replica::Replica;
use crate::request::{Batch, Request};
use crate::service::Service;
use crate::types::{Seq, View};

use crate::client_table::{Known, MAX_RELAYED_WAITS};

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
        let known = self.classify(&request);
        // A new request the primary orders is checked with the batch it
        // goes out in, as the backups will check it (`order`); any other
        // is checked now, before it is answered or passed on.
        let ordered_here = known == Known::New && self.is_primary() && self.vc.active;
        if !ordered_here {
            if let Err(failure) = self.client_keys.check(&request) {
                out.push(Output::Refused {
                    request,
                    reason: Refusal::Unauthentic(failure),
                });
                return;
            }
        }
        match known {
            Known::Ordered { view, seq } => self.tell_ordered(request, view, seq, out),
            Known::Stale { latest } => out.push(Output::Refused {
                request,
                reason: Refusal::Stale { latest },
            }),
            Known::Conflict { timestamp } => out.push(Output::Refused {
                request,
                reason: Refusal::Conflict { timestamp },
            }),
            Known::TooFarAhead { timestamp, latest } => {
                let max_gap = self.clients.max_gap;
                out.push(Output::Refused {
                    request,
                    reason: Refusal::TooFarAhead {
                        timestamp,
                        latest,
                        max_gap,
                    },
                });
            }
            Known::New if ordered_here => {
                self.order(request, true, false, out);
            }
            Known::New => {
                let first = self.clients.await_order(request.clone(), self.ticks, true);
                // While changing views, the primary the others follow may
                // still be that of a view this replica left (`follow.rs`):
                // every other replica gets the request the first time, and
                // the last installed view's primary a client's retry. When
                // that primary is this replica, a retry goes to every other
                // replica only if they were not all sent the request since
                // this view change began; otherwise to the primary of the
                // view being changed to, which holds it for when that view
                // starts. A client that multicasts its retries (§4.1) would
                // else cost `n - 1` copies of its request per retry at such
                // a replica, for as long as the view change lasts.
                let followed = self.quorums.primary(self.vc.last_installed);
                let to = if self.vc.active {
                    Destination::Replica(self.primary())
                } else if first || (followed == self.id && !self.clients.is_relayed(&request)) {
                    self.clients.note_relayed(&request);
                    Destination::Others
                } else if followed != self.id {
                    Destination::Replica(followed)
                } else if self.primary() != self.id {
                    Destination::Replica(self.primary())
                } else {
                    // It waits here for the view this replica will lead.
                    return;
                };
                self.send(to, Message::Forward(request), out);
            }
        }
    }

    /// Tells the client waiting here for `request` that it has number
    /// `seq` in `view` and, when it is the client's last executed request,
    /// its result too (§4.1: a retry of an executed request gets its reply
    /// again). A request not executed yet is noted as acknowledged, as one
    /// this replica proposes or sees pre-prepared is: a view change that
    /// discards its pre-prepare makes it wait here again, and a restored
    /// checkpoint that executed it answers it.
    fn tell_ordered(&mut self, request: Request, view: View, seq: Seq, out: &mut Vec<Output>) {
        let cached = self.clients.cached_result(&request);
        if cached.is_none() {
            self.clients.note_acked(&request);
        }
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

    /// A request a backup relayed to this replica.
    pub(crate) fn on_forward(
        &mut self,
        request: Request,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        self.check_request_size(&request)?;
        self.check_client_signature(&request)?;
        self.service
            .check(&request.operation)
            .map_err(Rejection::InvalidOperation)?;
        // A relayed request passes the same checks as one the primary is
        // to order: a backup waits only for what a primary would order.
        let known = self.classify(&request);
        if let Known::TooFarAhead { timestamp, latest } = known {
            return Err(Rejection::TimestampTooFarAhead {
                client: request.client,
                timestamp,
                latest,
            });
        }
        if !self.is_primary() || !self.vc.active {
            return self.on_relayed(request, known, out);
        }
        if known == Known::New && !self.order(request, false, true, out) {
            return Err(Rejection::Overloaded);
        }
        Ok(())
    }

    /// What this replica knows about `request`: its client table, with an
    /// entry of the log index counted only if the pre-prepare it names
    /// holds this very request (the same client, timestamp and operation,
    /// so the same digest).
    pub(crate) fn classify(&self, request: &Request) -> Known {
        self.clients.classify(request, |seq| {
            self.log
                .get(seq)
                .and_then(|slot| slot.pre_prepare.as_ref())
                .is_some_and(|pp| {
                    pp.batch
                        .as_ref()
                        .is_some_and(|b| b.requests().contains(request))
                })
        })
    }

    /// Checks that a request a peer hands over (relayed, or in a
    /// pre-prepare) carries its client's valid signature when the client
    /// has a configured key.
    pub(crate) fn check_client_signature(&self, request: &Request) -> Result<(), Rejection> {
        self.client_keys
            .check(request)
            .map_err(|failure| Rejection::UnauthenticRequest {
                client: request.client.clone(),
                failure,
            })
    }

    /// A request another backup relayed here, because the primary did
    /// not order it in time or because that backup is changing views.
    /// This replica waits for it too, so its own timer runs (§4.4), and
    /// passes it to the primary once: a request heard by one honest
    /// replica reaches the primary, or else every honest backup's timer
    /// runs. Relayed requests are never relayed again from here, so a
    /// request costs at most `n` copies per wait.
    /// `known` is what this replica knows of it.
    fn on_relayed(
        &mut self,
        request: Request,
        known: Known,
        out: &mut Vec<Output>,
    ) -> Result<(), Rejection> {
        if known != Known::New {
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
    ///
    /// The client's signature may be unchecked yet (`checked` says whether
    /// it was): it is checked with the batch the request goes out in (see
    /// [`propose_batch`](Self::propose_batch)).
    fn order(&mut self, request: Request, ack: bool, checked: bool, out: &mut Vec<Output>) -> bool {
        if self.vc.active && self.pending.is_empty() && self.room_in_flight(1, request.size()) {
            self.propose_batch(vec![request], vec![ack], out);
            return true;
        }
        let keys = &self.client_keys;
        match self
            .pending
            .hold(request.clone(), ack, checked, |r| keys.check(r).is_ok())
        {
            Held::Queued | Held::Merged => {
                // Enough may be held now for another number in flight.
                self.propose_pending(out);
                true
            }
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

    /// Whether the primary may assign another number now, to a batch of
    /// `count` requests and `bytes` bytes: one more stays within the window
    /// and within `max_in_flight` numbers not yet executed, and a number
    /// beyond the first in flight comes with a batch worth it.
    ///
    /// With `k` numbers in flight, the next one needs `k / max_in_flight`
    /// of a full batch (by count or by bytes). Each number costs its three
    /// phases' messages and signatures whatever its batch holds, so under
    /// load batches grow rather than the numbers in flight, while with
    /// nothing in flight a request still goes out at once, alone. Full
    /// batches still fill the whole window of `max_in_flight`.
    fn room_in_flight(&self, count: usize, bytes: usize) -> bool {
        let next = self.last_assigned.next();
        let in_flight = self.last_assigned.0.saturating_sub(self.last_executed.0);
        if next > self.checkpoints.high() || in_flight >= self.max_in_flight {
            return false;
        }
        let share = |full: usize| {
            let wanted = (full as u128 * in_flight as u128) / self.max_in_flight as u128;
            wanted as usize
        };
        count >= share(self.max_batch) || bytes >= share(self.max_batch_bytes)
    }

    /// Proposes `requests` as one batch, with the acknowledgements of the
    /// ones a client waits for here (`acks[i]` for `requests[i]`) placed
    /// before the pre-prepare they announce.
    ///
    /// First the clients' signatures are checked as the backups will check
    /// them, together over the whole batch
    /// ([`ClientKeys::check_all`](crate::client_keys::ClientKeys::check_all)):
    /// one Ed25519 batch verification costs well under half of checking
    /// each request as it arrives. If the batch fails, each request is
    /// checked alone, once, and those that fail are refused. The rest pass
    /// any batch check, the backups' included, since a signature that
    /// passes the strict check satisfies the batch equation exactly; so a
    /// faulty client can neither make the batch fail at the backups nor
    /// cost the primary more than one check of each request.
    fn propose_batch(
        &mut self,
        mut requests: Vec<Request>,
        mut acks: Vec<bool>,
        out: &mut Vec<Output>,
    ) {
        if self.client_keys.check_all(&requests).is_err() {
            let mut kept = (Vec::new(), Vec::new());
            for (request, ack) in requests.into_iter().zip(acks) {
                match self.client_keys.check(&request) {
                    Ok(()) => {
                        kept.0.push(request);
                        kept.1.push(ack);
                    }
                    Err(failure) if ack => out.push(Output::Refused {
                        request,
                        reason: Refusal::Unauthentic(failure),
                    }),
                    Err(_) => {}
                }
            }
            (requests, acks) = kept;
        }
        if requests.is_empty() {
            return;
        }
        let at = out.len();
        let acked: Vec<Request> = requests
            .iter()
            .zip(&acks)
            .filter(|(_, ack)| **ack)
            .map(|(request, _)| request.clone())
            .collect();
        let batch = Batch::new(requests);
        let seq = self.propose(batch, out);
        let view = self.view;
        for (i, request) in acked.into_iter().enumerate() {
            self.clients.note_acked(&request);
            out.insert(at + i, Output::Ordered(Ordered { request, view, seq }));
        }
    }

    /// Proposes held-back requests, in batches of at most `max_batch`
    /// requests and `max_batch_bytes` bytes, while there is room in
    /// flight for batches worth a number.
    pub(crate) fn propose_pending(&mut self, out: &mut Vec<Output>) {
        self.propose_held(false, out);
    }

    /// Once a tick, proposes what is held whatever its size, while there
    /// is room in flight: a number stuck waiting for lost messages to be
    /// sent again then delays the requests behind it by one tick at most,
    /// rather than until it executes.
    pub(crate) fn propose_held_any(&mut self, out: &mut Vec<Output>) {
        self.propose_held(true, out);
    }

    fn propose_held(&mut self, any_size: bool, out: &mut Vec<Output>) {
        if !self.is_primary() || !self.vc.active {
            return;
        }
        while !self.pending.is_empty()
            && (self.room_in_flight(self.pending.len(), self.pending.bytes())
                || any_size && self.room_in_flight(usize::MAX, usize::MAX))
        {
            let (mut batch, mut acks) = (Vec::new(), Vec::new());
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
                let known = self.classify(&request);
                // Held unchecked: a request with a bad signature gets no
                // answer (a new one is refused with its batch's check).
                if known != Known::New && self.client_keys.check(&request).is_err() {
                    continue;
                }
                match known {
                    Known::New => {
                        bytes = bytes.saturating_add(request.size());
                        batch.push(request);
                        acks.push(ack);
                    }
                    // Settled while it was held: by a checkpoint this
                    // replica restored, say, so that it never executes the
                    // request itself and its client is answered now.
                    Known::Ordered { view, seq } if ack => {
                        self.tell_ordered(request, view, seq, out)
                    }
                    Known::Stale { latest } if ack => out.push(Output::Refused {
                        request,
                        reason: Refusal::Stale { latest },
                    }),
                    Known::Conflict { timestamp } if ack => out.push(Output::Refused {
                        request,
                        reason: Refusal::Conflict { timestamp },
                    }),
                    // Held only while it was within the gap, and the
                    // client's record only moves forward.
                    Known::Ordered { .. }
                    | Known::Stale { .. }
                    | Known::Conflict { .. }
                    | Known::TooFarAhead { .. } => {}
                }
            }
            if !batch.is_empty() {
                self.propose_batch(batch, acks, out);
            }
        }
    }
}
