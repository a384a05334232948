//! Quorum arithmetic, written once for any cluster size `n >= 1`.
//!
//! PBFT tolerates `f = floor((n - 1) / 3)` faulty replicas (§4). Its
//! certificates need *quorums*: sets of replicas large enough that any two
//! of them share at least `f + 1` replicas, so at least one honest replica
//! is in both (the quorum-intersection argument of §4.2 and TOCS §4.1).
//!
//! For the paper's `n = 3f + 1` the quorum is `2f + 1`. For other `n` the
//! same intersection property needs `ceil((n + f + 1) / 2)`, which equals
//! `2f + 1` when `n = 3f + 1`. Using `2f + 1` for, say, `n = 5` would let two
//! quorums of 3 meet in a single, possibly faulty, replica.

use crate::types::{ReplicaId, View};

/// Fault threshold and certificate sizes for a cluster of `n` replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quorums {
    n: usize,
    f: usize,
    quorum: usize,
}

impl Quorums {
    /// The thresholds for `n` replicas. `n` must be at least 1.
    pub fn new(n: usize) -> Quorums {
        assert!(n >= 1, "a cluster needs at least one replica");
        let f = (n - 1) / 3;
        // ceil((n + f + 1) / 2)
        let quorum = (n + f + 2) / 2;
        Quorums { n, f, quorum }
    }

    /// **Deliberately unsafe**: the same thresholds with the quorum set to
    /// `quorum` (at least 1). Only for the simulator's self-test, which
    /// must show that it catches a broken quorum rule.
    pub fn with_broken_quorum(self, quorum: usize) -> Quorums {
        Quorums {
            quorum: quorum.max(1),
            ..self
        }
    }

    /// The number of replicas.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The number of faulty replicas tolerated.
    pub fn f(&self) -> usize {
        self.f
    }

    /// Size of a quorum certificate: `2f + 1` when `n = 3f + 1`.
    ///
    /// A batch is *committed-local* once this many replicas (counting this
    /// one) have sent matching commits (§4.2).
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// Matching prepares from distinct backups needed, together with the
    /// pre-prepare, for a *prepared* certificate: `2f` when `n = 3f + 1`.
    /// The pre-prepare stands in for the primary's vote.
    pub fn prepares_needed(&self) -> usize {
        self.quorum - 1
    }

    /// Size of a certificate that holds at least one honest replica: `f + 1`.
    pub fn weak(&self) -> usize {
        self.f + 1
    }

    /// The primary of `view`: replica `view mod n` (§4.1).
    pub fn primary(&self, view: View) -> ReplicaId {
        // n fits in u32 (checked by Config), so the remainder does too.
        ReplicaId((view.0 % self.n as u64) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_replicas_match_the_paper() {
        let q = Quorums::new(4);
        assert_eq!(q.f(), 1);
        assert_eq!(q.prepares_needed(), 2, "2f prepares (§4.2)");
        assert_eq!(q.quorum(), 3, "2f + 1 commits (§4.2)");
        assert_eq!(q.weak(), 2, "f + 1");
    }

    #[test]
    fn n_equal_3f_plus_1_gives_2f_plus_1() {
        for f in 0..20 {
            let q = Quorums::new(3 * f + 1);
            assert_eq!(q.f(), f);
            assert_eq!(q.quorum(), 2 * f + 1);
            assert_eq!(q.prepares_needed(), 2 * f);
        }
    }

    #[test]
    fn a_single_replica_needs_only_itself() {
        let q = Quorums::new(1);
        assert_eq!((q.f(), q.quorum(), q.prepares_needed()), (0, 1, 0));
    }

    #[test]
    #[allow(clippy::int_plus_one)] // written as the paper states the bounds
    fn any_two_quorums_share_an_honest_replica_for_every_n() {
        for n in 1..200 {
            let q = Quorums::new(n);
            assert!(n >= 3 * q.f() + 1, "n={n}: f too large");
            assert!(
                q.quorum() <= n - q.f(),
                "n={n}: a quorum must be reachable without the faulty"
            );
            assert!(
                2 * q.quorum() >= n + q.f() + 1,
                "n={n}: two quorums must share f + 1 replicas"
            );
        }
    }

    #[test]
    fn the_primary_rotates_round_robin() {
        let q = Quorums::new(4);
        let primaries: Vec<u32> = (0..6).map(|v| q.primary(View(v)).0).collect();
        assert_eq!(primaries, [0, 1, 2, 3, 0, 1]);
    }
}
