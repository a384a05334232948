//! Replica mode's main loop: one thread reads stdin, one turns wall time
//! into ticks, and the main thread selects over both, so the core sees
//! one input at a time and stays deterministic.

use std::io::{self, BufRead, Write};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{bounded, select, tick, Receiver};
use log::warn;

use crate::lines::{next_line, Line, MAX_LINE_BYTES};
use crate::replica_node::{ReplicaNode, Settings};

/// Serves replica mode until `input` ends, ticking every `tick_every`.
pub fn serve(
    settings: Settings,
    tick_every: Duration,
    input: impl BufRead + Send + 'static,
    mut output: impl Write,
) -> io::Result<()> {
    let lines = spawn_reader(input);
    let ticks = tick(tick_every);
    let mut node = ReplicaNode::new(settings);
    loop {
        let out = select! {
            recv(lines) -> line => match line {
                Ok(Ok(line)) => node.handle_line(&line),
                Ok(Err(error)) => return Err(error),
                // The reader finished: end of input.
                Err(_) => return Ok(()),
            },
            recv(ticks) -> _ => node.tick(),
        };
        for envelope in out {
            let mut line = pbft_wire::encode(&envelope);
            line.push('\n');
            output.write_all(line.as_bytes())?;
        }
        output.flush()?;
    }
}

/// Reads lines on a thread of their own; skips unusable ones with a log.
fn spawn_reader(mut input: impl BufRead + Send + 'static) -> Receiver<io::Result<String>> {
    let (send, receive) = bounded(1024);
    thread::spawn(move || loop {
        let item = match next_line(&mut input) {
            Ok(Some(Line::Text(text))) => Ok(text),
            Ok(Some(Line::TooLong)) => {
                warn!("skipped a line longer than {MAX_LINE_BYTES} bytes");
                continue;
            }
            Ok(Some(Line::NotUtf8)) => {
                warn!("skipped a line that is not UTF-8");
                continue;
            }
            Ok(None) => return,
            Err(error) => Err(error),
        };
        let failed = item.is_err();
        if send.send(item).is_err() || failed {
            return;
        }
    });
    receive
}
