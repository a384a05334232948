//! Client keys: which clients sign their requests, for `--client-keys`,
//! and a signing client's own key file, from `pbft-node keygen --client`.
//!
//! The table a replica loads is one JSON object mapping client ids to
//! their Ed25519 public keys in hex:
//!
//! ```json
//! { "c1": "<64 hex characters>", "c2": "<64 hex characters>" }
//! ```
//!
//! A listed client's requests are ordered only with its valid signature; a
//! client not listed is accepted unsigned. Every replica of a cluster must
//! load the same table. Every problem is a [`ClientKeysError`] that names
//! the file and what is wrong.
//!
//! A client's own key file holds its secret key, which only the client
//! needs:
//!
//! ```json
//! {
//!   "format": "pbft-client-key/v1",
//!   "client": "c1",
//!   "secret_key": "<64 hex characters>",
//!   "public_key": "<64 hex characters>"
//! }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use pbft_core::{hex, ClientId, Ed25519Auth};
use serde::Serialize;
use serde_json::Value;

use crate::key_io::{self, LoadError};

/// The `format` of a client's own key file.
pub const CLIENT_KEY_FORMAT: &str = "pbft-client-key/v1";

/// What is wrong with a client key table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientKeysError {
    /// The file cannot be read.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The file is not JSON, or not an object of strings.
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A client id is empty.
    EmptyClientId {
        /// The file.
        path: PathBuf,
    },
    /// A key is not 64 hex characters, or not a valid Ed25519 public key.
    BadKey {
        /// The file.
        path: PathBuf,
        /// The client whose key it is.
        client: String,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for ClientKeysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientKeysError::Unreadable { path, reason } => {
                write!(f, "cannot read client keys {}: {reason}", path.display())
            }
            ClientKeysError::Malformed { path, reason } => write!(
                f,
                "{} is not a client key table (a JSON object of client id to hex \
                 public key): {reason}",
                path.display()
            ),
            ClientKeysError::EmptyClientId { path } => {
                write!(f, "client keys {}: a client id is empty", path.display())
            }
            ClientKeysError::BadKey {
                path,
                client,
                reason,
            } => write!(
                f,
                "client keys {}: the key of {client:?} is invalid: {reason}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ClientKeysError {}

impl LoadError for ClientKeysError {
    fn unreadable(path: PathBuf, reason: String) -> Self {
        ClientKeysError::Unreadable { path, reason }
    }

    fn malformed(path: PathBuf, reason: String) -> Self {
        ClientKeysError::Malformed { path, reason }
    }
}

/// Reads and checks a client key table.
pub fn load(path: &Path) -> Result<BTreeMap<ClientId, [u8; 32]>, ClientKeysError> {
    parse(&key_io::read(path)?, path)
}

/// Checks the text of a client key table read from `path`.
pub fn parse(text: &str, path: &Path) -> Result<BTreeMap<ClientId, [u8; 32]>, ClientKeysError> {
    let entries = key_io::json_object::<ClientKeysError>(text, path)?;
    let mut keys = BTreeMap::new();
    for (client, key) in entries {
        if client.is_empty() {
            return Err(ClientKeysError::EmptyClientId {
                path: path.to_path_buf(),
            });
        }
        let bad_key = |reason: String| ClientKeysError::BadKey {
            path: path.to_path_buf(),
            client: client.clone(),
            reason,
        };
        let Value::String(text) = key else {
            return Err(bad_key("not a string".into()));
        };
        let key: [u8; 32] = hex::parse(&text).map_err(|e| bad_key(e.to_string()))?;
        if !Ed25519Auth::is_valid_public_key(&key) {
            return Err(bad_key("not a valid Ed25519 public key".into()));
        }
        keys.insert(ClientId::from(client.as_str()), key);
    }
    Ok(keys)
}

/// A client's own key, loaded from its key file and checked.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientKey {
    /// The client's id.
    pub client: ClientId,
    secret: [u8; 32],
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret key.
        f.debug_struct("ClientKey")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    /// Reads and checks a client's key file: its format, both keys, and
    /// that the secret key matches the public one.
    pub fn load(path: &Path) -> Result<ClientKey, ClientKeysError> {
        ClientKey::parse(&key_io::read(path)?, path)
    }

    /// Checks the text of a client's key file read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<ClientKey, ClientKeysError> {
        let object = key_io::json_object::<ClientKeysError>(text, path)?;
        let disk: ClientKeyOnDisk = serde_json::from_value(Value::Object(object))
            .map_err(|e| ClientKeysError::malformed(path.to_path_buf(), e.to_string()))?;
        let malformed = |reason: String| ClientKeysError::Malformed {
            path: path.to_path_buf(),
            reason,
        };
        if disk.format != CLIENT_KEY_FORMAT {
            return Err(malformed(format!(
                "format {:?} is not {CLIENT_KEY_FORMAT:?}",
                disk.format
            )));
        }
        if disk.client.is_empty() {
            return Err(ClientKeysError::EmptyClientId {
                path: path.to_path_buf(),
            });
        }
        let bad_key = |reason: String| ClientKeysError::BadKey {
            path: path.to_path_buf(),
            client: disk.client.clone(),
            reason,
        };
        let secret: [u8; 32] =
            hex::parse(&disk.secret_key).map_err(|e| bad_key(format!("secret_key: {e}")))?;
        let public: [u8; 32] =
            hex::parse(&disk.public_key).map_err(|e| bad_key(format!("public_key: {e}")))?;
        if Ed25519Auth::public_key(secret) != public {
            return Err(bad_key(
                "the secret key does not match the public key".into(),
            ));
        }
        Ok(ClientKey {
            client: ClientId::from(disk.client.as_str()),
            secret,
        })
    }

    /// The secret key, to sign requests and the transport's handshake.
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The public key.
    pub fn public_key(&self) -> [u8; 32] {
        Ed25519Auth::public_key(self.secret)
    }
}

/// A client's own key file, as read.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientKeyOnDisk {
    format: String,
    client: String,
    secret_key: String,
    public_key: String,
}

/// A client's own key file, as written.
#[derive(Serialize)]
struct ClientKeyFile<'a> {
    format: &'a str,
    client: &'a str,
    secret_key: String,
    public_key: String,
}

/// A fresh key for `client`, from the operating system's random number
/// generator: the key file's text and the public key in hex.
pub fn generate(client: &str) -> Result<(String, String), String> {
    if client.is_empty() {
        return Err("the client id is empty".into());
    }
    let secret = key_io::fresh_secret()?;
    let public = hex::encode(&Ed25519Auth::public_key(secret));
    let file = ClientKeyFile {
        format: CLIENT_KEY_FORMAT,
        client,
        secret_key: hex::encode(&secret),
        public_key: public.clone(),
    };
    let text = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())? + "\n";
    Ok((text, public))
}

/// Writes a client's key file as `<client>.client-key.json` in `dir`,
/// readable by the owner only. Refuses to overwrite an existing file.
pub fn write(dir: &Path, client: &str, text: &str) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let path = dir.join(format!("{client}.client-key.json"));
    let mut file = key_io::create_private(&path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot create {}: {e}; not overwriting keys",
                path.display()
            ),
        )
    })?;
    io::Write::write_all(&mut file, text.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_file_loads_and_a_tampered_one_is_refused() {
        let (text, public) = generate("c1").expect("generated");
        let path = Path::new("c1.client-key.json");
        let key = ClientKey::parse(&text, path).expect("loads");
        assert_eq!(key.client, ClientId::from("c1"));
        assert_eq!(hex::encode(&key.public_key()), public);
        assert!(!format!("{key:?}").contains(&hex::encode(key.secret())));
        let other = hex::encode(&Ed25519Auth::public_key([7; 32]));
        let swapped = text.replace(&public, &other);
        assert!(matches!(
            ClientKey::parse(&swapped, path),
            Err(ClientKeysError::BadKey { .. })
        ));
        let renamed = text.replace(CLIENT_KEY_FORMAT, "pbft-client-key/v0");
        assert!(matches!(
            ClientKey::parse(&renamed, path),
            Err(ClientKeysError::Malformed { .. })
        ));
    }
}
