//! A TCP frame of `pbft-net` holds exactly what the node reads as one
//! line, so every message that fits the stdio transport fits TCP too.

#[test]
fn a_frame_holds_the_longest_line_and_so_the_largest_batch() {
    assert_eq!(pbft_net::MAX_FRAME_BYTES, pbft_node::lines::MAX_LINE_BYTES);
    // The flag's ceiling leaves room for the pre-prepare's envelope.
    const { assert!(2 * pbft_node::cli::MAX_BATCH_BYTES_FLAG <= pbft_net::MAX_FRAME_BYTES) };
}
