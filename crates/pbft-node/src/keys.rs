//! Key files: one per replica, holding that replica's Ed25519 secret key
//! and every replica's public key.
//!
//! ```json
//! {
//!   "format": "pbft-keys/v1",
//!   "node_id": "n1",
//!   "secret_key": "<64 hex characters>",
//!   "public_keys": { "n1": "<64 hex>", "n2": "<64 hex>", "n3": "<64 hex>", "n4": "<64 hex>" }
//! }
//! ```
//!
//! `pbft-node keygen` writes a set ([`generate`], [`write_set`]);
//! [`KeyFile::load`] reads and checks one, and
//! [`KeyFile::authenticator`] checks it against the cluster that `init`
//! describes. Every problem is a [`KeyFileError`] that names the file and
//! what is wrong; nothing here panics or falls back to no authentication.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use pbft_core::{hex, Ed25519Auth};
use pbft_wire::Directory;
use serde::{Deserialize, Serialize};

use crate::key_io::{self, LoadError};

/// The `format` value of the files this version reads and writes.
pub const FORMAT: &str = "pbft-keys/v1";

/// A loaded, self-consistent key file.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyFile {
    /// The replica whose secret key this is.
    pub node_id: String,
    secret: [u8; 32],
    publics: BTreeMap<String, [u8; 32]>,
    path: PathBuf,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret key.
        f.debug_struct("KeyFile")
            .field("node_id", &self.node_id)
            .field("replicas", &self.publics.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The file as written on disk.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    format: String,
    node_id: String,
    secret_key: String,
    public_keys: BTreeMap<String, String>,
}

/// What is wrong with a key file, or with using it for a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyFileError {
    /// The file cannot be read.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The file is not a key file: not JSON, or a field is missing, of the
    /// wrong type, or unknown.
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file has another `format` than [`FORMAT`].
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// The format it declares.
        found: String,
    },
    /// A key is not 64 hex characters, or not a valid Ed25519 public key.
    BadKey {
        /// The file.
        path: PathBuf,
        /// Which key: `secret_key` or `public_keys.<node>`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// `public_keys` has no entry for the file's own `node_id`.
    OwnPublicKeyMissing {
        /// The file.
        path: PathBuf,
    },
    /// The secret key does not belong to the file's own public key.
    SecretDoesNotMatch {
        /// The file.
        path: PathBuf,
    },
    /// The file is for another node than the one `init` names.
    WrongNode {
        /// The file.
        path: PathBuf,
        /// The file's `node_id`.
        file: String,
        /// The `node_id` from `init`.
        init: String,
    },
    /// A member of `node_ids` has no public key in the file.
    MissingPublicKey {
        /// The file.
        path: PathBuf,
        /// The member.
        node: String,
    },
    /// The file has a public key for a node that is not in `node_ids`: it
    /// was made for another cluster.
    UnknownNode {
        /// The file.
        path: PathBuf,
        /// The node.
        node: String,
    },
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileError::Unreadable { path, reason } => {
                write!(f, "cannot read key file {}: {reason}", path.display())
            }
            KeyFileError::Malformed { path, reason } => {
                write!(f, "{} is not a key file: {reason}", path.display())
            }
            KeyFileError::UnsupportedFormat { path, found } => write!(
                f,
                "key file {} has format {found:?}; this version reads {FORMAT:?}",
                path.display()
            ),
            KeyFileError::BadKey {
                path,
                field,
                reason,
            } => write!(
                f,
                "key file {}: {field} is invalid: {reason}",
                path.display()
            ),
            KeyFileError::OwnPublicKeyMissing { path } => write!(
                f,
                "key file {}: public_keys has no entry for its own node_id",
                path.display()
            ),
            KeyFileError::SecretDoesNotMatch { path } => write!(
                f,
                "key file {}: secret_key does not belong to the node's public key",
                path.display()
            ),
            KeyFileError::WrongNode { path, file, init } => write!(
                f,
                "key file {} is for {file}, but init says this node is {init}",
                path.display()
            ),
            KeyFileError::MissingPublicKey { path, node } => write!(
                f,
                "key file {} has no public key for {node}, a member of node_ids",
                path.display()
            ),
            KeyFileError::UnknownNode { path, node } => write!(
                f,
                "key file {} has a key for {node}, which is not in node_ids: \
                 it was made for another cluster",
                path.display()
            ),
        }
    }
}

impl std::error::Error for KeyFileError {}

impl LoadError for KeyFileError {
    fn unreadable(path: PathBuf, reason: String) -> Self {
        KeyFileError::Unreadable { path, reason }
    }

    fn malformed(path: PathBuf, reason: String) -> Self {
        KeyFileError::Malformed { path, reason }
    }
}

impl KeyFile {
    /// Reads and checks a key file: its format, every key, and that the
    /// secret key matches the node's own public key.
    pub fn load(path: &Path) -> Result<KeyFile, KeyFileError> {
        KeyFile::parse(&key_io::read(path)?, path)
    }

    /// Checks the text of a key file read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<KeyFile, KeyFileError> {
        let object = key_io::json_object::<KeyFileError>(text, path)?;
        let disk: OnDisk = serde_json::from_value(serde_json::Value::Object(object))
            .map_err(|e| KeyFileError::malformed(path.to_path_buf(), e.to_string()))?;
        let path = path.to_path_buf();
        if disk.format != FORMAT {
            return Err(KeyFileError::UnsupportedFormat {
                path,
                found: disk.format,
            });
        }
        let bad_key = |field: String, reason: String| KeyFileError::BadKey {
            path: path.clone(),
            field,
            reason,
        };
        let secret =
            parse_key(&disk.secret_key).map_err(|reason| bad_key("secret_key".into(), reason))?;
        let mut publics = BTreeMap::new();
        for (node, hex) in &disk.public_keys {
            let field = format!("public_keys.{node}");
            let key = parse_key(hex).map_err(|reason| bad_key(field.clone(), reason))?;
            if !Ed25519Auth::is_valid_public_key(&key) {
                return Err(bad_key(field, "not a valid Ed25519 public key".into()));
            }
            publics.insert(node.clone(), key);
        }
        let own = publics
            .get(&disk.node_id)
            .ok_or_else(|| KeyFileError::OwnPublicKeyMissing { path: path.clone() })?;
        if Ed25519Auth::public_key(secret) != *own {
            return Err(KeyFileError::SecretDoesNotMatch { path });
        }
        Ok(KeyFile {
            node_id: disk.node_id,
            secret,
            publics,
            path,
        })
    }

    /// This node's own public key.
    pub fn public_key(&self) -> [u8; 32] {
        Ed25519Auth::public_key(self.secret)
    }

    /// The public key the file holds for `node`, if it holds one.
    pub fn public_key_of(&self, node: &str) -> Option<[u8; 32]> {
        self.publics.get(node).copied()
    }

    /// The nodes the file holds public keys for.
    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.publics.keys().map(String::as_str)
    }

    /// This node's secret key, for the transport's handshake.
    pub(crate) fn secret(&self) -> [u8; 32] {
        self.secret
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The authenticator for this node in the cluster `init` describes:
    /// `node_id` must be the file's, and the file must hold a public key
    /// for exactly the members of `node_ids`.
    pub fn authenticator(
        &self,
        node_id: &str,
        directory: &Directory,
    ) -> Result<Ed25519Auth, KeyFileError> {
        let path = self.path.clone();
        if node_id != self.node_id {
            return Err(KeyFileError::WrongNode {
                path,
                file: self.node_id.clone(),
                init: node_id.to_string(),
            });
        }
        if let Some(node) = self.publics.keys().find(|n| directory.id_of(n).is_none()) {
            return Err(KeyFileError::UnknownNode {
                path,
                node: node.clone(),
            });
        }
        let publics = directory
            .names()
            .iter()
            .map(|node| {
                self.publics
                    .get(node)
                    .copied()
                    .ok_or_else(|| KeyFileError::MissingPublicKey {
                        path: path.clone(),
                        node: node.clone(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let me = directory
            .id_of(node_id)
            .ok_or_else(|| KeyFileError::MissingPublicKey {
                path: path.clone(),
                node: node_id.to_string(),
            })?;
        // Every key was checked by `load`, so this cannot fail; report it
        // as a mismatch rather than assume.
        Ed25519Auth::new(me, self.secret, &publics)
            .map_err(|_| KeyFileError::SecretDoesNotMatch { path })
    }
}

fn parse_key(text: &str) -> Result<[u8; 32], String> {
    hex::parse(text).map_err(|e| e.to_string())
}

/// Checks that `node_ids` can name key files: distinct, and each made of
/// letters, digits, `-`, `_` and `.`, not starting with `.`.
pub fn check_node_ids(node_ids: &[String]) -> Result<(), String> {
    Directory::new(node_ids.to_vec()).map_err(|e| e.to_string())?;
    for node in node_ids {
        let usable = !node.starts_with('.')
            && node
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !usable {
            return Err(format!(
                "node id {node:?} cannot name a key file: use letters, digits, '-', '_' and '.'"
            ));
        }
    }
    Ok(())
}

/// Fresh keys for `node_ids`, from the operating system's random number
/// generator: one key file per node, in `node_ids` order.
pub fn generate(node_ids: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut secrets = Vec::with_capacity(node_ids.len());
    for _ in node_ids {
        secrets.push(key_io::fresh_secret()?);
    }
    let public_keys: BTreeMap<String, String> = node_ids
        .iter()
        .zip(&secrets)
        .map(|(node, secret)| (node.clone(), to_hex(&Ed25519Auth::public_key(*secret))))
        .collect();
    node_ids
        .iter()
        .zip(&secrets)
        .map(|(node, secret)| {
            let disk = OnDisk {
                format: FORMAT.to_string(),
                node_id: node.clone(),
                secret_key: to_hex(secret),
                public_keys: public_keys.clone(),
            };
            serde_json::to_string_pretty(&disk)
                .map(|text| (node.clone(), text + "\n"))
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// Writes the files [`generate`] made into `dir` as `<node>.keys.json`,
/// readable by the owner only. Refuses to overwrite an existing file.
pub fn write_set(dir: &Path, files: &[(String, String)]) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot create directory {}: {e}", dir.display()),
        )
    })?;
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(node, _)| dir.join(format!("{node}.keys.json")))
        .collect();
    // Check every name first, so a refusal leaves no partial set behind.
    if let Some(existing) = paths.iter().find(|p| p.exists()) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} already exists; not overwriting keys",
                existing.display()
            ),
        ));
    }
    let mut written = Vec::new();
    for ((_, text), path) in files.iter().zip(paths) {
        let mut file = key_io::create_private(&path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
        })?;
        io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
        })?;
        written.push(path);
    }
    Ok(written)
}

fn to_hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
