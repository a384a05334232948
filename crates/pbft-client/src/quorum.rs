//! Deciding on replies: a result counts only once f + 1 distinct replicas
//! sent it (§4.1), so at least one honest replica vouches for it and no
//! single faulty replica can tell the client anything.

use std::collections::BTreeMap;

use pbft_core::ReplicaId;
use pbft_wire::{Body, ErrorCode};
use serde_json::Value;

/// What a replica answered to one request, without the fields that
/// differ between honest replicas (their own message ids and texts).
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// A read's value.
    Value(Value),
    /// A write or a compare-and-set took effect.
    Done,
    /// The cluster refused or failed the operation, with this error code
    /// (for example 20: the key does not exist; 22: the value was not the
    /// one expected).
    Error {
        /// The error code (docs/protocol.md).
        code: u32,
        /// The text of the first replica that sent it.
        text: String,
    },
}

impl Answer {
    /// Whether two answers agree: the same value, or the same error code.
    fn matches(&self, other: &Answer) -> bool {
        match (self, other) {
            (Answer::Error { code: a, .. }, Answer::Error { code: b, .. }) => a == b,
            (a, b) => a == b,
        }
    }
}

/// Which operation a request was, so that only a reply of its kind can
/// answer it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A read: answered by `read_ok` or an error.
    Read,
    /// A write: answered by `write_ok` or an error.
    Write,
    /// A compare-and-set: answered by `cas_ok` or an error.
    Cas,
}

/// The view a reply body says its replica executed in, if it says.
pub fn view_of(body: &Body) -> Option<u64> {
    match body {
        Body::ReadOk { view, .. } | Body::WriteOk { view, .. } | Body::CasOk { view, .. } => *view,
        _ => None,
    }
}

/// A replica's answer to a request of `kind`, as read from its reply
/// body. `None` for a body of another kind, and for errors that say only
/// that the replica cannot answer now (error 11): those are retried, not
/// decided on.
pub fn answer_of(kind: Kind, body: &Body) -> Option<Answer> {
    match (kind, body) {
        (Kind::Read, Body::ReadOk { value, .. }) => Some(Answer::Value(value.clone())),
        (Kind::Write, Body::WriteOk { .. }) | (Kind::Cas, Body::CasOk { .. }) => Some(Answer::Done),
        (_, Body::Error { code, .. }) if *code == ErrorCode::TemporarilyUnavailable.code() => None,
        (_, Body::Error { code, text, .. }) => Some(Answer::Error {
            code: *code,
            text: text.clone(),
        }),
        _ => None,
    }
}

/// The replies to one request so far, one per replica.
#[derive(Debug)]
pub struct Replies {
    needed: usize,
    /// Each replica's answer, in the order they arrived.
    answers: Vec<(ReplicaId, Answer)>,
}

impl Replies {
    /// Replies for a cluster tolerating `f` faults: f + 1 must agree.
    pub fn new(f: usize) -> Replies {
        Replies {
            needed: f + 1,
            answers: Vec::new(),
        }
    }

    /// Records `from`'s answer (a later one from the same replica replaces
    /// its earlier one: a replica has one say). Returns the answer once
    /// f + 1 replicas agree on it, as the first of them to arrive gave it
    /// (so that the text of an agreed error is not the one a late,
    /// possibly faulty, replica chose).
    pub fn record(&mut self, from: ReplicaId, answer: Answer) -> Option<Answer> {
        self.answers.retain(|(r, _)| *r != from);
        self.answers.push((from, answer.clone()));
        let mut agreeing = self.answers.iter().filter(|(_, a)| a.matches(&answer));
        let first = agreeing.next()?.1.clone();
        (1 + agreeing.count() >= self.needed).then_some(first)
    }

    /// How many replicas have replied.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    /// Whether no replica has replied.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }
}

/// The latest view each replica said it executed in, across requests, and
/// the view the client may believe: the (f + 1)-th highest of them, which
/// at least one honest replica has reached. No f faulty replicas can push
/// it past every honest replica's view, nor hold it back once f + 1
/// honest replicas have moved on.
#[derive(Debug)]
pub struct Views {
    needed: usize,
    latest: BTreeMap<ReplicaId, u64>,
}

impl Views {
    /// Views for a cluster tolerating `f` faults.
    pub fn new(f: usize) -> Views {
        Views {
            needed: f + 1,
            latest: BTreeMap::new(),
        }
    }

    /// Notes that `from` said `view` (a replica's view only grows).
    pub fn note(&mut self, from: ReplicaId, view: u64) {
        let latest = self.latest.entry(from).or_insert(view);
        *latest = (*latest).max(view);
    }

    /// The view the client may believe (0 until f + 1 replicas said one).
    pub fn believed(&self) -> u64 {
        let mut views: Vec<u64> = self.latest.values().copied().collect();
        views.sort_unstable_by(|a, b| b.cmp(a));
        views.get(self.needed - 1).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_replica_alone_decides_nothing() {
        let mut replies = Replies::new(1);
        assert_eq!(replies.record(ReplicaId(0), Answer::Value(json!(1))), None);
        // The same replica again is still one replica.
        assert_eq!(replies.record(ReplicaId(0), Answer::Value(json!(1))), None);
        assert_eq!(
            replies.record(ReplicaId(2), Answer::Value(json!(1))),
            Some(Answer::Value(json!(1)))
        );
    }

    #[test]
    fn a_lying_replica_is_outvoted() {
        let mut replies = Replies::new(1);
        let forged = Answer::Value(json!("forged"));
        assert_eq!(replies.record(ReplicaId(3), forged), None);
        assert_eq!(replies.record(ReplicaId(0), Answer::Value(json!(42))), None);
        assert_eq!(
            replies.record(ReplicaId(1), Answer::Value(json!(42))),
            Some(Answer::Value(json!(42)))
        );
    }

    #[test]
    fn errors_agree_by_code_with_the_first_text() {
        let mut replies = Replies::new(1);
        let missing = |text: &str| Answer::Error {
            code: 20,
            text: text.to_string(),
        };
        assert_eq!(replies.record(ReplicaId(0), missing("first")), None);
        assert_eq!(
            replies.record(ReplicaId(3), missing("chosen by a liar")),
            Some(missing("first"))
        );
    }

    #[test]
    fn only_a_reply_of_the_requests_kind_answers_it() {
        let ok = |view| Body::WriteOk {
            in_reply_to: 1,
            msg_id: 2,
            view,
        };
        assert_eq!(answer_of(Kind::Write, &ok(None)), Some(Answer::Done));
        assert_eq!(
            answer_of(Kind::Cas, &ok(None)),
            None,
            "write_ok is no cas_ok"
        );
        assert_eq!(answer_of(Kind::Read, &ok(None)), None);
        assert_eq!(view_of(&ok(Some(3))), Some(3));
        let busy = Body::Error {
            in_reply_to: Some(1),
            msg_id: None,
            code: ErrorCode::TemporarilyUnavailable.code(),
            text: "view change".into(),
        };
        assert_eq!(answer_of(Kind::Read, &busy), None);
    }

    #[test]
    fn the_view_believed_is_one_an_honest_replica_reached() {
        let mut views = Views::new(1);
        views.note(ReplicaId(3), 1000);
        assert_eq!(views.believed(), 0, "one replica alone moves nothing");
        views.note(ReplicaId(0), 4);
        assert_eq!(views.believed(), 4, "the second highest of 1000 and 4");
        // A liar saying an old view cannot hold the client back.
        let mut views = Views::new(1);
        views.note(ReplicaId(3), 0);
        views.note(ReplicaId(0), 2);
        views.note(ReplicaId(1), 2);
        assert_eq!(views.believed(), 2);
        views.note(ReplicaId(0), 1);
        assert_eq!(views.believed(), 2, "a replica's view never goes back");
    }
}
