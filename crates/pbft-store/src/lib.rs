//! # pbft-store
//!
//! A write-ahead log for replicas that must remember what they promised
//! across a crash: records appended in order, made durable together by one
//! sync (group commit), and read back in order when the replica starts.
//!
//! ```
//! # fn main() -> Result<(), pbft_store::StoreError> {
//! # let dir = std::env::temp_dir().join(format!("pbft-store-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let mut wal = pbft_store::Wal::open(&dir)?.wal;
//! wal.append(b"prepare v0 #1")?;
//! wal.append(b"commit v0 #1")?;
//! wal.sync()?; // one sync for both: only now may the replica send them
//! drop(wal);
//!
//! let opened = pbft_store::Wal::open(&dir)?;
//! let payloads: Vec<&[u8]> = opened.records.iter().map(|r| &r.payload[..]).collect();
//! assert_eq!(payloads, [&b"prepare v0 #1"[..], &b"commit v0 #1"[..]]);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```
//!
//! ## On disk
//!
//! A directory of segment files, `<index>.wal` with the index in 20
//! decimal digits, so that names sort in log order. Each segment starts
//! with the 8 bytes `PBFTWAL1`, then records, each:
//!
//! | bytes | what |
//! |--:|---|
//! | 4 | the payload's length `len`, little-endian, at most [`MAX_RECORD_BYTES`] |
//! | 4 | CRC-32 (IEEE) over the 4 length bytes and the payload, little-endian |
//! | `len` | the payload |
//!
//! The log is garbage-collected by segment: the caller [`rotates`](Wal::rotate)
//! to a new segment, writes there whatever the older segments' records are
//! still needed for (a stable checkpoint, say), syncs, and
//! [removes](Wal::remove_before) the older segments. Disk use is then
//! bounded by what the caller keeps.
//!
//! ## After a crash
//!
//! Only the newest segment can end in a record that a crash cut short,
//! since older ones were synced whole before the next was started. When
//! the log is opened:
//!
//! - **A torn tail is dropped.** In the newest segment, a record that does
//!   not check is a torn write if it runs past the end of the file, if
//!   only zero bytes follow its start (space the file system allocated
//!   but never wrote), or if it ends exactly at the end of the file. The
//!   file is cut back to the last good record, and [`Opened::torn`] says
//!   where. A record that was never synced may be lost this way, which is
//!   what group commit allows: nothing was sent on its strength.
//! - **Anything else is corruption.** A record that does not check
//!   anywhere else (in an older segment, or with more data after it in the
//!   newest) fails [`Wal::open`] with [`StoreError::Corrupt`], which names
//!   the file and the offset. Starting from a log with a hole would be
//!   starting on wrong state; the caller refuses to start, or recovers
//!   from its peers and says so.
//!
//! The checksum guards against faults (torn writes, flipped bits), not
//! against someone who can write to the disk.

#![deny(missing_docs)]

mod error;
mod segment;
mod wal;

pub use error::StoreError;
pub use segment::{Torn, MAGIC, MAX_RECORD_BYTES, RECORD_HEADER_BYTES};
pub use wal::{Opened, Record, Wal};
