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
        Message::FetchState(fetch) => match &fetch.report {
            None => format!("fetch-state {}", fetch.seq),
            Some(report) => format!(
                "status report {} through {} ({} pending)",
                fetch.seq,
                report.through,
                report.pending.len()
            ),
        },
        Message::State(state) => format!(
            "state {} ({} committed)",
            state.checkpoint.seq,
            state.committed.len()
        ),
        _ => return None,
    })
}
