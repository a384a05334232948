//! Fuzzes the wire decoder: `pbft_wire::decode` must never panic, and
//! whatever it accepts must round-trip: `decode(encode(x)) == x`, and a
//! second encoding equals the first.
//!
//! Run from `crates/pbft-wire`: `cargo +nightly fuzz run decode`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pbft_wire::{decode, encode};

fuzz_target!(|data: &[u8]| {
    // The node skips lines that are not UTF-8 before decoding, so only text
    // reaches `decode`.
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(envelope) = decode(line) else {
        return;
    };
    let encoded = encode(&envelope);
    let again = match decode(&encoded) {
        Ok(again) => again,
        Err(e) => panic!("{line:?} re-encoded as {encoded:?}, which is refused: {e}"),
    };
    assert_eq!(again, envelope, "{line:?} re-encoded as {encoded:?}");
    assert_eq!(
        encode(&again),
        encoded,
        "{line:?}: a second encoding differs"
    );
});
