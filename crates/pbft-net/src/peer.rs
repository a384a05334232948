//! One peer's outgoing side: a bounded queue that outlives connections,
//! and the writer thread of the current connection.
//!
//! A frame is written from the thread that sends it when it can go at
//! once: the queue is empty, the writer holds no bytes it has yet to
//! write, and the socket takes it without waiting (a send with
//! `MSG_DONTWAIT`, per call, so the connection's reader still blocks as
//! it should). What the socket does not take, whole or in part, goes to
//! the queue, which the writer thread empties; it also pings an idle
//! connection. So on a fast path a frame costs one system call and no
//! thread hand-over, and a slow or dead peer still costs only its queue:
//! the sender never waits for it.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use log::{debug, warn};
use socket2::SockRef;

use crate::event::worth_logging;
use crate::frame::{write_frame, Kind, HEADER_BYTES, MAX_FRAME_BYTES};

/// The most bytes a writer takes from the queue for one write.
const BATCH_BYTES: usize = 64 * 1024;

/// A send that returns at once rather than wait for room in the socket;
/// on Linux, a peer that has gone away is an error, never a signal.
#[cfg(target_os = "linux")]
const SEND_NOW: libc::c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
#[cfg(not(target_os = "linux"))]
const SEND_NOW: libc::c_int = libc::MSG_DONTWAIT;

/// Why [`Transport::send`](crate::Transport::send) dropped a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The addressee is not a member this transport can reach.
    UnknownPeer,
    /// The frame is over [`MAX_FRAME_BYTES`].
    TooLarge(usize),
    /// The peer's queue is full (by frames or by bytes): it is slow, dead
    /// or not connected yet. The protocol retransmits what matters.
    QueueFull,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::UnknownPeer => f.write_str("not a member this transport reaches"),
            SendError::TooLarge(len) => {
                write!(f, "a frame of {len} bytes is over {MAX_FRAME_BYTES}")
            }
            SendError::QueueFull => f.write_str("the peer's queue is full"),
        }
    }
}

impl std::error::Error for SendError {}

/// A snapshot of one peer's outgoing side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStats {
    /// Whether a connection to it is established.
    pub connected: bool,
    /// Frames waiting to be written.
    pub queued_frames: usize,
    /// Their bytes.
    pub queued_bytes: usize,
    /// Frames dropped because the queue was full, since the start.
    pub dropped: u64,
    /// Frames written whole by the sending thread, without the writer
    /// thread, since the start.
    pub written_inline: u64,
}

/// One peer: its name for logs, its queue and its current connection.
pub(crate) struct Slot {
    pub(crate) name: String,
    state: Mutex<State>,
    wake: Condvar,
    dropped: AtomicU64,
    max_frames: usize,
    max_bytes: usize,
}

struct State {
    queue: VecDeque<Out>,
    /// The payload bytes of the queued frames.
    bytes: usize,
    /// The connection frames go to: its id and a handle to write to it.
    current: Option<(u64, TcpStream)>,
    /// Whether the current connection's writer holds bytes it took from
    /// the queue and has not written yet: until it has, nothing is written
    /// inline, so frames keep their order.
    writing: bool,
    /// Frames written whole inline, ever.
    inline: u64,
    /// Frames written inline, in whole or in part: the writer need not
    /// ping a connection that carried one since it last looked.
    activity: u64,
}

impl State {
    /// A frame written in part to a connection that is gone goes whole to
    /// the next one: the new stream must start at a frame's first byte.
    fn restart_head(&mut self) {
        if let Some(head) = self.queue.front_mut() {
            head.sent = 0;
        }
    }
}

/// A frame on its way out, and how many of its bytes (header first) are
/// on the wire already.
struct Out {
    header: [u8; HEADER_BYTES],
    payload: Vec<u8>,
    sent: usize,
}

impl Out {
    fn data(payload: Vec<u8>) -> Out {
        let mut header = [0u8; HEADER_BYTES];
        // The transport never queues a payload over MAX_FRAME_BYTES.
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        header[..4].copy_from_slice(&len.to_be_bytes());
        header[4] = Kind::Data.byte();
        Out {
            header,
            payload,
            sent: 0,
        }
    }

    fn len(&self) -> usize {
        HEADER_BYTES + self.payload.len()
    }

    /// The bytes not yet sent: what is left of the header, then of the
    /// payload.
    fn unsent(&self) -> (&[u8], &[u8]) {
        let header = &self.header[self.sent.min(HEADER_BYTES)..];
        let payload = &self.payload[self.sent.saturating_sub(HEADER_BYTES)..];
        (header, payload)
    }
}

/// What a writer does next.
enum Next {
    /// Write the batch.
    Write,
    /// Stop: the connection was replaced or the transport stops.
    Stop,
}

impl Slot {
    pub(crate) fn new(name: String, max_frames: usize, max_bytes: usize) -> Slot {
        Slot {
            name,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                bytes: 0,
                current: None,
                writing: false,
                inline: 0,
                activity: 0,
            }),
            wake: Condvar::new(),
            dropped: AtomicU64::new(0),
            max_frames,
            max_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes a frame now if the socket takes it at once, and otherwise
    /// queues it (or what the socket did not take), or drops it if the
    /// queue is full. Never blocks on the network.
    pub(crate) fn push(&self, frame: Vec<u8>) -> Result<(), SendError> {
        let mut out = Out::data(frame);
        let mut state = self.lock();
        // Only behind an empty queue and an idle writer, so frames keep
        // their order and a part-written frame is always the queue's head.
        if !state.writing && state.queue.is_empty() {
            if let Some((_, stream)) = &state.current {
                out.sent = self.send_now(stream, &out);
                if out.sent > 0 {
                    state.activity += 1;
                }
                if out.sent == out.len() {
                    state.inline += 1;
                    return Ok(());
                }
            }
        }
        // A frame written in part must be finished, or the stream is
        // garbage; it always fits, as the queue is empty.
        let fits = state.queue.len() < self.max_frames
            && state.bytes.saturating_add(out.payload.len()) <= self.max_bytes;
        if out.sent == 0 && !fits {
            drop(state);
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if worth_logging(dropped) {
                warn!(
                    "dropped a frame for {}: its queue is full ({dropped} dropped so far)",
                    self.name
                );
            }
            return Err(SendError::QueueFull);
        }
        state.bytes += out.payload.len();
        state.queue.push_back(out);
        drop(state);
        self.wake.notify_all();
        Ok(())
    }

    /// Sends what the socket takes of `out` without waiting; the bytes it
    /// took. A failed send takes none: the writer meets the failure again
    /// and closes the connection.
    fn send_now(&self, stream: &TcpStream, out: &Out) -> usize {
        let (header, payload) = out.unsent();
        let parts = [IoSlice::new(header), IoSlice::new(payload)];
        match SockRef::from(stream).send_vectored_with_flags(&parts, SEND_NOW) {
            Ok(sent) => out.sent + sent,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                out.sent
            }
            Err(e) => {
                debug!("sending to {} failed: {e}", self.name);
                out.sent
            }
        }
    }

    /// Makes connection `id` the current one; returns the one it replaces.
    pub(crate) fn install(&self, id: u64, stream: TcpStream) -> Option<TcpStream> {
        let mut state = self.lock();
        let old = state.current.replace((id, stream));
        state.writing = false;
        state.restart_head();
        drop(state);
        self.wake.notify_all();
        old.map(|(_, stream)| stream)
    }

    /// Forgets connection `id` if it is still the current one; returns
    /// whether it was.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let mut state = self.lock();
        let current = state.current.as_ref().is_some_and(|(c, _)| *c == id);
        if current {
            state.current = None;
            state.writing = false;
            state.restart_head();
        }
        drop(state);
        self.wake.notify_all();
        current
    }

    /// Wakes every writer, so it sees a stop or a replacement.
    pub(crate) fn wake(&self) {
        let _state = self.lock();
        self.wake.notify_all();
    }

    pub(crate) fn stats(&self) -> PeerStats {
        let state = self.lock();
        PeerStats {
            connected: state.current.is_some(),
            queued_frames: state.queue.len(),
            queued_bytes: state.bytes,
            dropped: self.dropped.load(Ordering::Relaxed),
            written_inline: state.inline,
        }
    }

    /// Fills `batch` with what connection `id`'s writer writes next: queued
    /// frames, or a ping once the connection has carried nothing for
    /// `heartbeat`. The writer of `id` calls it again once it has written
    /// the batch, which lets inline writes go again.
    fn next(&self, id: u64, stop: &AtomicBool, heartbeat: Duration, batch: &mut Vec<u8>) -> Next {
        let mut state = self.lock();
        let mut seen = state.activity;
        loop {
            if stop.load(Ordering::Acquire) || state.current.as_ref().map(|c| c.0) != Some(id) {
                return Next::Stop;
            }
            state.writing = false;
            if !state.queue.is_empty() {
                while batch.len() < BATCH_BYTES {
                    let Some(out) = state.queue.pop_front() else {
                        break;
                    };
                    state.bytes -= out.payload.len();
                    let (header, payload) = out.unsent();
                    batch.extend_from_slice(header);
                    batch.extend_from_slice(payload);
                }
                state.writing = true;
                return Next::Write;
            }
            let (woken, waited) = self
                .wake
                .wait_timeout(state, heartbeat)
                .unwrap_or_else(|p| p.into_inner());
            state = woken;
            if waited.timed_out() && state.queue.is_empty() && state.activity == seen {
                if state.current.as_ref().map(|c| c.0) != Some(id) {
                    return Next::Stop;
                }
                // Infallible: the batch is in memory.
                let _ = write_frame(batch, Kind::Ping, &[]);
                state.writing = true;
                return Next::Write;
            }
            seen = state.activity;
        }
    }
}

/// Writes the slot's queued frames to connection `id` until it is
/// replaced, the transport stops, or a write fails; pings when the
/// connection has carried nothing for `heartbeat`.
pub(crate) fn write_loop(
    slot: &Slot,
    id: u64,
    mut stream: &TcpStream,
    stop: &AtomicBool,
    heartbeat: Duration,
) -> io::Result<()> {
    let mut batch = Vec::with_capacity(BATCH_BYTES);
    loop {
        match slot.next(id, stop, heartbeat, &mut batch) {
            Next::Write => {
                stream.write_all(&batch)?;
                batch.clear();
            }
            Next::Stop => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use super::*;
    use crate::frame::read_frame;

    #[test]
    fn the_queue_is_bounded_by_frames_and_by_bytes() {
        let slot = Slot::new("n2".into(), 3, 10);
        assert_eq!(slot.push(vec![0; 4]), Ok(()));
        assert_eq!(slot.push(vec![0; 4]), Ok(()));
        assert_eq!(
            slot.push(vec![0; 4]),
            Err(SendError::QueueFull),
            "12 bytes > 10"
        );
        assert_eq!(slot.push(vec![0; 2]), Ok(()));
        assert_eq!(slot.push(vec![]), Err(SendError::QueueFull), "4 frames > 3");
        let stats = slot.stats();
        assert_eq!(
            (stats.queued_frames, stats.queued_bytes, stats.dropped),
            (3, 10, 2)
        );
        assert!(!stats.connected);
    }

    /// A connected pair of loopback sockets.
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let near = TcpStream::connect(listener.local_addr().expect("bound")).expect("connects");
        let (far, _) = listener.accept().expect("accepts");
        (near, far)
    }

    /// The `i`th frame of a test: its number, then filler.
    fn numbered(i: u32, len: usize) -> Vec<u8> {
        let mut frame = i.to_be_bytes().to_vec();
        frame.resize(len, i as u8);
        frame
    }

    #[test]
    fn frames_written_inline_and_then_queued_arrive_whole_and_in_order() {
        let (near, mut far) = pair();
        // A small send buffer, so the socket soon stops taking frames.
        SockRef::from(&near)
            .set_send_buffer_size(4096)
            .expect("a buffer size");
        let slot = Slot::new("n2".into(), 1 << 20, 1 << 30);
        slot.install(1, near.try_clone().expect("a handle"));
        // Nobody reads yet: the first frames go inline until the sockets'
        // buffers fill, one of them perhaps in part, and the rest queue
        // behind them.
        let size = |i: u32| 1000 + (i as usize % 7) * 300;
        let count = 8192u32;
        for i in 0..count {
            assert_eq!(slot.push(numbered(i, size(i))), Ok(()));
        }
        let stats = slot.stats();
        assert!(stats.written_inline > 0, "{stats:?}");
        assert!(stats.queued_frames > 0, "{stats:?}");
        let stop = AtomicBool::new(false);
        thread::scope(|scope| {
            scope.spawn(|| write_loop(&slot, 1, &near, &stop, Duration::from_secs(60)));
            let mut input = io::BufReader::new(&mut far);
            let mut expect = |i: u32, len: usize| {
                let (kind, frame) = read_frame(&mut input, MAX_FRAME_BYTES).expect("a frame");
                assert_eq!((kind, frame), (Kind::Data, numbered(i, len)), "frame {i}");
            };
            for i in 0..count {
                expect(i, size(i));
            }
            // With the backlog written, frames go inline or queue again,
            // still in order.
            for i in count..count + 100 {
                assert_eq!(slot.push(numbered(i, 10)), Ok(()));
                expect(i, 10);
            }
            stop.store(true, Ordering::Release);
            slot.wake();
        });
    }

    #[test]
    fn a_frame_written_in_part_goes_whole_to_the_next_connection() {
        let (old, _old_far) = pair();
        SockRef::from(&old)
            .set_send_buffer_size(4096)
            .expect("a buffer size");
        let slot = Slot::new("n2".into(), 16, 1 << 30);
        slot.install(1, old);
        // Far more than the socket takes at once: written in part.
        let big = numbered(7, 4 << 20);
        assert_eq!(slot.push(big.clone()), Ok(()));
        let sent = slot.lock().queue.front().map(|head| head.sent);
        assert!(
            sent.is_some_and(|sent| sent > 0 && sent < big.len()),
            "{sent:?}"
        );
        let (new, far) = pair();
        // A stream that starts mid-frame reads as a wrong length, which
        // would wait for bytes that never come.
        far.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a timeout");
        slot.install(2, new.try_clone().expect("a handle"));
        let stop = AtomicBool::new(false);
        let got = thread::scope(|scope| {
            scope.spawn(|| write_loop(&slot, 2, &new, &stop, Duration::from_secs(60)));
            let got = read_frame(&mut io::BufReader::new(&far), MAX_FRAME_BYTES);
            stop.store(true, Ordering::Release);
            slot.wake();
            // Unblocks a writer still writing the rest of a bad stream.
            let _ = new.shutdown(std::net::Shutdown::Both);
            got
        });
        let (kind, frame) = got.expect("a whole frame");
        assert_eq!(kind, Kind::Data);
        assert!(frame == big, "the new connection gets the frame whole");
    }
}
