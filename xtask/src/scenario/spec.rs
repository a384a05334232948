//! The scenario file: TOML, documented in docs/scenarios.md.

use std::path::Path;

use pbft_node::byzantine::Behaviour;
use serde::Deserialize;

/// One scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A short name for reports.
    pub name: String,
    /// What the scenario shows.
    #[serde(default)]
    pub description: String,
    /// How many replica processes.
    #[serde(default = "default_nodes")]
    pub nodes: usize,
    /// `keys` (Ed25519, the default) or `none`.
    #[serde(default = "default_auth")]
    pub auth: String,
    /// Passed to every node.
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval: u64,
    /// Passed to every node.
    #[serde(default = "default_timeout")]
    pub view_change_timeout_ms: u64,
    /// Passed to every node.
    #[serde(default = "default_tick")]
    pub tick_ms: u64,
    /// The seed of the network's random choices.
    #[serde(default)]
    pub seed: u64,
    /// Each node keeps its records in a data directory of its own
    /// (`--data-dir`), and a `restart` starts it again from there.
    #[serde(default)]
    pub durable: bool,
    /// How long after the last fault heals every write must be answered.
    #[serde(default = "default_settle")]
    pub settle_ms: u64,
    /// One replica started with a Byzantine behaviour (a testing aid of
    /// the node, `pbft_node::byzantine::Behaviour`).
    #[serde(default)]
    pub byzantine: Option<Byzantine>,
    /// The client workload.
    pub workload: Workload,
    /// Faults on a timeline.
    #[serde(default)]
    pub faults: Vec<Fault>,
}

/// The faulty replica.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Byzantine {
    /// Its node id.
    pub node: String,
    /// Its behaviour.
    pub behaviour: String,
}

/// The clients, through Maelstrom's lin-kv: either `writes` clients that
/// each write their own key, or `clients` clients that each run `ops`
/// random reads, writes and compare-and-sets on `keys` shared keys.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// How many writes, each from its own client.
    #[serde(default)]
    pub writes: u64,
    /// How many seed-protocol `pbft_request`s, each from its own client,
    /// issued alongside the writes; answered at pre-prepare.
    #[serde(default)]
    pub requests: u64,
    /// How many concurrent clients of the mixed workload (0: writes only).
    #[serde(default)]
    pub clients: u32,
    /// Operations per mixed client, one at a time.
    #[serde(default)]
    pub ops: u64,
    /// Keys the mixed clients share.
    #[serde(default = "default_keys")]
    pub keys: u32,
    /// Milliseconds between writes.
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// Where each write goes first: `round-robin`, `all`, or a node id.
    #[serde(default = "default_to")]
    pub to: String,
    /// A write unanswered this long is sent again to every node.
    #[serde(default = "default_retry")]
    pub retry_ms: u64,
}

/// One fault, at a time since the start.
#[derive(Clone, Debug, Deserialize)]
pub struct Fault {
    /// When, in milliseconds since the start.
    pub at_ms: u64,
    /// What happens.
    #[serde(flatten)]
    pub kind: FaultKind,
}

/// What a fault does.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// The node's process is killed.
    Kill {
        /// The node.
        node: String,
    },
    /// The node's process is started again, with empty memory.
    Restart {
        /// The node.
        node: String,
    },
    /// Messages between groups are dropped until `heal`.
    Partition {
        /// The groups; nodes in no group are alone.
        groups: Vec<Vec<String>>,
    },
    /// The partition ends.
    Heal,
    /// Links drop, duplicate and delay messages until `network_ok`.
    /// Random delays reorder them. `from` and `to` pick the links (a node
    /// id, or `*` for every node, the default); a later rule for the same
    /// link wins.
    Network {
        /// The sending side.
        #[serde(default = "any_node")]
        from: String,
        /// The receiving side.
        #[serde(default = "any_node")]
        to: String,
        /// Chance of dropping a message, 0 to 1.
        #[serde(default)]
        drop: f64,
        /// Chance of delivering it twice.
        #[serde(default)]
        duplicate: f64,
        /// The most a message is delayed, in milliseconds.
        #[serde(default)]
        max_delay_ms: u64,
    },
    /// The network is reliable again.
    NetworkOk,
}

impl FaultKind {
    /// Whether this fault ends the faults that came before.
    pub fn heals(&self) -> bool {
        matches!(
            self,
            FaultKind::Heal | FaultKind::NetworkOk | FaultKind::Restart { .. }
        )
    }
}

fn any_node() -> String {
    "*".into()
}

fn default_nodes() -> usize {
    4
}
fn default_auth() -> String {
    "keys".into()
}
fn default_checkpoint_interval() -> u64 {
    8
}
fn default_timeout() -> u64 {
    300
}
fn default_tick() -> u64 {
    5
}
fn default_settle() -> u64 {
    8000
}
fn default_keys() -> u32 {
    3
}
fn default_interval() -> u64 {
    40
}
fn default_to() -> String {
    "round-robin".into()
}
fn default_retry() -> u64 {
    600
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let scenario: Scenario =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        scenario
            .validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(scenario)
    }

    /// The node ids, n1..nN.
    pub fn node_ids(&self) -> Vec<String> {
        (1..=self.nodes).map(|i| format!("n{i}")).collect()
    }

    fn validate(&self) -> Result<(), String> {
        if self.nodes == 0 || self.nodes > 16 {
            return Err(format!("nodes must be 1 to 16, not {}", self.nodes));
        }
        if self.auth != "keys" && self.auth != "none" {
            return Err(format!(
                "auth must be \"keys\" or \"none\", not {:?}",
                self.auth
            ));
        }
        let w = &self.workload;
        if w.writes + w.requests == 0 && (w.clients == 0 || w.ops == 0) {
            return Err("the workload needs writes, requests, or clients and ops".into());
        }
        let ids = self.node_ids();
        let known = |node: &String| ids.contains(node);
        let to = &self.workload.to;
        if to != "round-robin" && to != "all" && !known(to) {
            return Err(format!(
                "workload.to {to:?} is not round-robin, all or a node"
            ));
        }
        if let Some(b) = &self.byzantine {
            if !known(&b.node) {
                return Err(format!("byzantine node {:?} is unknown", b.node));
            }
            // Behaviours towards clients would fool this router's clients,
            // which take one reply; the TCP client's tests cover them.
            if !Behaviour::parse(&b.behaviour).is_some_and(|b| Behaviour::ALL.contains(&b)) {
                let names: Vec<&str> = Behaviour::ALL.iter().map(|b| b.name()).collect();
                return Err(format!(
                    "byzantine behaviour {:?} is not one of {}",
                    b.behaviour,
                    names.join(", ")
                ));
            }
        }
        for fault in &self.faults {
            match &fault.kind {
                FaultKind::Kill { node } | FaultKind::Restart { node } if !known(node) => {
                    return Err(format!(
                        "fault at {} ms names unknown node {node:?}",
                        fault.at_ms
                    ))
                }
                FaultKind::Partition { groups } => {
                    if let Some(node) = groups.iter().flatten().find(|n| !known(n)) {
                        return Err(format!("partition names unknown node {node:?}"));
                    }
                }
                FaultKind::Network {
                    drop, duplicate, ..
                } if !(0.0..=1.0).contains(drop) || !(0.0..=1.0).contains(duplicate) => {
                    return Err("network drop and duplicate are chances from 0 to 1".into())
                }
                FaultKind::Network { from, to, .. }
                    if [from, to].iter().any(|n| n.as_str() != "*" && !known(n)) =>
                {
                    return Err(format!(
                        "network fault names unknown node {from:?} or {to:?}"
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }
}
