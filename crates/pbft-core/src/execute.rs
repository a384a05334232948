//! Execution: committed batches run strictly in sequence order (§4.2).

use crate::durable::Record;
use crate::output::{Executed, Output, Refusal};
use crate::replica::Replica;
use crate::service::Service;

impl<S: Service> Replica<S> {
    /// Executes every committed slot that directly follows the last executed
    /// one. A committed slot after a gap waits until the gap is filled.
    /// As primary, each number executed makes room in flight for the
    /// requests held back meanwhile, which go out as one batch.
    pub(crate) fn execute_ready(&mut self, out: &mut Vec<Output>) {
        let before = self.last_executed;
        self.execute_committed(out);
        if self.last_executed > before {
            self.propose_pending(out);
        }
    }

    fn execute_committed(&mut self, out: &mut Vec<Output>) {
        loop {
            let seq = self.last_executed.next();
            let Some(slot) = self.log.get(seq) else {
                return;
            };
            let Some(pp) = slot.committed_pre_prepare().cloned() else {
                return;
            };
            // Committed by digest, but the batch is not here yet: it comes
            // from the new primary or from a peer (state transfer).
            let Some(batch) = pp
                .batch
                .clone()
                .or_else(|| slot.batch_for(pp.digest).cloned())
            else {
                return;
            };
            if self.durable {
                // Before the replies: what a client is told survives a crash.
                if let Some(cert) = slot.committed_certificate() {
                    self.persist(Record::Committed(cert), out);
                }
            }
            let mut conflicts = Vec::new();
            let results: Vec<_> = batch
                .with_digests()
                .map(|(request, digest)| {
                    let service = &mut self.service;
                    self.clients
                        .execute(service, request, digest, pp.view, seq, &mut conflicts)
                })
                .collect();
            if let Some(slot) = self.log.get_mut(seq) {
                slot.results = Some(results.clone());
            }
            self.last_executed = seq;
            out.push(Output::Executed(Executed {
                view: pp.view,
                seq,
                digest: pp.digest,
                batch,
                results,
            }));
            // Clients waiting here for a request whose timestamp another
            // one just took: it will never be ordered (§4.1).
            for request in conflicts {
                let Some(timestamp) = request.timestamp else {
                    continue;
                };
                out.push(Output::Refused {
                    request,
                    reason: Refusal::Conflict { timestamp },
                });
            }
            self.take_checkpoint(seq, out);
        }
    }
}
