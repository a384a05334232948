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

/// A replica's reply to a request, as read from its body: the answer and
/// the view the replica executed it in, if it said. `None` for a body
/// that is no answer, and for errors that say only that the replica
/// cannot answer now (error 11): those are retried, not decided on.
pub fn answer_of(body: &Body) -> Option<(Answer, Option<u64>)> {
    match body {
        Body::ReadOk { value, view, .. } => Some((Answer::Value(value.clone()), *view)),
        Body::WriteOk { view, .. } | Body::CasOk { view, .. } => Some((Answer::Done, *view)),
        Body::Error { code, .. } if *code == ErrorCode::TemporarilyUnavailable.code() => None,
        Body::Error { code, text, .. } => Some((
            Answer::Error {
                code: *code,
                text: text.clone(),
            },
            None,
        )),
        _ => None,
    }
}

/// The replies to one request so far, one per replica.
#[derive(Debug)]
pub struct Replies {
    needed: usize,
    by_replica: BTreeMap<ReplicaId, (Answer, Option<u64>)>,
}

/// A decided result.
#[derive(Clone, Debug, PartialEq)]
pub struct Decided {
    /// The answer f + 1 replicas agree on.
    pub answer: Answer,
    /// A view at least one honest replica among them had reached, if
    /// f + 1 of them said their view: the (f + 1)-th highest they gave.
    pub view: Option<u64>,
}

impl Replies {
    /// Replies for a cluster tolerating `f` faults: f + 1 must agree.
    pub fn new(f: usize) -> Replies {
        Replies {
            needed: f + 1,
            by_replica: BTreeMap::new(),
        }
    }

    /// Records `from`'s reply (a later one from the same replica replaces
    /// its earlier one: a replica has one say). Returns the decision once
    /// f + 1 replicas agree.
    pub fn record(
        &mut self,
        from: ReplicaId,
        answer: Answer,
        view: Option<u64>,
    ) -> Option<Decided> {
        self.by_replica.insert(from, (answer.clone(), view));
        let agreeing: Vec<Option<u64>> = self
            .by_replica
            .values()
            .filter(|(a, _)| a.matches(&answer))
            .map(|(_, v)| *v)
            .collect();
        if agreeing.len() < self.needed {
            return None;
        }
        let mut views: Vec<u64> = agreeing.into_iter().flatten().collect();
        views.sort_unstable_by(|a, b| b.cmp(a));
        Some(Decided {
            answer,
            view: views.get(self.needed - 1).copied(),
        })
    }

    /// How many replicas have replied.
    pub fn len(&self) -> usize {
        self.by_replica.len()
    }

    /// Whether no replica has replied.
    pub fn is_empty(&self) -> bool {
        self.by_replica.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_replica_alone_decides_nothing() {
        let mut replies = Replies::new(1);
        assert_eq!(
            replies.record(ReplicaId(0), Answer::Value(json!(1)), Some(0)),
            None
        );
        // The same replica again is still one replica.
        assert_eq!(
            replies.record(ReplicaId(0), Answer::Value(json!(1)), Some(0)),
            None
        );
        let decided = replies.record(ReplicaId(2), Answer::Value(json!(1)), Some(0));
        assert_eq!(
            decided,
            Some(Decided {
                answer: Answer::Value(json!(1)),
                view: Some(0)
            })
        );
    }

    #[test]
    fn a_lying_replica_is_outvoted() {
        let mut replies = Replies::new(1);
        assert_eq!(
            replies.record(ReplicaId(3), Answer::Value(json!("forged")), Some(99)),
            None
        );
        assert_eq!(
            replies.record(ReplicaId(0), Answer::Value(json!(42)), Some(1)),
            None
        );
        let decided = replies
            .record(ReplicaId(1), Answer::Value(json!(42)), Some(1))
            .expect("two agree");
        assert_eq!(decided.answer, Answer::Value(json!(42)));
        assert_eq!(decided.view, Some(1), "the liar's view 99 is not taken");
    }

    #[test]
    fn the_view_is_one_an_honest_replica_vouches_for() {
        let mut replies = Replies::new(1);
        replies.record(ReplicaId(3), Answer::Done, Some(1000));
        let decided = replies
            .record(ReplicaId(0), Answer::Done, Some(4))
            .expect("two agree");
        assert_eq!(decided.view, Some(4), "the second highest of 1000 and 4");
    }

    #[test]
    fn errors_agree_by_code_and_busy_replicas_are_not_answers() {
        let mut replies = Replies::new(1);
        let missing = |text: &str| Answer::Error {
            code: 20,
            text: text.to_string(),
        };
        assert_eq!(replies.record(ReplicaId(0), missing("a"), None), None);
        let decided = replies.record(ReplicaId(1), missing("b"), None);
        assert!(matches!(
            decided,
            Some(Decided {
                answer: Answer::Error { code: 20, .. },
                view: None
            })
        ));
        let busy = Body::Error {
            in_reply_to: Some(1),
            msg_id: None,
            code: ErrorCode::TemporarilyUnavailable.code(),
            text: "view change".into(),
        };
        assert_eq!(answer_of(&busy), None);
    }
}
