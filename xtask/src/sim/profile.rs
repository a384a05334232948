//! A run's fault profile, chosen from its seed.

use pbft_node::byzantine::Behaviour;

/// Everything that goes wrong in one run, and when. Steps count delivered
/// messages and ticks.
#[derive(Clone, Debug)]
pub struct Profile {
    /// Replicas.
    pub n: usize,
    /// Checkpoint interval.
    pub k: u64,
    /// Per mille of messages lost.
    pub loss: u32,
    /// Per mille of messages duplicated.
    pub duplicate: u32,
    /// Whether delivery order is random.
    pub reorder: bool,
    /// The most steps a message is delayed.
    pub max_delay: u64,
    /// Byzantine replicas and their behaviour (at most f).
    pub byzantine: Vec<(usize, Behaviour)>,
    /// An honest replica that crashes at one step and restarts, with empty
    /// memory, at a later one.
    pub crash: Option<(usize, u64, u64)>,
    /// A partition: one side, and the steps it starts and heals.
    pub partition: Option<(Vec<usize>, u64, u64)>,
    /// Client requests.
    pub requests: u64,
    /// Steps of the safety phase (faults on).
    pub safety_steps: u64,
    /// The replicas' view-change timeout, in ticks.
    pub view_change_timeout: u64,
    /// Per mille of messages lost on every link after the other faults
    /// stop, through the liveness phase: a network that is never clean.
    pub lasting_loss: u32,
}

impl Profile {
    /// The profile of `seed`, drawn from `rng`.
    pub fn draw(rng: &mut fastrand::Rng) -> Profile {
        let n = [4, 4, 5, 7][rng.usize(0..4)];
        let f = (n - 1) / 3;
        let safety_steps = 3000;
        let mut faulty = Vec::new();
        let byzantine: Vec<(usize, Behaviour)> = (0..rng.usize(0..=f))
            .map(|_| {
                let r = loop {
                    let r = rng.usize(0..n);
                    if !faulty.contains(&r) {
                        break r;
                    }
                };
                faulty.push(r);
                (r, Behaviour::ALL[rng.usize(0..Behaviour::ALL.len())])
            })
            .collect();
        let crash = (faulty.len() < f && rng.bool()).then(|| {
            let r = loop {
                let r = rng.usize(0..n);
                if !faulty.contains(&r) {
                    break r;
                }
            };
            let at = rng.u64(100..safety_steps / 2);
            (r, at, at + rng.u64(200..1000))
        });
        let partition = rng.bool().then(|| {
            // One partition in three cuts off a single replica alone.
            let side: Vec<usize> = if rng.u32(0..3) == 0 {
                vec![rng.usize(0..n)]
            } else {
                (0..n).filter(|_| rng.bool()).collect()
            };
            let at = rng.u64(0..safety_steps / 2);
            (side, at, at + rng.u64(100..1000))
        });
        Profile {
            n,
            k: [4, 8][rng.usize(0..2)],
            loss: rng.u32(0..200),
            duplicate: rng.u32(0..100),
            reorder: rng.bool(),
            max_delay: rng.u64(0..20),
            byzantine,
            crash,
            partition,
            requests: rng.u64(10..40),
            safety_steps,
            view_change_timeout: rng.u64(20..=60),
            lasting_loss: [0, 0, 10, 50][rng.usize(0..4)],
        }
    }

    /// Whether replica `r` is Byzantine.
    pub fn byzantine(&self, r: usize) -> Option<Behaviour> {
        self.byzantine
            .iter()
            .find(|(b, _)| *b == r)
            .map(|(_, behaviour)| *behaviour)
    }
}
