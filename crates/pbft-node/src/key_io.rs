//! What reading a key file ([`keys`](crate::keys)) and a client key table
//! ([`client_keys`](crate::client_keys)) share: the file is read whole as
//! text and must be one JSON object, and either failure is an error of the
//! file's own kind that names its path.

use std::fs;
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
