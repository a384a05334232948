//! What the command line keeps between runs of one client: its last
//! timestamp, which must grow across runs (replicas refuse one at or
//! below the last they executed), and the view it last believed, so that
//! a new run goes to the current primary at once. One line,
//! `TIMESTAMP VIEW` (a file of `TIMESTAMP` alone is read as view 0).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A client's kept timestamp and view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Kept {
    /// The last timestamp used, or reserved.
    pub timestamp: u64,
    /// The view last believed.
    pub view: u64,
}

/// The default file: the key file's path with `.timestamp` appended.
pub fn path_beside(keys: &Path) -> PathBuf {
    let mut path = keys.to_path_buf().into_os_string();
    path.push(".timestamp");
    PathBuf::from(path)
}

impl Kept {
    pub fn new(timestamp: u64, view: u64) -> Kept {
        Kept { timestamp, view }
    }

    /// What `path` holds; nothing yet (timestamp 0, view 0) if it does not
    /// exist.
    pub fn load(path: &Path) -> Result<Kept, String> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Kept::default()),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Kept::parse(&text).ok_or_else(|| {
            format!(
                "{} does not hold a timestamp and a view (two whole numbers)",
                path.display()
            )
        })
    }

    fn parse(text: &str) -> Option<Kept> {
        let mut words = text.split_whitespace();
        let timestamp = words.next()?.parse().ok()?;
        let view = match words.next() {
            Some(word) => word.parse().ok()?,
            None => 0,
        };
        words.next().is_none().then_some(Kept { timestamp, view })
    }

    /// Replaces what `path` holds, through a temporary file renamed over
    /// it, so that a crash leaves the old line or the new one.
    pub fn store(&self, path: &Path) -> Result<(), String> {
        let mut temporary = path.to_path_buf().into_os_string();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        fs::write(&temporary, format!("{} {}\n", self.timestamp, self.view))
            .and_then(|()| fs::rename(&temporary, path))
            .map_err(|e| format!("cannot keep the timestamp in {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_holds_a_timestamp_and_a_view() {
        assert_eq!(Kept::parse("7 2\n"), Some(Kept::new(7, 2)));
        assert_eq!(Kept::parse("7\n"), Some(Kept::new(7, 0)));
        assert_eq!(Kept::parse("seven"), None);
        assert_eq!(Kept::parse("7 2 9"), None);
        assert_eq!(Kept::parse(""), None);
    }
}
