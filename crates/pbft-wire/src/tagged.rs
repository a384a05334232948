//! Reading a [`Body`]: find its `type`, then read the rest as that type.
//!
//! serde's derived internally tagged enums copy every body into a buffer
//! before they look at `type`. Here, when `type` is the body's first field
//! (as [`encode`](crate::encode) writes it), the remaining fields are read
//! straight from the input as the tagged type, with no copy. A body whose
//! `type` comes later goes to [`Tagged`], the derived enum, which buffers
//! it as before.
//!
//! Either way a body is a JSON object with exactly one `type`, a string:
//! a second `type` is refused as a duplicate field, so that no reader can
//! take a message for a different type than another reader does.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer, StrDeserializer};
use serde::de::{DeserializeSeed, Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::body::Body;
use crate::variants::{variant, Tagged};

/// The name of the field that says a body's type.
const TAG: &str = "type";

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Body, D::Error> {
        deserializer.deserialize_map(BodyVisitor)
    }
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Body;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("internally tagged enum Body")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
        let Some(first) = map.next_key_seed(field_name(Forward))? else {
            return Err(A::Error::missing_field(TAG));
        };
        if first.is_tag {
            let tag = map.next_value_seed(tag_name(Borrow))?;
            return variant(&tag, MapAccessDeserializer::new(AfterTag(map)));
        }
        let rest = Buffered {
            first: Some(first.name),
            map,
            at_tag: false,
        };
        Tagged::deserialize(MapAccessDeserializer::new(rest)).map(Body::from)
    }
}

/// What a field name seed makes of a name, told whether it is the tag.
trait NameSeed<'de>: Sized {
    /// What the name becomes.
    type Value;

    /// Takes `name`, which is the tag if `is_tag`.
    fn name<E: serde::de::Error>(
        self,
        name: Named<'_, 'de>,
        is_tag: bool,
    ) -> Result<Self::Value, E>;
}

/// A string as a deserializer hands it over: borrowed from the input, or
/// only for the call.
#[derive(Clone, Copy)]
enum Named<'a, 'de> {
    Borrowed(&'de str),
    Transient(&'a str),
}

impl Named<'_, '_> {
    fn as_str(&self) -> &str {
        match self {
            Named::Borrowed(s) => s,
            Named::Transient(s) => s,
        }
    }
}

/// Reads a string and hands it to a [`NameSeed`], noting whether it is
/// the tag; anything but a string is refused as not what is `expecting`.
struct Str<S> {
    seed: S,
    expecting: &'static str,
}

/// A field name.
fn field_name<S>(seed: S) -> Str<S> {
    Str {
        seed,
        expecting: "a field name",
    }
}

/// The value of `type`, worded as serde's derived enums word it.
fn tag_name<S>(seed: S) -> Str<S> {
    Str {
        seed,
        expecting: "variant identifier",
    }
}

impl<'de, S: NameSeed<'de>> DeserializeSeed<'de> for Str<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, S: NameSeed<'de>> Visitor<'de> for Str<S> {
    type Value = S::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<S::Value, E> {
        self.seed.name(Named::Borrowed(s), s == TAG)
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<S::Value, E> {
        self.seed.name(Named::Transient(s), s == TAG)
    }
}

/// A body's first field name.
struct First {
    is_tag: bool,
    name: String,
}

/// Keeps a name, noting whether it is the tag.
struct Forward;

impl<'de> NameSeed<'de> for Forward {
    type Value = First;

    fn name<E: serde::de::Error>(self, name: Named<'_, 'de>, is_tag: bool) -> Result<First, E> {
        Ok(First {
            is_tag,
            // The tag's name is not needed again; only other names are kept.
            name: if is_tag {
                String::new()
            } else {
                name.as_str().to_string()
            },
        })
    }
}

/// Keeps the value of `type`, borrowed from the input when it can be.
struct Borrow;

impl<'de> NameSeed<'de> for Borrow {
    type Value = Cow<'de, str>;

    fn name<E: serde::de::Error>(self, name: Named<'_, 'de>, _: bool) -> Result<Self::Value, E> {
        Ok(match name {
            Named::Borrowed(s) => Cow::Borrowed(s),
            Named::Transient(s) => Cow::Owned(s.to_string()),
        })
    }
}

/// Passes a name on to a serde seed (a struct's field identifier, or a
/// buffer), refusing it if it is the tag.
struct NotTag<K>(K);

impl<'de, K: DeserializeSeed<'de>> NameSeed<'de> for NotTag<K> {
    type Value = K::Value;

    fn name<E: serde::de::Error>(self, name: Named<'_, 'de>, is_tag: bool) -> Result<K::Value, E> {
        if is_tag {
            return Err(E::duplicate_field(TAG));
        }
        pass_on(self.0, name)
    }
}

/// Passes a name on to a serde seed, noting whether it is the tag.
struct Noting<K>(K);

impl<'de, K: DeserializeSeed<'de>> NameSeed<'de> for Noting<K> {
    type Value = (K::Value, bool);

    fn name<E: serde::de::Error>(
        self,
        name: Named<'_, 'de>,
        is_tag: bool,
    ) -> Result<Self::Value, E> {
        pass_on(self.0, name).map(|value| (value, is_tag))
    }
}

/// Passes a name on to a serde seed.
struct Plain<K>(K);

impl<'de, K: DeserializeSeed<'de>> NameSeed<'de> for Plain<K> {
    type Value = K::Value;

    fn name<E: serde::de::Error>(self, name: Named<'_, 'de>, _: bool) -> Result<K::Value, E> {
        pass_on(self.0, name)
    }
}

fn pass_on<'de, K: DeserializeSeed<'de>, E: serde::de::Error>(
    seed: K,
    name: Named<'_, 'de>,
) -> Result<K::Value, E> {
    match name {
        Named::Borrowed(s) => seed.deserialize(BorrowedStrDeserializer::new(s)),
        Named::Transient(s) => seed.deserialize(StrDeserializer::new(s)),
    }
}

/// The rest of a body after its `type`, which refuses a second `type`.
struct AfterTag<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for AfterTag<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(field_name(NotTag(seed)))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

/// A body whose first field name, `first`, has been read already, for
/// [`Tagged`] to buffer. Its `type` must be a string.
struct Buffered<A> {
    first: Option<String>,
    map: A,
    /// Whether the last name handed out was `type`.
    at_tag: bool,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Buffered<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        if let Some(name) = self.first.take() {
            self.at_tag = false;
            return pass_on(seed, Named::Transient(&name)).map(Some);
        }
        let Some((key, is_tag)) = self.map.next_key_seed(field_name(Noting(seed)))? else {
            return Ok(None);
        };
        self.at_tag = is_tag;
        Ok(Some(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        if self.at_tag {
            // Buffered as is, a number would be taken as a variant index.
            self.map.next_value_seed(tag_name(Plain(seed)))
        } else {
            self.map.next_value_seed(seed)
        }
    }
}
