//! The command line of `cargo xtask bench`, and how many requests each run
//! makes.

use clap::ValueEnum;

/// The command line of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Which benchmark to run.
    #[arg(long, value_enum, default_value_t = Choice::All)]
    mode: Choice,
    /// Requests per run, replacing every default count.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,
    /// A smoke run: small counts, every mode, a few seconds, in the build
    /// cargo xtask gives (its figures mean nothing).
    #[arg(long)]
    quick: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// What the command line asks for.
    pub fn options(&self) -> Options {
        Options {
            modes: self.mode.modes(),
            requests: self.requests,
            quick: self.quick,
            json: self.json,
        }
    }
}

/// A `--mode` value: one mode, or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Choice {
    Embedded,
    EmbeddedWire,
    Processes,
    Lossy,
    Tcp,
    Durable,
    Memory,
    All,
}

impl Choice {
    fn modes(self) -> Vec<Mode> {
        match self {
            Choice::Embedded => vec![Mode::Embedded],
            Choice::EmbeddedWire => vec![Mode::EmbeddedWire],
            Choice::Processes => vec![Mode::Processes],
            Choice::Lossy => vec![Mode::Lossy],
            Choice::Tcp => vec![Mode::Tcp],
            Choice::Durable => vec![Mode::Durable],
            Choice::Memory => vec![Mode::Memory],
            Choice::All => Mode::ALL.to_vec(),
        }
    }
}

/// One benchmark mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The in-process cluster, messages passed as values.
    Embedded,
    /// The in-process cluster, every message through the JSON codec.
    EmbeddedWire,
    /// Four replica processes behind a router.
    Processes,
    /// Four replica processes behind a router that loses lines.
    Lossy,
    /// Four `serve` processes over loopback TCP, with the client library.
    Tcp,
    /// The same with `--data-dir`, beside in-memory runs of the same load.
    Durable,
    /// A long embedded run sampling resident memory.
    Memory,
}

impl Mode {
    /// Every mode, in the order `all` runs them.
    pub const ALL: [Mode; 7] = [
        Mode::Embedded,
        Mode::EmbeddedWire,
        Mode::Processes,
        Mode::Lossy,
        Mode::Tcp,
        Mode::Durable,
        Mode::Memory,
    ];

    /// The mode's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Embedded => "embedded",
            Mode::EmbeddedWire => "embedded-wire",
            Mode::Processes => "processes",
            Mode::Lossy => "lossy",
            Mode::Tcp => "tcp",
            Mode::Durable => "durable",
            Mode::Memory => "memory",
        }
    }
}

/// What a bench run does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The modes to run, in order.
    pub modes: Vec<Mode>,
    /// Requests per run, if given.
    pub requests: Option<u64>,
    /// A smoke run.
    pub quick: bool,
    /// JSON instead of a table.
    pub json: bool,
}

impl Options {
    /// The smoke run of every mode that CI makes.
    pub fn quick() -> Options {
        Options {
            modes: Mode::ALL.to_vec(),
            requests: None,
            quick: true,
            json: false,
        }
    }

    /// The command line that asks for these options again (for the
    /// release re-run).
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.modes != Mode::ALL {
            for mode in &self.modes {
                args.extend(["--mode".to_string(), mode.name().to_string()]);
            }
        }
        if let Some(n) = self.requests {
            args.extend(["--requests".to_string(), n.to_string()]);
        }
        if self.quick {
            args.push("--quick".to_string());
        }
        if self.json {
            args.push("--json".to_string());
        }
        args
    }

    /// How many requests a run makes: `--requests` if given, else
    /// `quick` for a smoke run and `full` otherwise.
    pub fn count(&self, full: u64, quick: u64) -> u64 {
        match (self.requests, self.quick) {
            (Some(n), _) => n,
            (None, true) => quick,
            (None, false) => full,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Bench {
        #[command(flatten)]
        args: Args,
    }

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        let argv = std::iter::once("bench").chain(args.iter().copied());
        Bench::try_parse_from(argv).map(|b| b.args.options())
    }

    #[test]
    fn defaults_to_every_mode() {
        let options = parse(&[]).unwrap();
        assert_eq!(options.modes, Mode::ALL.to_vec());
        assert!(!options.quick && !options.json);
        assert_eq!(options.count(100, 5), 100);
    }

    #[test]
    fn reads_every_flag() {
        let options = parse(&["--mode", "embedded-wire", "--requests", "7", "--json"]).unwrap();
        assert_eq!(options.modes, vec![Mode::EmbeddedWire]);
        assert!(options.json);
        assert_eq!(options.count(100, 5), 7);
        assert_eq!(parse(&["--quick"]).unwrap().count(100, 5), 5);
        assert_eq!(parse(&["--mode", "all"]).unwrap().modes, Mode::ALL.to_vec());
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        assert!(parse(&["--mode", "fast"]).is_err());
        assert!(parse(&["--mode"]).is_err());
        assert!(parse(&["--requests", "0"]).is_err());
        assert!(parse(&["--requests", "many"]).is_err());
        assert!(parse(&["--seed"]).is_err());
    }

    #[test]
    fn every_mode_name_parses_to_its_mode() {
        for mode in Mode::ALL {
            assert_eq!(parse(&["--mode", mode.name()]).unwrap().modes, vec![mode]);
        }
    }

    #[test]
    fn options_survive_the_release_re_run() {
        for args in [
            &[][..],
            &["--quick"],
            &["--mode", "processes", "--requests", "9", "--json"],
            &["--mode", "memory", "--quick"],
        ] {
            let options = parse(args).unwrap();
            let again: Vec<String> = options.to_args();
            let again: Vec<&str> = again.iter().map(String::as_str).collect();
            assert_eq!(parse(&again).unwrap(), options, "{args:?}");
        }
    }
}
