//! Replica configuration.

use std::fmt;

use crate::types::ReplicaId;

/// Settings every replica of a cluster must agree on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The number of replicas, `n >= 1`. They are `ReplicaId(0..n)`.
    pub n: usize,
}

impl Config {
    /// A configuration for `n` replicas with default settings.
    pub fn new(n: usize) -> Config {
        Config { n }
    }

    /// Checks the configuration for replica `id`.
    pub fn validate(&self, id: ReplicaId) -> Result<(), ConfigError> {
        if self.n == 0 {
            return Err(ConfigError::NoReplicas);
        }
        if u32::try_from(self.n).is_err() {
            return Err(ConfigError::TooManyReplicas(self.n));
        }
        if id.index() >= self.n {
            return Err(ConfigError::UnknownReplica { id, n: self.n });
        }
        Ok(())
    }
}

/// Why a [`Config`] cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `n` is zero.
    NoReplicas,
    /// `n` does not fit a [`ReplicaId`].
    TooManyReplicas(usize),
    /// The replica's own id is not below `n`.
    UnknownReplica {
        /// The id given.
        id: ReplicaId,
        /// The cluster size.
        n: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NoReplicas => f.write_str("a cluster needs at least one replica"),
            ConfigError::TooManyReplicas(n) => write!(f, "{n} replicas is more than supported"),
            ConfigError::UnknownReplica { id, n } => {
                write!(f, "replica {id} is not one of the {n} replicas")
            }
        }
    }
}

impl std::error::Error for ConfigError {}
