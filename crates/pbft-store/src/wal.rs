//! The log: segment files in a directory, appended to, synced in groups,
//! rotated and removed.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::StoreError;
use crate::segment::{self, Torn, MAGIC, MAX_RECORD_BYTES};

/// A record read back when the log is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The segment it is in.
    pub segment: u64,
    /// What was appended.
    pub payload: Vec<u8>,
}

/// A log just opened, with what it held.
#[derive(Debug)]
pub struct Opened {
    /// The log, ready to append to its newest segment.
    pub wal: Wal,
    /// Every record, oldest first.
    pub records: Vec<Record>,
    /// The torn tail cut off the newest segment, if there was one.
    pub torn: Option<Torn>,
}

/// An append-only log of records in a directory (see the crate docs).
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    /// Every segment's index and size in bytes, oldest first; the last is
    /// the one appended to.
    segments: Vec<(u64, u64)>,
    file: File,
    /// Records appended since the last sync.
    buffer: Vec<u8>,
    syncs: u64,
    failed: bool,
}

impl Wal {
    /// Opens the log in `dir`, creating the directory and a first segment
    /// if there are none, and reads every record back. A torn tail is cut
    /// off; any other damage is a [`StoreError::Corrupt`] naming the file
    /// and offset. Files in `dir` that are not segments are left alone.
    pub fn open(dir: &Path) -> Result<Opened, StoreError> {
        fs::create_dir_all(dir).map_err(StoreError::io(dir, "create"))?;
        let mut indices = list_segments(dir)?;
        if indices.is_empty() {
            create_segment(dir, 0)?;
            indices.push(0);
        }
        let newest = indices.len() - 1;
        let mut records = Vec::new();
        let mut segments = Vec::new();
        let mut torn = None;
        for (k, &index) in indices.iter().enumerate() {
            let path = segment_path(dir, index);
            let bytes = fs::read(&path).map_err(StoreError::io(&path, "read"))?;
            let (payloads, bad) = segment::parse(&bytes);
            let mut size = bytes.len() as u64;
            if let Some(bad) = bad {
                if k != newest || !bad.torn {
                    return Err(StoreError::Corrupt {
                        path,
                        offset: bad.offset as u64,
                        reason: bad.reason,
                    });
                }
                size = cut_tail(&path, bad.offset as u64)?;
                torn = Some(Torn {
                    path,
                    offset: size,
                    dropped: (bytes.len() as u64).saturating_sub(bad.offset as u64),
                });
            }
            records.extend(payloads.into_iter().map(|payload| Record {
                segment: index,
                payload,
            }));
            segments.push((index, size));
        }
        let last = segment_path(dir, indices[newest]);
        let file = OpenOptions::new()
            .append(true)
            .open(&last)
            .map_err(StoreError::io(&last, "open"))?;
        let wal = Wal {
            dir: dir.to_path_buf(),
            segments,
            file,
            buffer: Vec::new(),
            syncs: 0,
            failed: false,
        };
        Ok(Opened { wal, records, torn })
    }

    /// Adds a record. It is durable only after the next [`sync`](Self::sync).
    pub fn append(&mut self, payload: &[u8]) -> Result<(), StoreError> {
        if self.failed {
            return Err(StoreError::Failed);
        }
        if payload.len() > MAX_RECORD_BYTES {
            return Err(StoreError::TooLarge { len: payload.len() });
        }
        segment::encode(payload, &mut self.buffer);
        Ok(())
    }

    /// Writes every record appended since the last sync and waits until
    /// the disk holds them: one sync for all of them (group commit). Does
    /// nothing when nothing was appended. After a failure the log takes
    /// nothing more, since what reached the disk is unknown.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        if self.failed {
            return Err(StoreError::Failed);
        }
        if self.buffer.is_empty() {
            return Ok(());
        }
        let path = self.current_path();
        let written = self
            .file
            .write_all(&self.buffer)
            .map_err(StoreError::io(&path, "write"))
            .and_then(|()| self.file.sync_data().map_err(StoreError::io(&path, "sync")));
        if let Err(e) = written {
            self.failed = true;
            return Err(e);
        }
        if let Some((_, size)) = self.segments.last_mut() {
            *size += self.buffer.len() as u64;
        }
        self.buffer.clear();
        self.syncs += 1;
        Ok(())
    }

    /// Syncs, then starts a new segment for the records that follow, and
    /// returns its index. Records appended from now on are in it.
    pub fn rotate(&mut self) -> Result<u64, StoreError> {
        self.sync()?;
        let index = self.current().saturating_add(1);
        let file = create_segment(&self.dir, index).inspect_err(|_| self.failed = true)?;
        self.file = file;
        self.segments.push((index, MAGIC.len() as u64));
        Ok(index)
    }

    /// Deletes every segment older than `index` (never the newest), and
    /// returns how many: garbage collection once the records they hold
    /// are no longer needed.
    pub fn remove_before(&mut self, index: u64) -> Result<usize, StoreError> {
        let current = self.current();
        let mut removed = 0;
        while let Some(&(oldest, _)) = self.segments.first() {
            if oldest >= index || oldest == current {
                break;
            }
            let path = segment_path(&self.dir, oldest);
            fs::remove_file(&path).map_err(StoreError::io(&path, "remove"))?;
            self.segments.remove(0);
            removed += 1;
        }
        if removed > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    /// The index of the segment appended to.
    pub fn current(&self) -> u64 {
        self.segments.last().map_or(0, |(index, _)| *index)
    }

    /// Every segment's index, oldest first.
    pub fn segments(&self) -> Vec<u64> {
        self.segments.iter().map(|(index, _)| *index).collect()
    }

    /// The bytes the segments take on disk (records not yet synced aside).
    pub fn disk_bytes(&self) -> u64 {
        self.segments.iter().map(|(_, size)| size).sum()
    }

    /// How many syncs wrote records since the log was opened.
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    fn current_path(&self) -> PathBuf {
        segment_path(&self.dir, self.current())
    }
}

fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}.wal"))
}

/// The indices of the segment files in `dir`, in order.
fn list_segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let entries = fs::read_dir(dir).map_err(StoreError::io(dir, "list"))?;
    let mut indices = Vec::new();
    for entry in entries {
        let entry = entry.map_err(StoreError::io(dir, "list"))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".wal")) else {
            continue;
        };
        if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(index) = stem.parse() {
                indices.push(index);
            }
        }
    }
    indices.sort_unstable();
    Ok(indices)
}

/// Creates segment `index` with its header, durably, directory entry
/// included.
fn create_segment(dir: &Path, index: u64) -> Result<File, StoreError> {
    let path = segment_path(dir, index);
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(StoreError::io(&path, "create"))?;
    file.write_all(MAGIC)
        .and_then(|()| file.sync_data())
        .map_err(StoreError::io(&path, "write"))?;
    sync_dir(dir)?;
    Ok(file)
}

/// Cuts the newest segment at `offset`, the end of its last good record
/// (rewriting the header if even that was torn), and returns its size.
fn cut_tail(path: &Path, offset: u64) -> Result<u64, StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(StoreError::io(path, "open"))?;
    file.set_len(offset)
        .map_err(StoreError::io(path, "truncate"))?;
    let mut size = offset;
    if offset == 0 {
        file.write_all(MAGIC)
            .map_err(StoreError::io(path, "write"))?;
        size = MAGIC.len() as u64;
    }
    file.sync_all().map_err(StoreError::io(path, "sync"))?;
    Ok(size)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io(dir, "sync"))
}
