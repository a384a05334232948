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
    /// Honest replicas that crash together at one step and restart from
    /// their disks at a later one: any number of them, more than `f`
    /// included. What each had written but not synced is lost.
    pub disk_crash: Option<(Vec<usize>, u64, u64)>,
    /// Per mille of steps at which one replica, chosen at random, syncs
    /// its disk before the contract needs it to.
    pub early_sync: u32,
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
    /// Large values: each request writes [`LARGE_VALUE`] bytes, requests
    /// and batches are capped in bytes, and the network drops every
    /// message whose payload is over [`LARGE_LINE`], a scaled-down 16 MiB
    /// line, state answers included: the state goes in chunks of
    /// [`LARGE_CHUNK`]. A view change that carried its batches would not
    /// fit, nor would a run's whole state.
    pub large_values: bool,
}

/// Which faults a seed draws.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Draw {
    /// Every kind.
    #[default]
    All,
    /// All but the disk faults: a seed runs as it did before they were
    /// drawn (the regression seeds found before then).
    WithoutDisks,
}

/// Mixed into a seed for the generator of its disk faults.
const DISK_STREAM: u64 = 0x6469_736b_2d66_6175;

/// The value each request writes under [`Profile::large_values`].
pub const LARGE_VALUE: usize = 20_000;

/// The largest message payload the network carries under
/// [`Profile::large_values`].
pub const LARGE_LINE: usize = 128 * 1024;

/// The replicas' largest request under [`Profile::large_values`].
pub const LARGE_MAX_REQUEST: usize = 32 * 1024;

/// The replicas' largest batch under [`Profile::large_values`]: three
/// requests fit, a view change carrying a window's batches would not.
pub const LARGE_MAX_BATCH: usize = 64 * 1024;

/// The replicas' state chunk under [`Profile::large_values`]: its hex and
/// a batch of committed certificates fit the line, the whole state of a
/// run soon does not.
pub const LARGE_CHUNK: usize = 16 * 1024;

impl Profile {
    /// The profile of `seed`: the faults of [`draw`](Self::draw) from the
    /// seed's generator, which the run goes on drawing from, and the disk
    /// faults from a second generator of the same seed, so that adding
    /// them left every other fault of a seed as it was. Returns the run's
    /// generator too.
    pub fn of_seed(seed: u64, draw: Draw) -> (Profile, fastrand::Rng) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut profile = Profile::draw(&mut rng);
        if draw == Draw::All {
            profile.draw_disks(&mut fastrand::Rng::with_seed(seed ^ DISK_STREAM));
        }
        (profile, rng)
    }

    /// Draws the disk faults: a crash of replicas with their disks, one
    /// run in two, and how often disks sync early.
    fn draw_disks(&mut self, rng: &mut fastrand::Rng) {
        let candidates: Vec<usize> = (0..self.n)
            .filter(|r| self.byzantine(*r).is_none())
            .filter(|r| self.crash.is_none_or(|(c, _, _)| c != *r))
            .collect();
        self.disk_crash = (rng.bool() && !candidates.is_empty()).then(|| {
            // One crash in three takes every candidate down at once.
            let replicas: Vec<usize> = if rng.u32(0..3) == 0 {
                candidates.clone()
            } else {
                let mut some: Vec<usize> =
                    candidates.iter().copied().filter(|_| rng.bool()).collect();
                if some.is_empty() {
                    some.push(candidates[rng.usize(0..candidates.len())]);
                }
                some
            };
            let at = rng.u64(100..self.safety_steps * 2 / 3);
            (replicas, at, at + rng.u64(50..1000))
        });
        self.early_sync = [0, 0, 20, 200][rng.usize(0..4)];
    }

    /// The profile of `seed`, drawn from `rng`, without disk faults.
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
            disk_crash: None,
            early_sync: 0,
            partition,
            requests: rng.u64(10..40),
            safety_steps,
            view_change_timeout: rng.u64(20..=60),
            lasting_loss: [0, 0, 10, 50][rng.usize(0..4)],
            large_values: rng.u32(0..4) == 0,
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

impl std::fmt::Display for Profile {
    /// The profile in words, one aspect a line, each line indented by two
    /// spaces.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let f_max = (self.n - 1) / 3;
        writeln!(
            f,
            "  {} replicas (f = {f_max}), checkpoint interval {}, view-change timeout {} ticks, \
             {} client requests, safety phase {} steps",
            self.n, self.k, self.view_change_timeout, self.requests, self.safety_steps
        )?;
        writeln!(
            f,
            "  network in the safety phase: {} lost, {} duplicated, {}, delayed up to {} steps",
            per_mille(self.loss),
            per_mille(self.duplicate),
            if self.reorder {
                "delivered in random order"
            } else {
                "delivered in order"
            },
            self.max_delay
        )?;
        writeln!(
            f,
            "  network in the liveness phase: {} lost on every link",
            per_mille(self.lasting_loss)
        )?;
        if self.large_values {
            writeln!(
                f,
                "  values: large, {LARGE_VALUE} bytes each; requests capped at \
                 {LARGE_MAX_REQUEST} bytes, batches at {LARGE_MAX_BATCH}, state chunks of \
                 {LARGE_CHUNK}, and messages over {LARGE_LINE} bytes lost"
            )?;
        } else {
            writeln!(f, "  values: small")?;
        }
        let byzantine: Vec<String> = self
            .byzantine
            .iter()
            .map(|(r, behaviour)| format!("r{r} {behaviour}"))
            .collect();
        if byzantine.is_empty() {
            writeln!(f, "  byzantine: none")?;
        } else {
            writeln!(f, "  byzantine: {}", byzantine.join(", "))?;
        }
        match self.crash {
            Some((r, at, back)) => writeln!(
                f,
                "  crash: r{r} at step {at}, restarted with empty memory at step {back}"
            )?,
            None => writeln!(f, "  crash: none")?,
        }
        match &self.disk_crash {
            Some((replicas, at, back)) => {
                let replicas: Vec<String> = replicas.iter().map(|r| format!("r{r}")).collect();
                writeln!(
                    f,
                    "  crash with disks: {} at step {at}, restarted from their disks at step \
                     {back}",
                    replicas.join(" ")
                )?
            }
            None => writeln!(f, "  crash with disks: none")?,
        }
        writeln!(
            f,
            "  disks: synced when a send or reply needs it{}",
            if self.early_sync > 0 {
                format!(", and early at {} of steps", per_mille(self.early_sync))
            } else {
                String::new()
            }
        )?;
        match &self.partition {
            Some((side, at, heal)) => {
                let side: Vec<String> = side.iter().map(|r| format!("r{r}")).collect();
                let side = if side.is_empty() || side.len() == self.n {
                    "every replica on one side (no effect)".to_string()
                } else {
                    format!("{} cut off from the others", side.join(" "))
                };
                write!(
                    f,
                    "  partition: {side} from step {at}, healed at step {heal}"
                )
            }
            None => write!(f, "  partition: none"),
        }
    }
}

/// A per-mille chance as a percentage.
fn per_mille(chance: u32) -> String {
    format!("{}.{}%", chance / 10, chance % 10)
}

#[cfg(test)]
mod tests {
    use pbft_node::byzantine::Behaviour;

    use super::*;

    fn profile() -> Profile {
        Profile {
            n: 4,
            k: 8,
            loss: 123,
            duplicate: 5,
            reorder: true,
            max_delay: 7,
            byzantine: vec![(2, Behaviour::Equivocate)],
            crash: Some((1, 400, 900)),
            disk_crash: Some((vec![0, 3], 500, 700)),
            early_sync: 20,
            partition: Some((vec![0, 2], 100, 600)),
            requests: 25,
            safety_steps: 3000,
            view_change_timeout: 45,
            lasting_loss: 10,
            large_values: true,
        }
    }

    #[test]
    fn a_profile_reads_as_words() {
        let text = profile().to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "  4 replicas (f = 1), checkpoint interval 8, view-change timeout 45 ticks, \
                 25 client requests, safety phase 3000 steps",
                "  network in the safety phase: 12.3% lost, 0.5% duplicated, delivered in \
                 random order, delayed up to 7 steps",
                "  network in the liveness phase: 1.0% lost on every link",
                "  values: large, 20000 bytes each; requests capped at 32768 bytes, batches at \
                 65536, state chunks of 16384, and messages over 131072 bytes lost",
                "  byzantine: r2 equivocate",
                "  crash: r1 at step 400, restarted with empty memory at step 900",
                "  crash with disks: r0 r3 at step 500, restarted from their disks at step 700",
                "  disks: synced when a send or reply needs it, and early at 2.0% of steps",
                "  partition: r0 r2 cut off from the others from step 100, healed at step 600",
            ]
        );
        assert!(
            !text.contains(['{', '[']) && !text.contains("Some"),
            "{text}"
        );
    }

    #[test]
    fn a_quiet_profile_says_none() {
        let quiet = Profile {
            byzantine: Vec::new(),
            crash: None,
            disk_crash: None,
            early_sync: 0,
            partition: Some((Vec::new(), 1, 2)),
            large_values: false,
            ..profile()
        };
        let text = quiet.to_string();
        assert!(
            text.contains(
                "  values: small\n  byzantine: none\n  crash: none\n  crash with disks: none\n  \
                 disks: synced when a send or reply needs it\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("every replica on one side (no effect)"),
            "{text}"
        );
    }
}
