//! Helpers shared by this crate's integration tests.

/// Every example line of `docs/protocol.md`: the non-empty lines of its
/// ```` ```json ```` blocks, in order.
pub fn protocol_examples() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md");
    let text = std::fs::read_to_string(path).expect("docs/protocol.md is readable");
    let mut lines = Vec::new();
    let mut in_json = false;
    for line in text.lines() {
        match line.trim() {
            "```json" => in_json = true,
            "```" => in_json = false,
            example if in_json && !example.is_empty() => lines.push(example.to_string()),
            _ => {}
        }
    }
    lines
}
