//! The one `msg_id` counter of a node process, and the error reply every
//! mode sends the same way, to the lines every mode drops or answers the
//! same way.

use log::warn;
use pbft_core::Refusal;
use pbft_wire::{Body, DecodeError, Envelope, ErrorCode, Header};

/// The error code a refused client request is answered with.
///
/// A stale request is aborted (14) and a conflicting one (another request
/// under its timestamp executed) is a conflict (30), both definite: the
/// request never executes. A request without its client's valid
/// signature, too large or with an operation the service refuses is
/// malformed (12), which every honest replica says alike. An overloaded
/// primary, and a timestamp too far ahead of what this replica has
/// executed for the client (which depends on how far behind the replica
/// is), are temporarily unavailable (11): a client asks again.
pub fn refusal_code(reason: &Refusal) -> ErrorCode {
    match reason {
        Refusal::InvalidOperation(_) | Refusal::Unauthentic(_) | Refusal::TooLarge { .. } => {
            ErrorCode::MalformedRequest
        }
        Refusal::Stale { .. } => ErrorCode::Abort,
        Refusal::Conflict { .. } => ErrorCode::TxnConflict,
        Refusal::Overloaded | Refusal::TooFarAhead { .. } => ErrorCode::TemporarilyUnavailable,
    }
}

/// Numbers every message the process sends, from 0, one apart.
#[derive(Debug, Default)]
pub struct MsgIds {
    next: u64,
}

impl MsgIds {
    /// The next `msg_id`.
    pub fn take(&mut self) -> u64 {
        let id = self.next;
        self.next += 1;
        id
    }

    /// An `error` reply from `src` to `dest`.
    pub fn error(
        &mut self,
        src: String,
        dest: String,
        in_reply_to: Option<u64>,
        code: ErrorCode,
        text: String,
    ) -> Envelope {
        let body = Body::Error {
            in_reply_to,
            msg_id: Some(self.take()),
            code: code.code(),
            text,
        };
        Envelope { src, dest, body }
    }
}

/// A line that did not decode, as every mode takes it: one addressed to
/// another node (`elsewhere` says which) is dropped, any other is logged,
/// and the code and header to answer it with are returned when the line
/// had a usable sender.
pub(crate) fn bad_line(
    error: &DecodeError,
    elsewhere: impl Fn(&str) -> bool,
) -> Option<(ErrorCode, &Header)> {
    if let Some(header) = error.header().filter(|h| elsewhere(&h.dest)) {
        warn!(
            "dropped a bad line from {} addressed to {}, not to this node: {error}",
            header.src, header.dest
        );
        return None;
    }
    warn!("bad input line: {error}");
    Some((error.code()?, error.header()?))
}

/// Logs that a message addressed to another node than this one was
/// dropped.
pub(crate) fn dropped_elsewhere(body: &Body, src: &str, dest: &str) {
    warn!(
        "dropped a {} from {src} addressed to {dest}, not to this node",
        body.type_name()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbft_core::AuthFailure;

    #[test]
    fn each_refusal_has_its_code() {
        let cases = [
            (Refusal::InvalidOperation("x".into()), 12),
            (Refusal::Overloaded, 11),
            (Refusal::Stale { latest: 2 }, 14),
            (Refusal::Conflict { timestamp: 1 }, 30),
            (
                Refusal::TooFarAhead {
                    timestamp: 1 << 62,
                    latest: 0,
                    max_gap: 1 << 20,
                },
                11,
            ),
            (Refusal::Unauthentic(AuthFailure::Missing), 12),
        ];
        for (refusal, code) in cases {
            assert_eq!(refusal_code(&refusal).code(), code, "{refusal}");
        }
    }
}
