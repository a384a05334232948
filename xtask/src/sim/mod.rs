//! `cargo xtask sim`: deterministic simulation on the in-process cluster.
//!
//! Each seed draws a fault profile (loss, duplication, reordering and delay;
//! a partition and its heal; a crash and a restart with empty memory; a
//! crash of any number of replicas with their disks, and early syncs; up
//! to f Byzantine replicas from the node's catalogue) and runs a signed,
//! durable cluster through a safety phase, checked after every step, then
//! a liveness phase with the faults stopped. The same seed replays the same
//! run, event for event. See docs/testing.md.

mod describe;
mod profile;
mod run;

use std::time::{Duration, Instant};

pub use profile::Draw;
use run::Options;

/// How many seeds the self-test tries before it gives up.
pub const SELF_TEST_SEEDS: u64 = 300;

/// Seeds that once found a bug beyond the first ones `cargo xtask ci`
/// reaches in its time budget, replayed by it one by one (see
/// docs/testing.md, "What it found"). Each is listed with what it found.
/// All were found before disk faults were drawn, and replay without them
/// (`--without-disk-faults`).
pub const REGRESSION_SEEDS: &[u64] = &[
    // Five replicas, heavy loss, one restarted with empty memory: the
    // replicas that accepted a batch but never prepared it dropped it at
    // the view change, the only one that prepared it crashed after
    // executing it, and the number committed by digest in later views but
    // never executed anywhere.
    2_054_374_351_712_288_662,
    // Seven replicas, large values: a status answer carried a committed
    // certificate whose pre-prepare, taken from a new view, still named
    // its batch by digest only; the peer refused the whole answer, and
    // every replica stayed one number behind through view after view.
    // (…374 failed before fuller batches; the other two since.)
    9_990_000_000_000_000_374,
    9_990_000_000_000_000_300,
    7_770_000_000_000_000_057,
    // Seven replicas on a congested network: status reports and forwards
    // sent again after one tick, while messages waited tens of ticks in
    // the queues, kept the view-change timers firing until the liveness
    // bound passed (the retransmission wait now follows the measured
    // round trip).
    255,
    // Seven replicas, the primary the others followed changing views:
    // it relayed every client retry to every replica, and the copies
    // filled the network while the view change dragged on.
    64_260_304_549_564_371,
    // A chunk asked again of the silent peer that first had it.
    394,
    // Retries multiplied by a replica that led its last view, until view
    // changes timed out behind them.
    4_391_696_803_300_756_261,
    // A request held by a new primary that a restored checkpoint
    // executed, acknowledged but never answered.
    13_370_000_000_001_036,
];

/// The command line of `cargo xtask sim`. Without `--seed` or
/// `--self-test` it runs many seeds: `--seeds N` of them (100 by default),
/// or as many as `--budget-secs T` allows.
#[derive(clap::Args, Debug, Default, PartialEq, Eq)]
pub struct Args {
    /// Replay this one seed.
    #[arg(long, value_name = "S", conflicts_with_all = ["seeds", "from", "budget_secs"])]
    pub seed: Option<u64>,
    /// Run this many consecutive seeds (default 100, or no limit with
    /// --budget-secs).
    #[arg(long, value_name = "N")]
    pub seeds: Option<u64>,
    /// The first seed of a run of many (default: a fresh random seed,
    /// printed).
    #[arg(long, value_name = "S")]
    pub from: Option<u64>,
    /// Run seeds until this many seconds have passed.
    #[arg(long, value_name = "T")]
    pub budget_secs: Option<u64>,
    /// Run with a deliberately broken quorum rule: the simulator must find
    /// a safety violation.
    #[arg(long, conflicts_with_all = ["seed", "seeds", "from", "budget_secs"])]
    pub self_test: bool,
    /// Skip the liveness phase.
    #[arg(long)]
    pub safety_only: bool,
    /// Draw no disk faults: a seed runs as it did before they were drawn.
    #[arg(long)]
    pub without_disk_faults: bool,
    /// With --seed: print the fault profile, every control message and
    /// every rejection.
    #[arg(
        long,
        requires = "seed",
        conflicts_with_all = ["seeds", "from", "budget_secs", "self_test"]
    )]
    pub verbose: bool,
}

/// Runs the simulator as `args` say.
pub fn main(args: &Args) -> Result<(), String> {
    if args.self_test {
        return self_test();
    }
    let draw = if args.without_disk_faults {
        Draw::WithoutDisks
    } else {
        Draw::All
    };
    let options = Options {
        draw,
        safety_only: args.safety_only,
        ..Options::default()
    };
    if let Some(seed) = args.seed {
        if args.verbose {
            println!("sim: seed {seed} draws this fault profile:");
            println!("{}", run::profile_of(seed, draw));
        }
        let verbose = Options {
            verbose: args.verbose,
            ..options
        };
        return report_one(&run::run(seed, verbose));
    }
    let from = match args.from {
        Some(from) => from,
        None => {
            let from = fastrand::u64(..u64::MAX / 2);
            println!("starting at a fresh random seed: --from {from}");
            from
        }
    };
    let budget = args.budget_secs.map(Duration::from_secs);
    let seeds = args
        .seeds
        .unwrap_or(if budget.is_some() { u64::MAX } else { 100 });
    run_many(from, seeds, budget, options)
}

fn run_many(
    from: u64,
    seeds: u64,
    budget: Option<Duration>,
    options: Options,
) -> Result<(), String> {
    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(if seeds == u64::MAX { 0 } else { seeds });
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos} seeds, {elapsed}, {per_sec}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut ran = 0;
    let mut delivered = 0;
    for seed in from..from.saturating_add(seeds) {
        if budget.is_some_and(|b| started.elapsed() >= b) {
            break;
        }
        let outcome = run::run(seed, options);
        ran += 1;
        delivered += outcome.delivered;
        bar.inc(1);
        if outcome.failure.is_some() {
            bar.finish_and_clear();
            return report_one(&outcome);
        }
    }
    bar.finish_and_clear();
    let phases = if options.safety_only {
        "safety phase only"
    } else {
        "safety and liveness"
    };
    println!(
        "sim: {ran} seeds from {from} ran clean ({phases}) in {:.1?} ({delivered} messages delivered)",
        started.elapsed()
    );
    Ok(())
}

fn report_one(outcome: &run::Outcome) -> Result<(), String> {
    let Some(failure) = &outcome.failure else {
        println!(
            "sim: seed {} ran clean: {} steps, {} messages delivered, fingerprint {:.8}",
            outcome.seed,
            outcome.steps,
            outcome.delivered,
            outcome.fingerprint.to_string()
        );
        return Ok(());
    };
    println!(
        "sim: seed {} FAILED at step {}: {failure}",
        outcome.seed, outcome.steps
    );
    println!("fault profile:\n{}", outcome.profile);
    println!("replay: cargo xtask sim --seed {}", outcome.seed);
    println!("last events:");
    for line in &outcome.trace {
        println!("  {line}");
    }
    Err(format!("seed {} failed", outcome.seed))
}

/// With a deliberately broken quorum (commit on f + 1), the simulator must
/// find a violation within [`SELF_TEST_SEEDS`] seeds.
fn self_test() -> Result<(), String> {
    match first_broken_quorum_failure() {
        Some((seed, failure)) => {
            println!(
                "sim self-test: with a broken quorum rule, seed {seed} fails as it must: {failure}"
            );
            Ok(())
        }
        None => Err(format!(
            "sim self-test: a broken quorum rule went unnoticed for {SELF_TEST_SEEDS} seeds"
        )),
    }
}

/// The first seed whose safety phase fails with the broken quorum rule,
/// and how.
fn first_broken_quorum_failure() -> Option<(u64, String)> {
    (0..SELF_TEST_SEEDS).find_map(|seed| {
        let outcome = run::run(
            seed,
            Options {
                // As the self-test ran before disk faults were drawn.
                draw: Draw::WithoutDisks,
                broken_quorum: true,
                safety_only: true,
                ..Options::default()
            },
        );
        outcome
            .failure
            .filter(|f| !f.starts_with("liveness"))
            .map(|failure| (seed, failure))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_event_for_event() {
        for seed in [1, 2, 3] {
            let (a, b) = (
                run::run(seed, Options::default()),
                run::run(seed, Options::default()),
            );
            assert_eq!(a.fingerprint, b.fingerprint, "seed {seed}");
            assert_eq!((a.steps, a.delivered), (b.steps, b.delivered));
            assert_eq!(
                run::profile_of(seed, Draw::All).to_string(),
                a.profile.to_string(),
                "the profile shown first is the one the run draws"
            );
        }
        let safety = Options {
            safety_only: true,
            ..Options::default()
        };
        assert_ne!(
            run::run(1, safety).fingerprint,
            run::run(2, safety).fingerprint
        );
    }

    /// docs/testing.md names the seed at which the self-test finds its
    /// violation; it must be the seed the self-test reports.
    #[test]
    fn the_self_test_fails_at_the_seed_the_docs_name() {
        let doc = include_str!("../../../docs/testing.md").replace('\n', " ");
        let stated = doc
            .split("it finds one at seed ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<u64>().ok())
            .expect("docs/testing.md says at which seed the self-test fails");
        let found = first_broken_quorum_failure().map(|(seed, _)| seed);
        assert_eq!(found, Some(stated), "docs/testing.md says seed {stated}");
    }
}
