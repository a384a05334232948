//! SHA-256 digests of requests and batches.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A SHA-256 digest. On the wire it is 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight hex characters identify a digest in logs and test failures.
        write!(f, "Digest({})", &self.to_string()[..8])
    }
}

/// Why a string is not a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DigestParseError {
    /// The string does not have exactly 64 characters.
    Length(usize),
    /// A character is not a lowercase or uppercase hex digit.
    NotHex,
}

impl fmt::Display for DigestParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigestParseError::Length(len) => {
                write!(f, "a digest is 64 hex characters, found {len}")
            }
            DigestParseError::NotHex => f.write_str("a digest must contain only hex digits"),
        }
    }
}

impl std::error::Error for DigestParseError {}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return Err(DigestParseError::Length(text.chars().count()));
        }
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let hi = hex_value(pair[0]).ok_or(DigestParseError::NotHex)?;
            let lo = hex_value(pair[1]).ok_or(DigestParseError::NotHex)?;
            *slot = (hi << 4) | lo;
        }
        Ok(Digest(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
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
    fn sha256_of_empty_input_is_the_standard_value() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hex_round_trips() {
        let d = Digest::of(b"abc");
        assert_eq!(d.to_string().parse::<Digest>(), Ok(d));
        assert_eq!(d.to_string().to_uppercase().parse::<Digest>(), Ok(d));
    }

    #[test]
    fn malformed_hex_is_a_typed_error() {
        assert_eq!("abc".parse::<Digest>(), Err(DigestParseError::Length(3)));
        let bad = "g".repeat(64);
        assert_eq!(bad.parse::<Digest>(), Err(DigestParseError::NotHex));
        // 32 two-byte characters are 64 bytes: they must be refused, not split.
        let wide = "é".repeat(32);
        assert_eq!(wide.parse::<Digest>(), Err(DigestParseError::NotHex));
    }
}
