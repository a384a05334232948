//! The one `msg_id` counter of a node process, and the error reply every
//! mode sends the same way.

use pbft_wire::{Body, Envelope, ErrorCode};

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
