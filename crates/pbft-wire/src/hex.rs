//! Digests and signatures on the wire: fixed-length lowercase hex.
//!
//! Both directions work on the stack: a value is written into a fixed
//! buffer rather than through `Display` (one formatter call per byte), and
//! read straight from the JSON text rather than from an owned copy.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use pbft_core::{Digest, Signature};

use serde::de::Visitor;
use serde::ser::Error as _;
use serde::{Deserializer, Serializer};

/// The longest value written as hex, in bytes: a signature.
const MAX_BYTES: usize = 64;

/// A value written as fixed-length hex, and what to call it in errors.
pub trait Hex: FromStr<Err = pbft_core::ParseHexError> {
    /// The name used in error messages.
    const NAME: &'static str;

    /// The raw bytes, at most [`MAX_BYTES`] of them.
    fn bytes(&self) -> &[u8];
}

impl Hex for Digest {
    const NAME: &'static str = "digest";

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Hex for Signature {
    const NAME: &'static str = "signature";

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Writes a value as lowercase hex, the same text as its `Display`.
pub fn serialize<T: Hex, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let bytes = value.bytes();
    let mut text = [0u8; 2 * MAX_BYTES];
    let Some(text) = text.get_mut(..2 * bytes.len()) else {
        return Err(S::Error::custom(format!("{} too long", T::NAME)));
    };
    for (pair, byte) in text.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    // Hex digits are ASCII, so this cannot fail.
    let text = std::str::from_utf8(text).map_err(S::Error::custom)?;
    serializer.serialize_str(text)
}

/// Reads a value from hex, naming what is wrong with a bad one.
pub fn deserialize<'de, T: Hex, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
    deserializer.deserialize_str(HexVisitor(PhantomData))
}

/// Parses the string it is given, borrowed or not, without copying it.
struct HexVisitor<T>(PhantomData<T>);

impl<T: Hex> Visitor<'_> for HexVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
        text.parse()
            .map_err(|e| E::custom(format!("invalid {}: {e}", T::NAME)))
    }
}

/// The same for an optional value: absent is `None`.
pub mod optional {
    use super::*;

    /// Writes `Some` values as hex (`None` is skipped by the field).
    pub fn serialize<T: Hex, S: Serializer>(
        value: &Option<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => super::serialize(v, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Reads a present value.
    pub fn deserialize<'de, T: Hex, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        super::deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_display_writes() {
        let digest = Digest::of(b"abc");
        let line = serde_json::to_string(&Wrapper(digest)).expect("serializes");
        assert_eq!(line, format!("\"{digest}\""));
        let signature = Signature([0xa5; 64]);
        let line = serde_json::to_string(&Wrapper(signature)).expect("serializes");
        assert_eq!(line, format!("\"{signature}\""));
    }

    #[test]
    fn reads_escaped_and_borrowed_text_alike() {
        let digest = Digest::of(b"abc");
        let text = digest.to_string();
        // The first digit written as a `\u` escape: serde_json hands the
        // visitor a transient copy instead of a borrow.
        let first = u32::from(text.as_bytes()[0]);
        for line in [
            format!("\"{text}\""),
            format!("\"\\u{first:04x}{}\"", &text[1..]),
        ] {
            let mut de = serde_json::Deserializer::from_str(&line);
            assert_eq!(
                deserialize::<Digest, _>(&mut de).ok(),
                Some(digest),
                "{line}"
            );
        }
        let mut de = serde_json::Deserializer::from_str("7");
        let error = deserialize::<Digest, _>(&mut de).expect_err("not a string");
        assert!(error.to_string().contains("expected a string"), "{error}");
    }

    struct Wrapper<T>(T);

    impl<T: Hex> serde::Serialize for Wrapper<T> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serialize(&self.0, serializer)
        }
    }
}
