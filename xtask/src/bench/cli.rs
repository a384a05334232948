//! The command line of `cargo xtask bench`, and how many requests each run
//! makes.

/// Usage text, printed with any error in the arguments.
pub const USAGE: &str = "\
usage: cargo xtask bench [--mode embedded|embedded-wire|processes|memory|all]
                         [--requests N] [--quick] [--json]

  --mode      which benchmark to run (default: all)
  --requests  requests per run, replacing every default count
  --quick     a smoke run: small counts, every mode, a few seconds, in the
              build cargo xtask gives (its figures mean nothing)
  --json      print one JSON object instead of the table";

/// One benchmark mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The in-process cluster, messages passed as values.
    Embedded,
    /// The in-process cluster, every message through the JSON codec.
    EmbeddedWire,
    /// Four replica processes behind a router.
    Processes,
    /// A long embedded run sampling resident memory.
    Memory,
}

impl Mode {
    /// Every mode, in the order `all` runs them.
    pub const ALL: [Mode; 4] = [
        Mode::Embedded,
        Mode::EmbeddedWire,
        Mode::Processes,
        Mode::Memory,
    ];

    /// The mode's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Embedded => "embedded",
            Mode::EmbeddedWire => "embedded-wire",
            Mode::Processes => "processes",
            Mode::Memory => "memory",
        }
    }
}

/// The parsed command line.
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
    /// Parses the arguments after `bench`.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            modes: Mode::ALL.to_vec(),
            requests: None,
            quick: false,
            json: false,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--json" => options.json = true,
                "--mode" => {
                    let value = args.next().map(String::as_str).unwrap_or_default();
                    options.modes = match value {
                        "all" => Mode::ALL.to_vec(),
                        name => vec![Mode::ALL
                            .into_iter()
                            .find(|m| m.name() == name)
                            .ok_or_else(|| format!("unknown mode {name:?}\n\n{USAGE}"))?],
                    };
                }
                "--requests" => {
                    let value = args.next().and_then(|v| v.parse::<u64>().ok());
                    match value {
                        Some(n) if n > 0 => options.requests = Some(n),
                        _ => return Err(format!("--requests needs a positive number\n\n{USAGE}")),
                    }
                }
                "help" | "--help" | "-h" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
            }
        }
        Ok(options)
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
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
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
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        assert!(parse(&["--mode", "fast"]).is_err());
        assert!(parse(&["--mode"]).is_err());
        assert!(parse(&["--requests", "0"]).is_err());
        assert!(parse(&["--requests", "many"]).is_err());
        assert!(parse(&["--seed"]).is_err());
    }
}
