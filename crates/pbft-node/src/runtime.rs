//! Replica mode's main loop. The calling thread reads input messages and
//! handles each as it arrives; a second thread turns wall time into ticks.
//! Both take the same lock around the node and its output, so the core
//! sees one input at a time and stays deterministic, and a message is
//! handled on the thread that read it, with no hand-over to another thread
//! on the way.
//!
//! The loop ([`drive`]) is the same whatever carries the messages: a
//! [`Source`] yields them and a [`Sink`] takes what the node sends. [`serve`]
//! runs it over JSON lines on a reader and a writer (stdin and stdout).

use std::io::{self, BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use log::warn;
use pbft_wire::Envelope;

use crate::lines::{next_line, Line, MAX_LINE_BYTES};
use crate::replica_node::{ReplicaNode, Settings};

/// One input message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// Who sent it, when the transport authenticated the sender (a node
    /// id or a client id): the envelope's `src` must then name it.
    pub sender: Option<String>,
    /// The text of one JSON envelope.
    pub text: String,
}

/// Where replica mode's input comes from, one message at a time.
pub trait Source {
    /// The next message, or `None` when the input has ended. Input that is
    /// not a message at all is skipped (and logged) by the source.
    fn next_message(&mut self) -> io::Result<Option<Incoming>>;

    /// A message that has already arrived, without waiting for one: the
    /// loop handles such messages together, with one sync of a durable
    /// replica's records for all of them (group commit). `None` by
    /// default.
    fn ready_message(&mut self) -> Option<Incoming> {
        None
    }
}

/// The most messages handled together before their output goes out.
const GROUP: usize = 64;

/// Where replica mode's output goes.
pub trait Sink {
    /// Sends what the node produced for one input, in order: client
    /// replies first, then messages to peers.
    fn emit(&mut self, envelopes: Vec<Envelope>) -> io::Result<()>;
}

/// Messages as lines of a reader: at most [`MAX_LINE_BYTES`] each; longer
/// lines and lines that are not UTF-8 are skipped with a warning.
pub struct LineSource<R>(pub R);

impl<R: BufRead> Source for LineSource<R> {
    fn next_message(&mut self) -> io::Result<Option<Incoming>> {
        loop {
            match next_line(&mut self.0)? {
                Some(Line::Text(text)) => return Ok(Some(Incoming { sender: None, text })),
                Some(Line::TooLong) => {
                    warn!("skipped a line longer than {MAX_LINE_BYTES} bytes")
                }
                Some(Line::NotUtf8) => warn!("skipped a line that is not UTF-8"),
                None => return Ok(None),
            }
        }
    }
}

/// Envelopes as JSON lines on a writer: one input's lines in a single
/// write, then a flush.
pub struct LineSink<W> {
    output: W,
    /// Each envelope's line is built here, then written with the others of
    /// the same input.
    buffer: String,
}

impl<W> LineSink<W> {
    /// Lines to `output`.
    pub fn new(output: W) -> LineSink<W> {
        LineSink {
            output,
            buffer: String::new(),
        }
    }
}

impl<W: Write> Sink for LineSink<W> {
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

/// The node and where its messages go, behind one lock.
struct Shared<S> {
    node: ReplicaNode,
    sink: S,
}

/// Serves replica mode over JSON lines until `input` ends, ticking every
/// `tick_every`.
pub fn serve(
    settings: Settings,
    tick_every: Duration,
    input: impl BufRead,
    output: impl Write + Send,
) -> io::Result<()> {
    drive(
        ReplicaNode::new(settings),
        tick_every,
        LineSource(input),
        LineSink::new(output),
    )
}

/// Serves `node` until `source` ends, ticking every `tick_every`.
pub fn drive(
    node: ReplicaNode,
    tick_every: Duration,
    mut source: impl Source,
    sink: impl Sink + Send,
) -> io::Result<()> {
    let shared = Mutex::new(Shared { node, sink });
    let done = AtomicBool::new(false);
    thread::scope(|scope| {
        let ticker = scope.spawn(|| tick_until_done(&shared, &done, tick_every));
        let read = {
            // Set however reading ends, a panic included: the scope waits
            // for the tick thread, which must then stop too.
            let _done = SetOnDrop(&done);
            read_until_end(&mut source, &shared)
        };
        let ticked = ticker
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the tick thread panicked")));
        read.and(ticked)
    })
}

/// Handles every input message as it arrives. Returns at end of input or
/// on the first failure to read or write.
fn read_until_end<S: Sink>(source: &mut impl Source, shared: &Mutex<Shared<S>>) -> io::Result<()> {
    while let Some(first) = source.next_message()? {
        let mut shared = lock(shared);
        // The messages already waiting go with this one: their records
        // are synced once, and only then does any of their output go out.
        shared.node.hold_sync(true);
        let mut out = Vec::new();
        let mut message = Some(first);
        let mut handled = 0;
        while let Some(m) = message.take() {
            out.extend(match &m.sender {
                Some(sender) => shared.node.handle_from(sender, &m.text),
                None => shared.node.handle_line(&m.text),
            });
            handled += 1;
            // Only a durable replica gains from waiting: it saves syncs.
            if handled < GROUP && shared.node.is_durable() {
                message = source.ready_message();
            }
        }
        shared.node.hold_sync(false);
        stop_on_failure(&shared.node)?;
        shared.sink.emit(out)?;
    }
    Ok(())
}

/// An error once the node has failed (a durable replica that cannot keep
/// its records), so that the loop ends instead of running a replica that
/// sends nothing.
fn stop_on_failure(node: &ReplicaNode) -> io::Result<()> {
    match node.failure() {
        Some(failure) => Err(io::Error::other(failure.to_string())),
        None => Ok(()),
    }
}

/// Ticks the node every `every` until `done`, or until writing fails.
/// Ticks follow a fixed schedule, so a slow tick does not push the later
/// ones back. (If writing fails here, the reader fails on its next line's
/// output, or ends with the input.)
fn tick_until_done<S: Sink>(
    shared: &Mutex<Shared<S>>,
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
        shared.sink.emit(out)?;
        stop_on_failure(&shared.node)?;
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
fn lock<S>(shared: &Mutex<Shared<S>>) -> MutexGuard<'_, Shared<S>> {
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

    /// Messages from a list, then the end.
    struct Listed(std::vec::IntoIter<String>);

    impl Source for Listed {
        fn next_message(&mut self) -> io::Result<Option<Incoming>> {
            Ok(self.0.next().map(|text| Incoming { sender: None, text }))
        }
    }

    /// Envelopes kept as values, not lines.
    struct Collected(mpsc::Sender<Envelope>);

    impl Sink for Collected {
        fn emit(&mut self, envelopes: Vec<Envelope>) -> io::Result<()> {
            for envelope in envelopes {
                let _ = self.0.send(envelope);
            }
            Ok(())
        }
    }

    #[test]
    fn the_loop_runs_over_any_source_and_sink() {
        let init = r#"{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}}"#;
        let request = r#"{"src":"c1","dest":"n1","body":{"type":"pbft_request","msg_id":2,"operation":"set x=1"}}"#;
        let source = Listed(vec![init.to_string(), request.to_string()].into_iter());
        let (sent, received) = mpsc::channel();
        drive(
            ReplicaNode::new(settings()),
            Duration::from_millis(1),
            source,
            Collected(sent),
        )
        .expect("served");
        let replies: Vec<Envelope> = received.try_iter().collect();
        assert!(
            matches!(replies.first(), Some(e) if e.dest == "c0"
                && matches!(e.body, pbft_wire::Body::InitOk { in_reply_to: 1, .. })),
            "{replies:?}"
        );
        assert!(
            replies.iter().any(|e| e.dest == "c1"
                && matches!(
                    e.body,
                    pbft_wire::Body::PbftRequestOk { in_reply_to: 2, .. }
                )),
            "{replies:?}"
        );
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
