//! The embedded-wire carrier: every replica message goes through the JSON
//! codec of `pbft-wire` and back, as it would between replica processes
//! (see `pbft-node`'s replica mode), but without pipes or processes.
//!
//! Core message → `Directory::message_to_body` → `encode` (one JSON line)
//! → `decode` → `Directory::body_to_message` → core message.

use pbft_core::Envelope;
use pbft_wire::{decode, encode, Directory};

use super::embedded::Carrier;

/// Encodes and decodes every message; counts the bytes.
pub struct JsonLines {
    directory: Directory,
    msg_id: u64,
    /// Bytes of JSON lines carried, newline excluded.
    pub bytes: u64,
}

impl JsonLines {
    /// A codec for replicas `n1` to `n<n>`.
    pub fn new(n: usize) -> Result<JsonLines, String> {
        let names = (1..=n).map(|i| format!("n{i}")).collect();
        Ok(JsonLines {
            directory: Directory::new(names).map_err(|e| e.to_string())?,
            msg_id: 0,
            bytes: 0,
        })
    }

    fn name(&self, id: pbft_core::ReplicaId) -> Result<String, String> {
        self.directory
            .name_of(id)
            .map(str::to_string)
            .ok_or_else(|| format!("replica {id} has no node id"))
    }

    fn id(&self, name: &str) -> Result<pbft_core::ReplicaId, String> {
        self.directory
            .id_of(name)
            .ok_or_else(|| format!("{name:?} is not a replica"))
    }
}

impl Carrier for JsonLines {
    fn carry(&mut self, envelope: Envelope) -> Result<Envelope, String> {
        self.msg_id += 1;
        let body = self
            .directory
            .message_to_body(&envelope.signed, Some(self.msg_id))
            .map_err(|e| format!("cannot encode a {}: {e}", envelope.signed.message.kind()))?;
        let line = encode(&pbft_wire::Envelope {
            src: self.name(envelope.from)?,
            dest: self.name(envelope.to)?,
            body,
        });
        self.bytes += line.len() as u64;
        let decoded = decode(&line).map_err(|e| format!("cannot decode {line}: {e}"))?;
        let signed = self
            .directory
            .body_to_message(&decoded.body)
            .map_err(|e| format!("cannot convert {line}: {e}"))?;
        Ok(Envelope {
            from: self.id(&decoded.src)?,
            to: self.id(&decoded.dest)?,
            signed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::embedded;
    use super::*;

    #[test]
    fn a_cluster_runs_through_the_codec() {
        let mut codec = JsonLines::new(4).unwrap();
        let outcome = embedded::run(3, 30, &mut codec, &mut |_| {}).unwrap();
        assert_eq!(outcome.completed, 30);
        assert!(codec.bytes > 0);
    }
}
