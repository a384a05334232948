//! The transport's defaults that `docs/protocol.md` states are the code's.

use std::time::Duration;

use pbft_net::{NetConfig, MAX_FRAME_BYTES};

fn protocol_doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md");
    std::fs::read_to_string(path)
        .expect("docs/protocol.md")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn mib(bytes: usize) -> usize {
    bytes >> 20
}

fn thousands(n: usize) -> String {
    if n >= 1000 {
        format!("{},{:03}", n / 1000, n % 1000)
    } else {
        n.to_string()
    }
}

fn duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[test]
fn the_protocol_doc_states_the_transports_defaults() {
    let doc = protocol_doc();
    let d = NetConfig::default();
    let stated = [
        format!("payload is at most {} MiB", mib(MAX_FRAME_BYTES)),
        format!("sent after {} without frames", duration(d.heartbeat)),
        format!(
            "nothing arrives for {} (`idle_timeout`)",
            duration(d.idle_timeout)
        ),
        format!(
            "within {} (`handshake_timeout`)",
            duration(d.handshake_timeout)
        ),
        format!(
            "starts at {} and doubles up to {}",
            duration(d.backoff_initial),
            duration(d.backoff_max)
        ),
        format!(
            "at most {} frames and {} MiB (`queue_frames`, `queue_bytes`)",
            thousands(d.queue_frames),
            mib(d.queue_bytes)
        ),
        format!(
            "at most {} (`incoming_events`",
            thousands(d.incoming_events)
        ),
        format!("and {} MiB (`incoming_bytes`", mib(d.incoming_bytes)),
        format!("At most {} accepted connections", d.max_pending_handshakes),
        format!(
            "at most {} bytes each",
            pbft_net::frame::MAX_HANDSHAKE_FRAME_BYTES
        ),
    ];
    for phrase in stated {
        assert!(
            doc.contains(&phrase),
            "docs/protocol.md should say {phrase:?}"
        );
    }
}
