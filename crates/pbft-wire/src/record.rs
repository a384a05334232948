//! The JSON form of a durable replica's [`Record`]s, one JSON object per
//! record, for the node's write-ahead log. Certificates and checkpoints
//! take the bodies they have on the wire (`docs/protocol.md`), so a record
//! holds exactly the signed messages its replica received or sent.
//!
//! ```text
//! {"record":"view","view":3}
//! {"record":"prepared","pre_prepare":{"type":"pbft_pre_prepare",...},"prepares":[...]}
//! {"record":"committed","pre_prepare":{...},"commits":[...]}
//! {"record":"base","checkpoint":{...},"service":"<hex>","clients":"<hex>","view":3,
//!  "prepared":[...],"committed":[...]}
//! ```

use std::fmt;
use std::sync::Arc;

use pbft_core::{hex, Base, Record, View};
use serde::{Deserialize, Serialize};

use crate::body::{WireCommitted, WirePrepared, WireStableCheckpoint};
use crate::convert::{snapshot, PeerError};
use crate::directory::Directory;

#[derive(Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case", deny_unknown_fields)]
enum WireRecord {
    View { view: u64 },
    Prepared(WirePrepared),
    Committed(WireCommitted),
    Base(Box<WireBase>),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireBase {
    checkpoint: WireStableCheckpoint,
    service: String,
    clients: String,
    view: u64,
    prepared: Vec<WirePrepared>,
    committed: Vec<WireCommitted>,
}

/// Why bytes are not a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// Not JSON of a record.
    Json(String),
    /// A record that names what the directory does not hold.
    Peer(PeerError),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Json(e) => write!(f, "not a record: {e}"),
            RecordError::Peer(e) => write!(f, "a record that does not fit the cluster: {e}"),
        }
    }
}

impl std::error::Error for RecordError {}

impl Directory {
    /// The JSON bytes of `record`.
    pub fn record_to_json(&self, record: &Record) -> Result<Vec<u8>, PeerError> {
        let wire = match record {
            Record::View(view) => WireRecord::View { view: view.0 },
            Record::Prepared(cert) => WireRecord::Prepared(self.wire_prepared(cert)?),
            Record::Committed(cert) => WireRecord::Committed(self.wire_committed(cert)?),
            Record::Base(base) => WireRecord::Base(Box::new(WireBase {
                checkpoint: self.wire_stable(&base.checkpoint)?,
                service: hex::encode(&base.service),
                clients: hex::encode(&base.clients),
                view: base.view.0,
                prepared: base
                    .prepared
                    .iter()
                    .map(|cert| self.wire_prepared(cert))
                    .collect::<Result<_, _>>()?,
                committed: base
                    .committed
                    .iter()
                    .map(|cert| self.wire_committed(cert))
                    .collect::<Result<_, _>>()?,
            })),
        };
        // Serialising these types cannot fail: every map key is a string.
        Ok(serde_json::to_vec(&wire).unwrap_or_default())
    }

    /// The record `bytes` hold, strictly: unknown fields are refused.
    pub fn record_from_json(&self, bytes: &[u8]) -> Result<Record, RecordError> {
        let wire: WireRecord =
            serde_json::from_slice(bytes).map_err(|e| RecordError::Json(e.to_string()))?;
        let peer = RecordError::Peer;
        Ok(match wire {
            WireRecord::View { view } => Record::View(View(view)),
            WireRecord::Prepared(cert) => {
                Record::Prepared(self.core_prepared(&cert).map_err(peer)?)
            }
            WireRecord::Committed(cert) => {
                Record::Committed(self.core_committed(&cert).map_err(peer)?)
            }
            WireRecord::Base(base) => Record::Base(Box::new(Base {
                checkpoint: self.core_stable(&base.checkpoint).map_err(peer)?,
                service: Arc::new(snapshot(&base.service, "service").map_err(peer)?),
                clients: Arc::new(snapshot(&base.clients, "clients").map_err(peer)?),
                view: View(base.view),
                prepared: base
                    .prepared
                    .iter()
                    .map(|cert| self.core_prepared(cert))
                    .collect::<Result<_, _>>()
                    .map_err(peer)?,
                committed: base
                    .committed
                    .iter()
                    .map(|cert| self.core_committed(cert))
                    .collect::<Result<_, _>>()
                    .map_err(peer)?,
            })),
        })
    }
}

#[cfg(test)]
mod tests {
    use pbft_core::{Cluster, ClusterAuth, Config, KvService, ReplicaId, Request, Seq};

    use super::*;

    /// Every kind of record a durable cluster wrote, through JSON and back.
    #[test]
    fn every_record_a_replica_writes_comes_back_the_same() {
        let config = Config::new(4).with_checkpoint_interval(2);
        let mut c = Cluster::durable(&config, ClusterAuth::Seeded(3), |_| KvService::default())
            .expect("valid");
        for i in 0..3 {
            c.submit(ReplicaId(0), Request::new("c", Some(i + 1), "set x=1"));
            c.stabilize();
        }
        assert_eq!(c.replica(ReplicaId(1)).last_executed(), Seq(3));
        let directory =
            Directory::new(["n1", "n2", "n3", "n4"].map(String::from).to_vec()).expect("directory");
        let records = c.disk(ReplicaId(1)).expect("durable");
        let kinds: Vec<&str> = records.iter().map(Record::kind).collect();
        assert_eq!(kinds, ["base", "prepared", "committed"]);
        let mut all = records.to_vec();
        all.push(Record::View(View(7)));
        for record in all {
            let json = directory.record_to_json(&record).expect("encodes");
            let back = directory.record_from_json(&json).expect("decodes");
            assert_eq!(back, record, "{}", String::from_utf8_lossy(&json));
        }
    }

    #[test]
    fn bytes_that_are_not_a_record_say_so() {
        let directory = Directory::new(vec!["n1".into()]).expect("directory");
        for bad in [
            &b"{\"record\":\"view\"}"[..],
            b"{\"record\":\"view\",\"view\":1,\"extra\":2}",
            b"{\"record\":\"vote\",\"view\":1}",
            b"not json",
            b"",
        ] {
            assert!(
                matches!(directory.record_from_json(bad), Err(RecordError::Json(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
