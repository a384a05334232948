//! Digests on the wire: 64 lowercase hex characters.

use pbft_core::Digest;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

/// Writes a digest as hex.
pub fn serialize<S: Serializer>(digest: &Digest, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(digest)
}

/// Reads a digest from hex, naming what is wrong with a bad one.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    text.parse()
        .map_err(|e| D::Error::custom(format!("invalid digest: {e}")))
}

/// The same for an optional digest.
pub mod optional {
    use super::*;

    /// Writes `Some` digests as hex (`None` is skipped by the field).
    pub fn serialize<S: Serializer>(
        digest: &Option<Digest>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match digest {
            Some(d) => super::serialize(d, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Reads a present digest.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Digest>, D::Error> {
        super::deserialize(deserializer).map(Some)
    }
}
