//! One phase's votes at one `(view, seq)`: at most one digest per replica.

use crate::auth::Signature;
use crate::digest::Digest;
use crate::types::ReplicaId;

/// The prepares (or commits) a replica has received for one slot.
///
/// Each replica's first vote stands. A repeat of the same vote is a
/// duplicate and a vote for another digest is a conflict; neither is
/// counted again (§4.2: certificates need votes from *distinct* replicas).
///
/// Votes that arrive once the slot needs no more (see `screen.rs`) are
/// noted as *late*, unverified: they count in what a status report shows
/// was heard, never in a certificate or a quorum.
#[derive(Clone, Debug, Default)]
pub struct Votes {
    by_replica: Vec<Option<(Digest, Option<Signature>)>>,
    late: Vec<Option<Digest>>,
}

/// Why a vote was not recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotRecorded {
    /// The replica had already cast this very vote.
    Duplicate,
    /// The replica had already voted for another digest.
    Conflict {
        /// The digest of its first vote.
        first: Digest,
    },
}

impl Votes {
    /// Records `replica`'s vote for `digest`, with its signature, in a
    /// cluster of `n` replicas. The caller has checked that `replica` is
    /// below `n` and that the signature verifies.
    pub fn record(
        &mut self,
        n: usize,
        replica: ReplicaId,
        digest: Digest,
        signature: Option<Signature>,
    ) -> Result<(), NotRecorded> {
        if self.by_replica.len() < n {
            self.by_replica.resize(n, None);
        }
        let slot = &mut self.by_replica[replica.index()];
        match *slot {
            None => {
                *slot = Some((digest, signature));
                Ok(())
            }
            Some((first, _)) if first == digest => Err(NotRecorded::Duplicate),
            Some((first, _)) => Err(NotRecorded::Conflict { first }),
        }
    }

    /// Notes that `replica`'s vote for `digest` arrived after the slot
    /// needed it, so it was dropped unverified. Only its first such vote
    /// is noted, and none if its vote is already held.
    pub fn note_late(&mut self, n: usize, replica: ReplicaId, digest: Digest) {
        if replica.index() >= n || self.of(replica).is_some() {
            return;
        }
        if self.late.len() < n {
            self.late.resize(n, None);
        }
        self.late[replica.index()].get_or_insert(digest);
    }

    /// How many distinct replicas were heard voting for `digest`: those
    /// whose vote is held and those whose vote came late.
    pub fn heard(&self, digest: Digest) -> usize {
        let late = (0u32..)
            .zip(&self.late)
            .filter(|(i, d)| **d == Some(digest) && self.of(ReplicaId(*i)).is_none())
            .count();
        self.matching(digest) + late
    }

    /// The digest `replica` voted for, if it voted.
    pub fn of(&self, replica: ReplicaId) -> Option<Digest> {
        self.by_replica
            .get(replica.index())
            .copied()
            .flatten()
            .map(|(digest, _)| digest)
    }

    /// How many distinct replicas voted for `digest`.
    pub fn matching(&self, digest: Digest) -> usize {
        self.by_replica
            .iter()
            .filter(|vote| matches!(vote, Some((d, _)) if *d == digest))
            .count()
    }

    /// The replicas that voted for `digest`, with their signatures, in
    /// replica order.
    pub fn signed_for(
        &self,
        digest: Digest,
    ) -> impl Iterator<Item = (ReplicaId, Option<Signature>)> + '_ {
        (0u32..)
            .zip(&self.by_replica)
            .filter_map(move |(i, vote)| match vote {
                Some((d, signature)) if *d == digest => Some((ReplicaId(i), *signature)),
                _ => None,
            })
    }

    /// The digest at least `quorum` distinct replicas voted for, if any.
    pub fn quorum_digest(&self, quorum: usize) -> Option<Digest> {
        self.by_replica
            .iter()
            .flatten()
            .map(|(d, _)| *d)
            .find(|d| self.matching(*d) >= quorum)
    }

    /// How many distinct replicas voted at all.
    pub fn len(&self) -> usize {
        self.by_replica.iter().filter(|vote| vote.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_vote_counts_once() {
        let d = Digest::of(b"a");
        let mut votes = Votes::default();
        assert_eq!(votes.record(4, ReplicaId(1), d, None), Ok(()));
        assert_eq!(
            votes.record(4, ReplicaId(1), d, None),
            Err(NotRecorded::Duplicate)
        );
        assert_eq!(votes.matching(d), 1);
    }

    #[test]
    fn the_first_of_two_conflicting_votes_stands() {
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        let mut votes = Votes::default();
        votes.record(4, ReplicaId(2), a, None).unwrap();
        assert_eq!(
            votes.record(4, ReplicaId(2), b, None),
            Err(NotRecorded::Conflict { first: a })
        );
        assert_eq!(
            (votes.matching(a), votes.matching(b), votes.len()),
            (1, 0, 1)
        );
    }

    #[test]
    fn matching_counts_only_that_digest() {
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        let mut votes = Votes::default();
        for r in 0..3 {
            votes.record(4, ReplicaId(r), a, None).unwrap();
        }
        votes.record(4, ReplicaId(3), b, None).unwrap();
        assert_eq!(
            (votes.matching(a), votes.matching(b), votes.len()),
            (3, 1, 4)
        );
    }
}
