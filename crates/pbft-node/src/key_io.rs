//! What the key files ([`keys`](crate::keys)) and the client key files
//! and tables ([`client_keys`](crate::client_keys)) share. Reading: the
//! file is read whole as text and must be one JSON object, and either
//! failure is an error of the file's own kind that names its path.
//! Writing: a fresh secret comes from the operating system, and a file
//! holding one is created new, readable by its owner only.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// An error type of one kind of key file, able to say that the file at a
/// path cannot be read, or is not a JSON object.
pub(crate) trait LoadError {
    /// The file at `path` cannot be read, for the operating system's
    /// `reason`.
    fn unreadable(path: PathBuf, reason: String) -> Self;
    /// The file at `path` is not what it should be, for `reason`.
    fn malformed(path: PathBuf, reason: String) -> Self;
}

/// The text of the file at `path`.
pub(crate) fn read<E: LoadError>(path: &Path) -> Result<String, E> {
    fs::read_to_string(path).map_err(|e| E::unreadable(path.to_path_buf(), e.to_string()))
}

/// `text`, read from `path`, as a JSON object.
pub(crate) fn json_object<E: LoadError>(text: &str, path: &Path) -> Result<Map<String, Value>, E> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| E::malformed(path.to_path_buf(), format!("not JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(E::malformed(
            path.to_path_buf(),
            "expected a JSON object".into(),
        ));
    };
    Ok(object)
}

/// A fresh 32-byte secret key from the operating system's random number
/// generator.
pub(crate) fn fresh_secret() -> Result<[u8; 32], String> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| format!("the operating system gave no randomness: {e}"))?;
    Ok(secret)
}

/// Creates the file at `path` for writing, readable by its owner only (on
/// Unix); fails if it exists, so that no key is ever overwritten.
pub(crate) fn create_private(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}
