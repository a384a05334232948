//! Node ids on the wire and replica numbers in the core.

use std::collections::HashMap;
use std::fmt;

use pbft_core::ReplicaId;

/// The cluster's node ids, in `init` order: replica `i` of the core is
/// `node_ids[i]` on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directory {
    names: Vec<String>,
    ids: HashMap<String, ReplicaId>,
}

/// Why a list of node ids cannot name a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirectoryError {
    /// The list is empty.
    Empty,
    /// An id is the empty string.
    EmptyName,
    /// The same id appears twice.
    Duplicate(String),
    /// More ids than replica numbers.
    TooMany(usize),
}

impl fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirectoryError::Empty => f.write_str("node_ids is empty"),
            DirectoryError::EmptyName => f.write_str("node_ids contains an empty id"),
            DirectoryError::Duplicate(name) => write!(f, "node_ids lists {name:?} twice"),
            DirectoryError::TooMany(n) => write!(f, "node_ids has {n} entries, too many"),
        }
    }
}

impl std::error::Error for DirectoryError {}

impl Directory {
    /// Builds the directory for `node_ids`.
    pub fn new(node_ids: Vec<String>) -> Result<Directory, DirectoryError> {
        if node_ids.is_empty() {
            return Err(DirectoryError::Empty);
        }
        if u32::try_from(node_ids.len()).is_err() {
            return Err(DirectoryError::TooMany(node_ids.len()));
        }
        let mut ids = HashMap::with_capacity(node_ids.len());
        for (index, name) in (0u32..).zip(&node_ids) {
            if name.is_empty() {
                return Err(DirectoryError::EmptyName);
            }
            if ids.insert(name.clone(), ReplicaId(index)).is_some() {
                return Err(DirectoryError::Duplicate(name.clone()));
            }
        }
        Ok(Directory {
            names: node_ids,
            ids,
        })
    }

    /// How many replicas.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Always false: a directory names at least one replica.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The replica a node id names, if it is a member.
    pub fn id_of(&self, name: &str) -> Option<ReplicaId> {
        self.ids.get(name).copied()
    }

    /// The node id of a replica, if it is a member.
    pub fn name_of(&self, id: ReplicaId) -> Option<&str> {
        self.names.get(id.index()).map(String::as_str)
    }

    /// The node ids, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn maps_both_ways_in_init_order() {
        let d = Directory::new(names(&["n1", "n2", "n3"])).expect("valid");
        assert_eq!(d.len(), 3);
        assert_eq!(d.id_of("n3"), Some(ReplicaId(2)));
        assert_eq!(d.name_of(ReplicaId(0)), Some("n1"));
        assert_eq!(d.id_of("n9"), None);
        assert_eq!(d.name_of(ReplicaId(3)), None);
    }

    #[test]
    fn refuses_lists_that_cannot_name_a_cluster() {
        assert_eq!(Directory::new(vec![]), Err(DirectoryError::Empty));
        assert_eq!(
            Directory::new(names(&["n1", ""])),
            Err(DirectoryError::EmptyName)
        );
        assert_eq!(
            Directory::new(names(&["n1", "n2", "n1"])),
            Err(DirectoryError::Duplicate("n1".into()))
        );
    }
}
