//! SHA-256 digests of requests, batches and states.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::hex::{self, ParseHexError};

/// A SHA-256 digest. On the wire it is 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// SHA-256 of the concatenation of `parts`, without copying them
    /// together.
    pub fn of_parts(parts: &[&[u8]]) -> Digest {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Digest(hasher.finalize().into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex::write(f, &self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight hex characters identify a digest in logs and test failures.
        write!(f, "Digest({})", &self.to_string()[..8])
    }
}

impl FromStr for Digest {
    type Err = ParseHexError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        hex::parse(text).map(Digest)
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
        assert_eq!(
            "abc".parse::<Digest>(),
            Err(ParseHexError::Length {
                expected: 64,
                found: 3
            })
        );
        let bad = "g".repeat(64);
        assert_eq!(bad.parse::<Digest>(), Err(ParseHexError::NotHex));
    }
}
