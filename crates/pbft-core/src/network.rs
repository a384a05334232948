//! Faults for the in-process network: loss, duplication and reordering,
//! drawn from a seeded generator so that every run replays exactly.

/// How the [`Cluster`](crate::Cluster)'s network misbehaves. Rates are in
/// parts per thousand of the messages delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkFaults {
    /// Messages dropped, per mille.
    pub drop_per_mille: u32,
    /// Messages delivered twice, per mille.
    pub duplicate_per_mille: u32,
    /// Whether messages are delivered in a random order instead of FIFO.
    pub reorder: bool,
    /// The seed of the generator that decides.
    pub seed: u64,
}

/// What the network does with the next message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Which queued message goes next.
    pub(crate) index: usize,
    pub(crate) drop: bool,
    pub(crate) duplicate: bool,
}

/// The faulty network's state: its settings and generator.
#[derive(Clone, Debug)]
pub(crate) struct FaultyNetwork {
    faults: NetworkFaults,
    state: u64,
}

impl FaultyNetwork {
    pub(crate) fn new(faults: NetworkFaults) -> FaultyNetwork {
        FaultyNetwork {
            faults,
            state: faults.seed,
        }
    }

    /// SplitMix64: small, fast, and fully determined by the seed.
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn chance(&mut self, per_mille: u32) -> bool {
        self.next() % 1000 < u64::from(per_mille)
    }

    /// Decides the fate of the next message out of `queued` (at least 1).
    pub(crate) fn decide(&mut self, queued: usize) -> Decision {
        let index = if self.faults.reorder {
            // The modulus keeps the index below `queued`, itself a usize.
            (self.next() % queued as u64) as usize
        } else {
            0
        };
        Decision {
            index,
            drop: self.chance(self.faults.drop_per_mille),
            duplicate: self.chance(self.faults.duplicate_per_mille),
        }
    }
}
