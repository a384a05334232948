//! Digests and signatures on the wire: fixed-length lowercase hex.

use std::fmt::Display;
use std::str::FromStr;

use pbft_core::{Digest, Signature};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

/// A value written as fixed-length hex, and what to call it in errors.
pub trait Hex: Display + FromStr<Err = pbft_core::ParseHexError> {
    /// The name used in error messages.
    const NAME: &'static str;
}

impl Hex for Digest {
    const NAME: &'static str = "digest";
}

impl Hex for Signature {
    const NAME: &'static str = "signature";
}

/// Writes a value as its hex `Display`.
pub fn serialize<T: Display, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// Reads a value from hex, naming what is wrong with a bad one.
pub fn deserialize<'de, T: Hex, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    text.parse()
        .map_err(|e| D::Error::custom(format!("invalid {}: {e}", T::NAME)))
}

/// The same for an optional value: absent is `None`.
pub mod optional {
    use super::*;

    /// Writes `Some` values as hex (`None` is skipped by the field).
    pub fn serialize<T: Display, S: Serializer>(
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
