//! The embedded default: one process hosts every replica of `node_ids` on
//! an in-process [`Cluster`] and answers clients as the `node_id` it was
//! given in `init`.
//!
//! Each client request runs through all three phases before the next input
//! line is read, so a `pbft_status` sent right after a `pbft_request` sees
//! the number committed and executed.

use crate::replica_node::log_rejected;
use log::{debug, info};
use pbft_core::{Cluster, KvService, Output, Refusal, ReplicaId, Request, Seq};
use pbft_wire::{Directory, ErrorCode};

/// The most replicas one embedded process hosts.
pub const MAX_REPLICAS: usize = 256;

/// The replicas and who this process answers as.
pub struct Embedded {
    directory: Directory,
    me: ReplicaId,
    cluster: Cluster<KvService>,
}

impl Embedded {
    /// Builds the cluster for an `init` message. The error is the text of
    /// a malformed-request reply.
    pub fn new(node_id: &str, node_ids: Vec<String>) -> Result<Embedded, String> {
        if node_ids.len() > MAX_REPLICAS {
            return Err(format!(
                "node_ids lists {} nodes; the embedded default hosts at most {MAX_REPLICAS}, \
                 because every request costs n * n in-process messages",
                node_ids.len()
            ));
        }
        let directory = Directory::new(node_ids).map_err(|e| format!("invalid node_ids: {e}"))?;
        let me = directory
            .id_of(node_id)
            .ok_or_else(|| format!("node_id {node_id:?} is not in node_ids"))?;
        let cluster = Cluster::kv(directory.len()).map_err(|e| e.to_string())?;
        info!(
            "hosting {} replicas in-process (f = {}), answering as {node_id}",
            directory.len(),
            cluster.replica(me).quorums().f()
        );
        Ok(Embedded {
            directory,
            me,
            cluster,
        })
    }

    /// This process's node id.
    pub fn name(&self) -> &str {
        self.name_of(self.me)
    }

    fn name_of(&self, id: ReplicaId) -> &str {
        self.directory.name_of(id).unwrap_or("?")
    }

    /// Hands a client request to this node's replica and runs the cluster
    /// until it is quiet. Returns the acknowledgement or refusal.
    pub fn request(&mut self, request: Request) -> Reply {
        self.cluster.submit(self.me, request.clone());
        self.run_to_quiescence();
        let mut reply = None;
        for event in self.cluster.take_events() {
            let at = self.name_of(event.replica).to_string();
            match event.output {
                Output::Ordered(o) if event.replica == self.me && o.request == request => {
                    reply.get_or_insert(Reply::Ordered {
                        view: o.view.0,
                        seq: o.seq.0,
                    });
                }
                Output::Refused { request: r, reason }
                    if event.replica == self.me && r == request =>
                {
                    reply.get_or_insert(refusal_reply(&reason));
                }
                Output::Executed(x) => {
                    for (req, result) in x.batch.requests().iter().zip(&x.results) {
                        info!("{at} executed {} {:?} -> {result}", x.seq, &*req.operation);
                    }
                }
                Output::Rejected { from, kind, reason } => {
                    let at = format!("{at} ");
                    log_rejected(&at, kind, self.name_of(from), &reason);
                }
                other => debug!("{at}: {other:?}"),
            }
        }
        reply.unwrap_or_else(|| Reply::Error {
            code: ErrorCode::TemporarilyUnavailable,
            text: "the request was not ordered; try again".to_string(),
        })
    }

    /// Answers a status query from this node's replica's log.
    pub fn status(&self, seq: u64) -> pbft_core::SlotStatus {
        self.cluster.replica(self.me).status(Seq(seq))
    }

    /// Delivers every message in flight, logging each one at debug level so
    /// that `RUST_LOG=debug` shows the three phases.
    fn run_to_quiescence(&mut self) {
        loop {
            if log::log_enabled!(log::Level::Debug) {
                if let Some(e) = self.cluster.in_flight().next() {
                    let (from, to) = (self.name_of(e.from), self.name_of(e.to));
                    match self.directory.message_to_body(&e.signed, None) {
                        Ok(body) => debug!(
                            "{}",
                            pbft_wire::encode(&pbft_wire::Envelope {
                                src: from.to_string(),
                                dest: to.to_string(),
                                body,
                            })
                        ),
                        Err(error) => debug!("{from} -> {to}: {error}"),
                    }
                }
            }
            if !self.cluster.deliver_next() {
                return;
            }
        }
    }
}

fn refusal_reply(reason: &Refusal) -> Reply {
    Reply::Error {
        code: crate::reply::refusal_code(reason),
        text: reason.to_string(),
    }
}

/// The answer to a client request.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// The request has this number, assigned in this view.
    Ordered {
        /// The view of the pre-prepare.
        view: u64,
        /// The sequence number.
        seq: u64,
    },
    /// The request was refused.
    Error {
        /// The Maelstrom error code.
        code: ErrorCode,
        /// What is wrong.
        text: String,
    },
}
