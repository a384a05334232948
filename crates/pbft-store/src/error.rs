//! What can go wrong with the log, naming the file.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why the log could not be opened, written or synced.
#[derive(Debug)]
pub enum StoreError {
    /// The operating system refused `what` on `path`.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done ("read", "sync", ...).
        what: &'static str,
        /// The operating system's error.
        error: io::Error,
    },
    /// A record in the middle of the log, or in an older segment, does not
    /// check: the log cannot be trusted past it.
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// The byte offset of the record (or of the segment header) in it.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// A record larger than [`MAX_RECORD_BYTES`](crate::MAX_RECORD_BYTES).
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// An earlier write or sync failed: what reached the disk is unknown,
    /// so the log refuses further writes until it is opened again.
    Failed,
}

impl StoreError {
    pub(crate) fn io(path: &Path, what: &'static str) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.to_path_buf();
        move |error| StoreError::Io { path, what, error }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io { path, what, error } => {
                write!(f, "cannot {what} {}: {error}", path.display())
            }
            StoreError::Corrupt {
                path,
                offset,
                reason,
            } => write!(
                f,
                "{} is corrupt at byte {offset}: {reason}",
                path.display()
            ),
            StoreError::TooLarge { len } => write!(
                f,
                "a record of {len} bytes is over the limit of {} bytes",
                crate::MAX_RECORD_BYTES
            ),
            StoreError::Failed => f.write_str(
                "an earlier write to the log failed; it takes no more until it is opened again",
            ),
        }
    }
}

impl std::error::Error for StoreError {}
