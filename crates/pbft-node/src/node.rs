//! The node: decodes one input line, acts on it, and encodes the reply.
//!
//! The node makes no protocol decisions of its own; it translates between
//! the wire and [`Embedded`]'s cluster.

use log::warn;
use pbft_wire::{decode, request_from_body, status_ok_body, Body, Envelope, ErrorCode};

use crate::embedded::{Embedded, Reply};
use crate::reply::{bad_line, dropped_elsewhere, MsgIds};

/// A node process's state: its replicas once `init` arrives, and the one
/// `msg_id` counter for everything it sends.
#[derive(Default)]
pub struct Node {
    embedded: Option<Embedded>,
    ids: MsgIds,
}

impl Node {
    /// A node waiting for `init`.
    pub fn new() -> Node {
        Node::default()
    }

    /// Handles one input line and returns the reply to write, if any.
    /// Never panics, whatever the line holds.
    pub fn handle_line(&mut self, line: &str) -> Option<Envelope> {
        if line.trim().is_empty() {
            return None;
        }
        match decode(line) {
            Ok(envelope) => self.handle(envelope),
            Err(error) => {
                let (code, header) = bad_line(&error, |dest| self.elsewhere(dest))?;
                let (src, dest) = (self.own_name(&header.dest), header.src.clone());
                Some(
                    self.ids
                        .error(src, dest, header.msg_id, code, error.to_string()),
                )
            }
        }
    }

    fn handle(&mut self, envelope: Envelope) -> Option<Envelope> {
        let Envelope { src, dest, body } = envelope;
        if self.elsewhere(&dest) {
            dropped_elsewhere(&body, &src, &dest);
            return None;
        }
        let me = self.own_name(&dest);
        match body {
            Body::Init {
                msg_id,
                node_id,
                node_ids,
            } => Some(self.init(me, src, msg_id, &node_id, node_ids)),
            Body::PbftRequest { msg_id, .. } | Body::PbftStatus { msg_id, .. }
                if self.embedded.is_none() =>
            {
                let text = "the node is not initialised yet: send init first".to_string();
                Some(self.ids.error(
                    me,
                    src,
                    Some(msg_id),
                    ErrorCode::TemporarilyUnavailable,
                    text,
                ))
            }
            Body::PbftRequest { msg_id, .. } => {
                let reply = match request_from_body(&src, &body) {
                    Ok(request) => self.embedded.as_mut()?.request(request),
                    Err(problem) => Reply::Error {
                        code: ErrorCode::MalformedRequest,
                        text: problem.to_string(),
                    },
                };
                Some(match reply {
                    Reply::Ordered { view, seq } => {
                        let reply = Body::PbftRequestOk {
                            in_reply_to: msg_id,
                            msg_id: self.ids.take(),
                            sequence_number: seq,
                            view,
                            phase: "pre-prepare".to_string(),
                        };
                        envelope_to(me, src, reply)
                    }
                    Reply::Error { code, text } => {
                        self.ids.error(me, src, Some(msg_id), code, text)
                    }
                })
            }
            Body::PbftStatus {
                msg_id,
                sequence_number,
            } => {
                let status = self.embedded.as_ref()?.status(sequence_number);
                let reply = status_ok_body(msg_id, self.ids.take(), &status);
                Some(envelope_to(me, src, reply))
            }
            reply if reply.is_reply() => {
                // Replies are never answered, so two nodes cannot bounce
                // errors between each other forever.
                warn!("ignored an unsolicited {} from {src}", reply.type_name());
                None
            }
            other => {
                let text = format!(
                    "message type {:?} is not accepted by this node: it answers init, \
                     pbft_request and pbft_status, and hosts every replica itself",
                    other.type_name()
                );
                let msg_id = other.msg_id();
                Some(
                    self.ids
                        .error(me, src, msg_id, ErrorCode::NotSupported, text),
                )
            }
        }
    }

    fn init(
        &mut self,
        me: String,
        src: String,
        msg_id: u64,
        node_id: &str,
        node_ids: Vec<String>,
    ) -> Envelope {
        if let Some(existing) = &self.embedded {
            let text = format!("already initialised as {}", existing.name());
            return self
                .ids
                .error(me, src, Some(msg_id), ErrorCode::MalformedRequest, text);
        }
        match Embedded::new(node_id, node_ids) {
            Ok(embedded) => {
                self.embedded = Some(embedded);
                let reply = Body::InitOk {
                    in_reply_to: msg_id,
                    msg_id: self.ids.take(),
                };
                envelope_to(node_id.to_string(), src, reply)
            }
            Err(text) => self
                .ids
                .error(me, src, Some(msg_id), ErrorCode::MalformedRequest, text),
        }
    }

    /// Whether a line addressed to `dest` is for another node. Until
    /// `init` this node has no id of its own, so every line is for it.
    fn elsewhere(&self, dest: &str) -> bool {
        self.embedded.as_ref().is_some_and(|e| e.name() != dest)
    }

    /// The name replies are sent from: the node id once initialised,
    /// otherwise whatever the sender addressed.
    fn own_name(&self, addressed: &str) -> String {
        match &self.embedded {
            Some(embedded) => embedded.name().to_string(),
            None => addressed.to_string(),
        }
    }
}

fn envelope_to(src: String, dest: String, body: Body) -> Envelope {
    Envelope { src, dest, body }
}
