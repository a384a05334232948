//! One segment's bytes: the header, the record encoding, and reading a
//! segment back, record by record, up to the first that does not check.

use std::path::PathBuf;

/// The first 8 bytes of every segment file.
pub const MAGIC: &[u8; 8] = b"PBFTWAL1";

/// The bytes before each record's payload: its length, the length's
/// checksum and the record's checksum.
pub const RECORD_HEADER_BYTES: usize = 12;

/// The largest payload a record may have: 256 MiB. A length past it is
/// taken as damage, so reading never allocates more than the file holds.
pub const MAX_RECORD_BYTES: usize = 256 << 20;

/// A torn tail that [`Wal::open`](crate::Wal::open) cut off the newest
/// segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Torn {
    /// The segment file.
    pub path: PathBuf,
    /// Where the file now ends: the end of its last good record.
    pub offset: u64,
    /// How many bytes were cut.
    pub dropped: u64,
}

/// Appends the record for `payload` to `out`.
pub(crate) fn encode(payload: &[u8], out: &mut Vec<u8>) {
    let len = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
    out.extend_from_slice(&checksum(len, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

fn checksum(len: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len);
    hasher.update(payload);
    hasher.finalize()
}

/// The first place in a segment that does not check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Bad {
    /// Its byte offset in the segment.
    pub offset: usize,
    /// What is wrong.
    pub reason: String,
    /// Whether it looks as a crash leaves the end of the newest segment:
    /// cut short, followed only by zeros, or ending exactly at the end.
    pub torn: bool,
}

/// The records of a segment whose bytes are `bytes`, in order, up to the
/// first place that does not check, if any.
pub(crate) fn parse(bytes: &[u8]) -> (Vec<Vec<u8>>, Option<Bad>) {
    let mut records = Vec::new();
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC[..] {
        let short = bytes.len() < MAGIC.len();
        let bad = Bad {
            offset: 0,
            reason: if short {
                "the segment header is cut short".into()
            } else {
                "not a log segment (its header is not PBFTWAL1)".into()
            },
            torn: short && (MAGIC.starts_with(bytes) || zeros(bytes)),
        };
        return (records, Some(bad));
    }
    let mut at = MAGIC.len();
    while at < bytes.len() {
        let rest = &bytes[at..];
        let bad = |reason: String, end: usize| Bad {
            offset: at,
            reason,
            torn: end >= bytes.len() || zeros(rest),
        };
        if rest.len() < RECORD_HEADER_BYTES {
            return (
                records,
                Some(bad("a record header is cut short".into(), usize::MAX)),
            );
        }
        let word = |i: usize| [rest[i], rest[i + 1], rest[i + 2], rest[i + 3]];
        let len_bytes = word(0);
        if crc32fast::hash(&len_bytes) != u32::from_le_bytes(word(4)) {
            // A length that does not check says nothing of where the
            // record ends: torn only if nothing but zeros follows.
            let reason = "a record's length does not match its checksum".to_string();
            return (records, Some(bad(reason, 0)));
        }
        let len = u32::from_le_bytes(len_bytes) as usize;
        let crc = u32::from_le_bytes(word(8));
        let end = at.saturating_add(RECORD_HEADER_BYTES).saturating_add(len);
        if len > MAX_RECORD_BYTES {
            let reason = format!("a record length of {len} bytes is over the limit");
            return (records, Some(bad(reason, 0)));
        }
        if end > bytes.len() {
            let reason = format!("a record of {len} bytes runs past the end of the file");
            return (records, Some(bad(reason, end)));
        }
        let payload = &rest[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len];
        if checksum(len_bytes, payload) != crc {
            return (
                records,
                Some(bad("a record's checksum does not match".into(), end)),
            );
        }
        records.push(payload.to_vec());
        at = end;
    }
    (records, None)
}

fn zeros(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(payloads: &[&[u8]]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        for payload in payloads {
            encode(payload, &mut bytes);
        }
        bytes
    }

    #[test]
    fn records_read_back_in_order() {
        let bytes = segment(&[b"a", b"", b"ccc"]);
        assert_eq!(
            parse(&bytes),
            (vec![b"a".to_vec(), vec![], b"ccc".to_vec()], None)
        );
    }

    #[test]
    fn a_cut_or_zero_filled_or_damaged_last_record_looks_torn() {
        let whole = segment(&[b"first", b"second"]);
        let last = MAGIC.len() + RECORD_HEADER_BYTES + 5;
        for cut in 1..(whole.len() - last) {
            let (records, bad) = parse(&whole[..whole.len() - cut]);
            assert_eq!(records, [b"first".to_vec()], "cut {cut}");
            let bad = bad.expect("the cut record does not check");
            assert_eq!((bad.offset, bad.torn), (last, true), "cut {cut}");
        }
        let mut zeroed = whole[..last].to_vec();
        zeroed.extend([0; 100]);
        assert!(parse(&zeroed).1.expect("zeros do not check").torn);
        let mut flipped = whole.clone();
        *flipped.last_mut().expect("a byte") ^= 1;
        let bad = parse(&flipped).1.expect("a flipped byte does not check");
        assert_eq!((bad.offset, bad.torn), (last, true));
    }

    #[test]
    fn a_damaged_record_with_data_after_it_is_not_torn() {
        let mut bytes = segment(&[b"first", b"second", b"third"]);
        let second = MAGIC.len() + RECORD_HEADER_BYTES + 5;
        bytes[second + RECORD_HEADER_BYTES] ^= 0x40;
        let (records, bad) = parse(&bytes);
        assert_eq!(records, [b"first".to_vec()]);
        let bad = bad.expect("damage");
        assert_eq!((bad.offset, bad.torn), (second, false));
        assert!(bad.reason.contains("checksum"), "{}", bad.reason);
    }

    #[test]
    fn a_damaged_length_in_the_middle_is_not_taken_for_a_torn_tail() {
        let mut bytes = segment(&[b"first", b"second", b"third"]);
        let second = MAGIC.len() + RECORD_HEADER_BYTES + 5;
        // As long as the rest of the file, or longer: a length alone would
        // look like a cut record.
        bytes[second + 1] ^= 0x10;
        let bad = parse(&bytes).1.expect("damage");
        assert_eq!((bad.offset, bad.torn), (second, false));
        assert!(bad.reason.contains("length"), "{}", bad.reason);
    }

    #[test]
    fn a_bad_header_is_named() {
        let (_, bad) = parse(b"NOTALOG!");
        assert!(!bad.expect("a bad header").torn);
        let (_, bad) = parse(b"PBFT");
        assert!(
            bad.expect("a short header").torn,
            "a crash while it was made"
        );
    }
}
