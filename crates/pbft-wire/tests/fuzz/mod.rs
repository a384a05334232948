//! Generators and mutators for `fuzz_decode.rs`.

pub mod generate;
pub mod mutate;
