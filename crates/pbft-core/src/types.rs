//! Identifier newtypes shared by every part of the protocol.

use std::fmt;
use std::sync::Arc;

/// Index of a replica in the membership list (`node_ids[i]` on the wire).
///
/// Replica `i` of `n` is the primary of every view `v` with `v mod n == i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplicaId(pub u32);

impl ReplicaId {
    /// The id as a `usize`, for indexing per-replica tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// A view number. View `v` has primary `v mod n` (§4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct View(pub u64);

impl View {
    /// The view after this one.
    ///
    /// Saturates at `u64::MAX`, so a view number chosen by a Byzantine peer
    /// cannot overflow.
    pub fn next(self) -> View {
        View(self.0.saturating_add(1))
    }
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// A sequence number. The first number a primary assigns is 1; `Seq(0)` is
/// the empty prefix (nothing executed yet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub u64);

impl Seq {
    /// The sequence number after this one.
    ///
    /// Saturates at `u64::MAX`, so a sequence number chosen by a Byzantine
    /// peer cannot overflow.
    pub fn next(self) -> Seq {
        Seq(self.0.saturating_add(1))
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A client, identified by the transport (the `src` of its messages).
///
/// Cheap to clone: the name is shared.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub Arc<str>);

impl ClientId {
    /// The client's name as given by the transport.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ClientId {
    fn from(name: &str) -> Self {
        ClientId(Arc::from(name))
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
