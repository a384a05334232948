//! Maelstrom's error codes, as used in `error` bodies.

use std::fmt;

/// The error codes this node sends, with Maelstrom's numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 10: the message type is not supported by this node.
    NotSupported,
    /// 11: the node cannot serve the request now (for example, before
    /// `init`); a retry may succeed.
    TemporarilyUnavailable,
    /// 12: the request is malformed: a field is missing or has the wrong
    /// type, or the operation is outside the service's grammar.
    MalformedRequest,
    /// 13: the node hit an internal failure.
    Crash,
    /// 14: the request was aborted, for example a stale retry.
    Abort,
    /// 20: lin-kv: the key does not exist.
    KeyDoesNotExist,
    /// 22: lin-kv: a compare-and-set found another value.
    PreconditionFailed,
    /// 30: the request conflicts with another one: its client's timestamp
    /// was already used by a request with another digest, which executed.
    /// Definite: the refused request never executes.
    TxnConflict,
}

impl ErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::NotSupported,
        ErrorCode::TemporarilyUnavailable,
        ErrorCode::MalformedRequest,
        ErrorCode::Crash,
        ErrorCode::Abort,
        ErrorCode::KeyDoesNotExist,
        ErrorCode::PreconditionFailed,
        ErrorCode::TxnConflict,
    ];

    /// The number sent on the wire.
    pub fn code(self) -> u32 {
        match self {
            ErrorCode::NotSupported => 10,
            ErrorCode::TemporarilyUnavailable => 11,
            ErrorCode::MalformedRequest => 12,
            ErrorCode::Crash => 13,
            ErrorCode::Abort => 14,
            ErrorCode::KeyDoesNotExist => 20,
            ErrorCode::PreconditionFailed => 22,
            ErrorCode::TxnConflict => 30,
        }
    }

    /// The code with number `code`, if it is one of these.
    pub fn from_code(code: u32) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.code() == code)
    }

    /// Maelstrom's name for the code.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::NotSupported => "not-supported",
            ErrorCode::TemporarilyUnavailable => "temporarily-unavailable",
            ErrorCode::MalformedRequest => "malformed-request",
            ErrorCode::Crash => "crash",
            ErrorCode::Abort => "abort",
            ErrorCode::KeyDoesNotExist => "key-does-not-exist",
            ErrorCode::PreconditionFailed => "precondition-failed",
            ErrorCode::TxnConflict => "txn-conflict",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_match_maelstrom() {
        let numbers: Vec<u32> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(numbers, [10, 11, 12, 13, 14, 20, 22, 30]);
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(code.code()), Some(code));
        }
        assert_eq!(ErrorCode::from_code(21), None);
    }
}
