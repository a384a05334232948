//! # pbft-node
//!
//! A PBFT node that speaks Maelstrom-style JSON lines: one message per line
//! on stdin, one reply per line on stdout, logs on stderr.
//!
//! With no flags the node runs the *embedded default*: it hosts every
//! replica named in `init` in this one process (see [`embedded`]) and
//! answers clients as the `node_id` it was given.
//!
//! [`run`] is the whole program minus argument parsing and logger setup, so
//! tests can drive it over in-memory streams.

#![deny(missing_docs)]

pub mod byzantine;
pub mod cli;
pub mod client_keys;
pub mod cluster;
pub mod deploy;
pub mod embedded;
mod key_io;
pub mod keys;
pub mod lines;
pub mod linkv;
pub mod node;
pub mod replica_node;
pub mod reply;
pub mod runtime;
pub mod storage;
pub mod tcp;

use std::io::{self, BufRead, Write};

use log::warn;

use crate::lines::{next_line, Line};
use crate::node::Node;

/// Serves `input` until it ends, writing one JSON reply per line to
/// `output` and flushing after each. Bad input is logged and skipped; only
/// an IO error on the streams themselves ends the loop early.
pub fn run(mut input: impl BufRead, mut output: impl Write) -> io::Result<()> {
    let mut node = Node::new();
    while let Some(line) = next_line(&mut input)? {
        let text = match line {
            Line::Text(text) => text,
            Line::TooLong => {
                warn!("skipped a line longer than {} bytes", lines::MAX_LINE_BYTES);
                continue;
            }
            Line::NotUtf8 => {
                warn!("skipped a line that is not UTF-8");
                continue;
            }
        };
        if let Some(reply) = node.handle_line(&text) {
            let mut line = pbft_wire::encode(&reply);
            line.push('\n');
            output.write_all(line.as_bytes())?;
            output.flush()?;
        }
    }
    Ok(())
}
