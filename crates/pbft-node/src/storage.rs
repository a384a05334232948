//! `--data-dir`: a durable replica's records on disk.
//!
//! The core says what must be durable before which of its outputs
//! ([`pbft_core::Record`]); this module keeps that promise with the
//! write-ahead log of `pbft-store`, one JSON record (`pbft-wire`) per log
//! record. The driver writes every record of a step as it drains the
//! step's outputs and syncs once before anything of that step is sent
//! (group commit).
//!
//! The directory holds `identity.json` (the replica and its cluster, so
//! that a directory is never started as another replica) and `wal/`, the
//! log's segments. A base record starts a new segment; once it is synced,
//! the older segments are deleted, so the disk holds one stable
//! checkpoint's state and what came after it.
//!
//! On opening: a record cut short by a crash at the end of the log is
//! dropped with a warning (it was never synced, so nothing was sent on its
//! strength); any other damage refuses the start with a message that names
//! the file and the byte offset.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use log::{info, warn};
use pbft_core::Record;
use pbft_store::Wal;
use pbft_wire::Directory;
use serde::{Deserialize, Serialize};

/// The identity file's name in the data directory.
pub const IDENTITY_FILE: &str = "identity.json";

/// The log's directory in the data directory.
pub const WAL_DIR: &str = "wal";

/// What a data directory belongs to.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    node_id: String,
    node_ids: Vec<String>,
}

/// An open data directory.
pub struct Storage {
    wal: Wal,
    directory: Directory,
    /// The segment a base record was written to since the last sync: the
    /// segments before it go once the sync is done.
    base_segment: Option<u64>,
}

impl Storage {
    /// Opens (creating it if needed) the data directory `dir` of replica
    /// `node_id` in the cluster `directory` lists, and reads back its
    /// records, oldest first. Every error names the file at fault.
    pub fn open(
        dir: &Path,
        node_id: &str,
        directory: &Directory,
    ) -> Result<(Storage, Vec<Record>), String> {
        check_identity(dir, node_id, directory)?;
        let wal_dir = dir.join(WAL_DIR);
        let opened = Wal::open(&wal_dir).map_err(|e| format!("refusing to start: {e}"))?;
        if let Some(torn) = &opened.torn {
            warn!(
                "{}: dropped {} bytes at byte {}, a record cut short by a crash before it was \
                 synced",
                torn.path.display(),
                torn.dropped,
                torn.offset
            );
        }
        let mut records = Vec::with_capacity(opened.records.len());
        for (k, stored) in opened.records.iter().enumerate() {
            let record = directory.record_from_json(&stored.payload).map_err(|e| {
                format!(
                    "refusing to start: record {k} of the log in {} (segment {}) does not \
                     decode: {e}",
                    wal_dir.display(),
                    stored.segment
                )
            })?;
            records.push(record);
        }
        info!(
            "data directory {}: {} records in {} segments, {} bytes",
            dir.display(),
            records.len(),
            opened.wal.segments().len(),
            opened.wal.disk_bytes()
        );
        let storage = Storage {
            wal: opened.wal,
            directory: directory.clone(),
            base_segment: None,
        };
        Ok((storage, records))
    }

    /// Writes `record`; it is durable after the next [`sync`](Self::sync).
    /// A base record starts a new segment.
    pub fn write(&mut self, record: &Record) -> Result<(), String> {
        if matches!(record, Record::Base(_)) {
            let segment = self.wal.rotate().map_err(|e| e.to_string())?;
            self.base_segment = Some(segment);
        }
        let json = self
            .directory
            .record_to_json(record)
            .map_err(|e| format!("cannot encode a {} record: {e}", record.kind()))?;
        self.wal.append(&json).map_err(|e| e.to_string())
    }

    /// Makes every record written durable with one sync, then deletes the
    /// segments a base written since the last sync made obsolete.
    pub fn sync(&mut self) -> Result<(), String> {
        self.wal.sync().map_err(|e| e.to_string())?;
        if let Some(segment) = self.base_segment.take() {
            self.wal.remove_before(segment).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// How many syncs wrote records since the directory was opened.
    pub fn syncs(&self) -> u64 {
        self.wal.syncs()
    }

    /// The bytes the log takes on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.wal.disk_bytes()
    }
}

/// Checks that `dir` belongs to `node_id` of `directory`, writing the
/// identity file if the directory has none.
fn check_identity(dir: &Path, node_id: &str, directory: &Directory) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(IDENTITY_FILE);
    let mine = Identity {
        node_id: node_id.to_string(),
        node_ids: directory.names().to_vec(),
    };
    match fs::read(&path) {
        Ok(bytes) => {
            let found: Identity = serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "refusing to start: {} is not an identity: {e}",
                    path.display()
                )
            })?;
            if found != mine {
                return Err(format!(
                    "refusing to start: {} belongs to {} of [{}], not {} of [{}]",
                    dir.display(),
                    found.node_id,
                    found.node_ids.join(", "),
                    mine.node_id,
                    mine.node_ids.join(", ")
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if fs::read_dir(dir.join(WAL_DIR)).is_ok_and(|mut d| d.next().is_some()) {
                return Err(format!(
                    "refusing to start: {} has a log but no {IDENTITY_FILE}",
                    dir.display()
                ));
            }
            write_synced(&path, &serde_json::to_vec_pretty(&mine).unwrap_or_default())
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Writes `bytes` to a new file at `path` and syncs it and its directory.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut file = fs::File::create(path).map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    let parent: PathBuf = path.parent().map(Path::to_path_buf).unwrap_or_default();
    if let Ok(dir) = fs::File::open(&parent) {
        let _ = dir.sync_all();
    }
    Ok(())
}
