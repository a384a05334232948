//! Replica mode's main loop. The calling thread reads input lines and
//! handles each as it arrives; a second thread turns wall time into ticks.
//! Both take the same lock around the node and its output, so the core
//! sees one input at a time and stays deterministic, and a line is handled
//! on the thread that read it, with no hand-over to another thread on the
//! way.

use std::io::{self, BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use log::warn;
use pbft_wire::Envelope;

use crate::lines::{next_line, Line, MAX_LINE_BYTES};
use crate::replica_node::{ReplicaNode, Settings};

/// The node and where its messages go, behind one lock.
struct Shared<W> {
    node: ReplicaNode,
    output: W,
    /// Each envelope's line is built here, then written with the others of
    /// the same input.
    buffer: String,
}

impl<W: Write> Shared<W> {
    /// Writes `envelopes`, one line each, in a single write, and flushes.
    fn emit(&mut self, envelopes: Vec<Envelope>) -> io::Result<()> {
        if envelopes.is_empty() {
            return Ok(());
        }
        self.buffer.clear();
        for envelope in &envelopes {
            self.buffer.push_str(&pbft_wire::encode(envelope));
            self.buffer.push('\n');
        }
        self.output.write_all(self.buffer.as_bytes())?;
        self.output.flush()
    }
}

/// Serves replica mode until `input` ends, ticking every `tick_every`.
pub fn serve(
    settings: Settings,
    tick_every: Duration,
    mut input: impl BufRead,
    output: impl Write + Send,
) -> io::Result<()> {
    let shared = Mutex::new(Shared {
        node: ReplicaNode::new(settings),
        output,
        buffer: String::new(),
    });
    let done = AtomicBool::new(false);
    thread::scope(|scope| {
        let ticker = scope.spawn(|| tick_until_done(&shared, &done, tick_every));
        let read = {
            // Set however reading ends, a panic included: the scope waits
            // for the tick thread, which must then stop too.
            let _done = SetOnDrop(&done);
            read_until_end(&mut input, &shared)
        };
        let ticked = ticker
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the tick thread panicked")));
        read.and(ticked)
    })
}

/// Handles every input line as it arrives; skips unusable ones with a log.
/// Returns at end of input or on the first failure to read or write.
fn read_until_end<W: Write>(input: &mut impl BufRead, shared: &Mutex<Shared<W>>) -> io::Result<()> {
    loop {
        let line = match next_line(input)? {
            Some(Line::Text(text)) => text,
            Some(Line::TooLong) => {
                warn!("skipped a line longer than {MAX_LINE_BYTES} bytes");
                continue;
            }
            Some(Line::NotUtf8) => {
                warn!("skipped a line that is not UTF-8");
                continue;
            }
            None => return Ok(()),
        };
        let mut shared = lock(shared);
        let out = shared.node.handle_line(&line);
        shared.emit(out)?;
    }
}

/// Ticks the node every `every` until `done`, or until writing fails.
/// Ticks follow a fixed schedule, so a slow tick does not push the later
/// ones back. (If writing fails here, the reader fails on its next line's
/// output, or ends with the input.)
fn tick_until_done<W: Write>(
    shared: &Mutex<Shared<W>>,
    done: &AtomicBool,
    every: Duration,
) -> io::Result<()> {
    let mut next = Instant::now() + every;
    while !done.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            thread::sleep(next - now);
            continue;
        }
        // Ticks missed while the node was busy are dropped, not run in a
        // burst.
        next = if now >= next + every {
            now + every
        } else {
            next + every
        };
        let mut shared = lock(shared);
        let out = shared.node.tick();
        shared.emit(out)?;
    }
    Ok(())
}

/// Sets its flag when dropped.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The lock, even if the other thread panicked while holding it. The node
/// never panics on input; if it did, on the reading thread the panic stops
/// the tick thread (see [`SetOnDrop`]) and ends `serve`, and on the tick
/// thread it ends `serve` once the input does.
fn lock<W>(shared: &Mutex<Shared<W>>) -> MutexGuard<'_, Shared<W>> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::mpsc;

    use super::*;
    use crate::replica_node::Auth;

    fn settings() -> Settings {
        Settings::new(Auth::None)
    }

    /// Serves `input` on a thread of its own; what `serve` returned (or
    /// whether it panicked), if it finished within ten seconds.
    fn serve_briefly(input: impl BufRead + Send + 'static) -> Option<Result<io::Result<()>, ()>> {
        let (done, finished) = mpsc::channel();
        thread::spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                serve(settings(), Duration::from_millis(1), input, io::sink())
            }));
            let _ = done.send(outcome.map_err(|_| ()));
        });
        finished.recv_timeout(Duration::from_secs(10)).ok()
    }

    #[test]
    fn the_loop_ends_with_its_input() {
        let input = io::Cursor::new(b"not json\n".to_vec());
        assert!(matches!(serve_briefly(input), Some(Ok(Ok(())))));
    }

    /// Input that fails the way a bug would: by panicking.
    struct Panicking;

    impl Read for Panicking {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            panic!("reading failed")
        }
    }

    #[test]
    fn a_panic_while_reading_stops_the_tick_thread_too() {
        let input = io::BufReader::new(Panicking);
        assert!(matches!(serve_briefly(input), Some(Err(()))));
    }
}
