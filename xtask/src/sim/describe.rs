//! One-line descriptions of the protocol's control messages, for
//! `cargo xtask sim --seed S --verbose`.

use pbft_core::Message;

/// Describes a view change, new view, pre-prepare or state-transfer
/// message; `None` for the normal-case votes and forwards, which are too
/// many to print.
pub fn describe(message: &Message) -> Option<String> {
    Some(match message {
        Message::ViewChange(vc) => format!(
            "view-change {} (checkpoint {}, {} prepared)",
            vc.new_view,
            vc.checkpoint.seq,
            vc.prepared.len()
        ),
        Message::NewView(nv) => format!(
            "new-view {} ({} view changes, {} pre-prepares)",
            nv.view,
            nv.view_changes.len(),
            nv.pre_prepares.len()
        ),
        Message::PrePrepare(pp) => format!(
            "pre-prepare {} {} ({} requests)",
            pp.view,
            pp.seq,
            pp.batch.as_ref().map_or(0, |batch| batch.len())
        ),
        Message::FetchState(fetch) => match (&fetch.report, fetch.chunks) {
            (_, Some(range)) => format!(
                "fetch-state {} (chunks {}+{} of {})",
                fetch.seq, range.first, range.count, range.checkpoint
            ),
            (Some(report), None) => format!(
                "status report {} through {} ({} pending)",
                fetch.seq,
                report.through,
                report.pending.len()
            ),
            (None, None) => format!("fetch-state {}", fetch.seq),
        },
        Message::State(state) => match (&state.chunk, &state.manifest) {
            (Some(chunk), _) => format!("state {} chunk {}", state.checkpoint.seq, chunk.index),
            (None, Some(manifest)) => format!(
                "state {} ({} chunks, {} committed)",
                state.checkpoint.seq,
                manifest.chunks.len(),
                state.committed.len()
            ),
            (None, None) => format!(
                "state {} ({} committed)",
                state.checkpoint.seq,
                state.committed.len()
            ),
        },
        _ => return None,
    })
}
