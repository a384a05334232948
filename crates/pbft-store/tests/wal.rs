//! The log on disk: records come back in order across segments and
//! reopenings; a torn tail is cut and reported; damage anywhere else
//! refuses to open, naming the file and offset; garbage collection by
//! segment keeps disk use bounded.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use pbft_store::{StoreError, Wal, MAGIC, RECORD_HEADER_BYTES};
use proptest::prelude::*;

/// A fresh directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pbft-store-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn payloads(dir: &Path) -> Vec<Vec<u8>> {
    let opened = Wal::open(dir).expect("opens");
    opened.records.into_iter().map(|r| r.payload).collect()
}

fn segment_file(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}.wal"))
}

/// Writes `records` synced, one sync per record, in one segment.
fn written(dir: &Path, records: &[&[u8]]) {
    let mut wal = Wal::open(dir).expect("opens").wal;
    for record in records {
        wal.append(record).expect("appends");
        wal.sync().expect("syncs");
    }
}

#[test]
fn records_come_back_in_order_across_segments_and_reopenings() {
    let dir = TempDir::new();
    let mut wal = Wal::open(&dir.0).expect("opens").wal;
    wal.append(b"one").expect("appends");
    wal.append(b"two").expect("appends");
    assert_eq!(wal.rotate().expect("rotates"), 1);
    wal.append(b"three").expect("appends");
    wal.sync().expect("syncs");
    drop(wal);
    let mut opened = Wal::open(&dir.0).expect("opens");
    assert!(opened.torn.is_none());
    let segments: Vec<u64> = opened.records.iter().map(|r| r.segment).collect();
    assert_eq!(segments, [0, 0, 1]);
    opened.wal.append(b"four").expect("appends");
    opened.wal.sync().expect("syncs");
    drop(opened);
    assert_eq!(
        payloads(&dir.0),
        [&b"one"[..], b"two", b"three", b"four"].map(<[u8]>::to_vec)
    );
}

#[test]
fn one_sync_makes_a_group_durable_and_nothing_unsynced_survives() {
    let dir = TempDir::new();
    let mut wal = Wal::open(&dir.0).expect("opens").wal;
    for i in 0..100u32 {
        wal.append(&i.to_le_bytes()).expect("appends");
    }
    wal.sync().expect("syncs");
    wal.sync().expect("nothing to sync");
    assert_eq!(wal.syncs(), 1, "one sync for the group");
    wal.append(b"never synced").expect("appends");
    drop(wal);
    let back = payloads(&dir.0);
    assert_eq!(back.len(), 100);
    assert_eq!(back[99], 99u32.to_le_bytes());
}

#[test]
fn a_truncated_file_loses_only_its_torn_last_record() {
    let dir = TempDir::new();
    written(&dir.0, &[b"alpha", b"beta", b"gamma"]);
    let path = segment_file(&dir.0, 0);
    let len = fs::metadata(&path).expect("exists").len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(len - 2))
        .expect("truncates");
    let mut opened = Wal::open(&dir.0).expect("a torn tail is no reason to refuse");
    let torn = opened.torn.clone().expect("reported");
    let gamma_at = (MAGIC.len() + 2 * RECORD_HEADER_BYTES + 5 + 4) as u64;
    assert_eq!((torn.path.clone(), torn.offset), (path.clone(), gamma_at));
    assert_eq!(torn.dropped, RECORD_HEADER_BYTES as u64 + 5 - 2);
    assert_eq!(opened.records.len(), 2);
    assert_eq!(
        fs::metadata(&path).expect("exists").len(),
        gamma_at,
        "cut back"
    );
    // The log goes on from there.
    opened.wal.append(b"delta").expect("appends");
    opened.wal.sync().expect("syncs");
    drop(opened);
    assert_eq!(
        payloads(&dir.0),
        [&b"alpha"[..], b"beta", b"delta"].map(<[u8]>::to_vec)
    );
}

#[test]
fn a_bit_flipped_in_the_middle_refuses_to_open_naming_file_and_offset() {
    let dir = TempDir::new();
    written(&dir.0, &[b"alpha", b"beta", b"gamma"]);
    let path = segment_file(&dir.0, 0);
    let mut bytes = fs::read(&path).expect("reads");
    let beta_at = MAGIC.len() + RECORD_HEADER_BYTES + 5;
    bytes[beta_at + RECORD_HEADER_BYTES + 1] ^= 0x04;
    fs::write(&path, &bytes).expect("writes");
    let error = Wal::open(&dir.0).expect_err("refused");
    match &error {
        StoreError::Corrupt {
            path: p, offset, ..
        } => {
            assert_eq!((p, *offset), (&path, beta_at as u64));
        }
        other => panic!("not corruption: {other:?}"),
    }
    let text = error.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains(&format!("byte {beta_at}")), "{text}");
    // Nothing was cut: the file is as it was, for someone to look at.
    assert_eq!(fs::read(&path).expect("reads"), bytes);
}

#[test]
fn damage_at_the_end_of_an_older_segment_is_corruption_not_a_torn_tail() {
    let dir = TempDir::new();
    let mut wal = Wal::open(&dir.0).expect("opens").wal;
    wal.append(b"old").expect("appends");
    wal.rotate().expect("rotates");
    wal.append(b"new").expect("appends");
    wal.sync().expect("syncs");
    drop(wal);
    let old = segment_file(&dir.0, 0);
    let mut bytes = fs::read(&old).expect("reads");
    *bytes.last_mut().expect("a byte") ^= 0x80;
    fs::write(&old, &bytes).expect("writes");
    assert!(matches!(
        Wal::open(&dir.0),
        Err(StoreError::Corrupt { path, .. }) if path == old
    ));
}

#[test]
fn a_segment_with_a_bad_header_is_refused() {
    let dir = TempDir::new();
    written(&dir.0, &[b"alpha"]);
    let path = segment_file(&dir.0, 0);
    let mut bytes = fs::read(&path).expect("reads");
    bytes[0] = b'X';
    fs::write(&path, &bytes).expect("writes");
    let error = Wal::open(&dir.0).expect_err("refused");
    assert!(error.to_string().contains("PBFTWAL1"), "{error}");
}

#[test]
fn removing_old_segments_keeps_disk_use_bounded() {
    let dir = TempDir::new();
    let mut wal = Wal::open(&dir.0).expect("opens").wal;
    let mut most = 0;
    for round in 0..50u32 {
        for _ in 0..20 {
            wal.append(&[round as u8; 100]).expect("appends");
        }
        let index = wal.rotate().expect("rotates");
        // What the older segments held and is still needed, again.
        wal.append(b"checkpoint").expect("appends");
        wal.sync().expect("syncs");
        wal.remove_before(index).expect("removes");
        most = most.max(wal.disk_bytes());
        assert_eq!(wal.segments(), [index]);
    }
    assert!(most < 4096, "{most} bytes at most");
    let on_disk = fs::read_dir(&dir.0).expect("lists").count();
    assert_eq!(on_disk, 1);
    drop(wal);
    assert_eq!(payloads(&dir.0), [b"checkpoint".to_vec()]);
}

#[test]
fn other_files_in_the_directory_are_left_alone() {
    let dir = TempDir::new();
    written(&dir.0, &[b"alpha"]);
    fs::write(dir.0.join("notes.txt"), "kept").expect("writes");
    assert_eq!(payloads(&dir.0), [b"alpha".to_vec()]);
    assert!(dir.0.join("notes.txt").exists());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Wherever a crash cuts the newest segment, the log opens with the
    /// records wholly before the cut, and only those.
    #[test]
    fn any_cut_of_the_newest_segment_keeps_exactly_the_whole_records(
        records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..12),
        cut in 0.0f64..1.0,
    ) {
        let dir = TempDir::new();
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        written(&dir.0, &refs);
        let path = segment_file(&dir.0, 0);
        let len = fs::metadata(&path).expect("exists").len();
        let keep = (len as f64 * cut) as u64;
        fs::OpenOptions::new().write(true).open(&path).and_then(|f| f.set_len(keep)).expect("cuts");
        let back = payloads(&dir.0);
        let mut end = MAGIC.len() as u64;
        let whole: Vec<Vec<u8>> = records
            .iter()
            .take_while(|r| {
                end += (RECORD_HEADER_BYTES + r.len()) as u64;
                end <= keep
            })
            .cloned()
            .collect();
        prop_assert_eq!(back, whole);
    }
}
