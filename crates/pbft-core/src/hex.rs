//! Fixed-length hex strings: how digests, signatures and keys are written.
//!
//! Public so that tools reading keys and digests parse them exactly as the
//! core does.

use std::fmt;

/// Why a string is not the hex encoding of a fixed number of bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseHexError {
    /// The string does not have the expected number of characters.
    Length {
        /// Characters expected (two per byte).
        expected: usize,
        /// Characters found.
        found: usize,
    },
    /// A character is not a hex digit.
    NotHex,
}

impl fmt::Display for ParseHexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseHexError::Length { expected, found } => {
                write!(f, "expected {expected} hex characters, found {found}")
            }
            ParseHexError::NotHex => f.write_str("expected only hex digits"),
        }
    }
}

impl std::error::Error for ParseHexError {}

/// Parses exactly `2 * N` hex digits, either case.
pub fn parse<const N: usize>(text: &str) -> Result<[u8; N], ParseHexError> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return Err(ParseHexError::Length {
            expected: 2 * N,
            found: text.chars().count(),
        });
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let hi = value(pair[0]).ok_or(ParseHexError::NotHex)?;
        let lo = value(pair[1]).ok_or(ParseHexError::NotHex)?;
        *slot = (hi << 4) | lo;
    }
    Ok(out)
}

/// Parses any even number of hex digits into bytes.
pub fn parse_vec(text: &str) -> Result<Vec<u8>, ParseHexError> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return Err(ParseHexError::Length {
            expected: bytes.len() + 1,
            found: text.chars().count(),
        });
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some((value(pair[0])? << 4) | value(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or(ParseHexError::NotHex)
}

/// Bytes as a lowercase hex string.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Writes bytes as lowercase hex, for `Display` implementations.
pub fn write(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for byte in bytes {
        write!(f, "{byte:02x}")?;
    }
    Ok(())
}

fn value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_either_case_and_refuses_the_rest() {
        assert_eq!(parse::<2>("0aFf"), Ok([0x0a, 0xff]));
        assert_eq!(
            parse::<2>("0a"),
            Err(ParseHexError::Length {
                expected: 4,
                found: 2
            })
        );
        assert_eq!(parse::<2>("0g00"), Err(ParseHexError::NotHex));
        // Two two-byte characters are four bytes: refused, not split.
        assert_eq!(parse::<2>("éé"), Err(ParseHexError::NotHex));
    }

    #[test]
    fn variable_length_hex_round_trips() {
        let bytes = vec![0, 1, 0xab, 0xff];
        assert_eq!(encode(&bytes), "0001abff");
        assert_eq!(parse_vec("0001ABff"), Ok(bytes));
        assert_eq!(parse_vec(""), Ok(vec![]));
        assert!(parse_vec("abc").is_err());
        assert_eq!(parse_vec("zz"), Err(ParseHexError::NotHex));
    }
}
