//! One peer's outgoing side: a bounded queue that outlives connections,
//! and the writer thread of the current connection.

use std::collections::VecDeque;
use std::io::{self, BufWriter, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use log::warn;

use crate::event::worth_logging;
use crate::frame::{write_frame, Kind, MAX_FRAME_BYTES};

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
    queue: VecDeque<Vec<u8>>,
    bytes: usize,
    /// The connection frames go to: its id and a handle to shut it down.
    current: Option<(u64, TcpStream)>,
}

/// What a writer does next.
pub(crate) enum Next {
    Frame(Vec<u8>),
    Idle,
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

    /// Queues a frame, or drops it if the queue is full. Never blocks on
    /// the network.
    pub(crate) fn push(&self, frame: Vec<u8>) -> Result<(), SendError> {
        let mut state = self.lock();
        if state.queue.len() >= self.max_frames
            || state.bytes.saturating_add(frame.len()) > self.max_bytes
        {
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
        state.bytes += frame.len();
        state.queue.push_back(frame);
        drop(state);
        self.wake.notify_all();
        Ok(())
    }

    /// Makes connection `id` the current one; returns the one it replaces.
    pub(crate) fn install(&self, id: u64, stream: TcpStream) -> Option<TcpStream> {
        let old = self.lock().current.replace((id, stream));
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
        }
    }

    /// The next frame for connection `id`, waiting at most `wait` for one.
    fn next(&self, id: u64, stop: &AtomicBool, wait: Duration) -> Next {
        let mut state = self.lock();
        let mut waited = false;
        loop {
            if stop.load(Ordering::Acquire) || state.current.as_ref().map(|c| c.0) != Some(id) {
                return Next::Stop;
            }
            if let Some(frame) = state.queue.pop_front() {
                state.bytes -= frame.len();
                return Next::Frame(frame);
            }
            if waited || wait.is_zero() {
                return Next::Idle;
            }
            state = self
                .wake
                .wait_timeout(state, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            waited = true;
        }
    }
}

/// Writes the slot's frames to connection `id` until it is replaced, the
/// transport stops, or a write fails; pings when there is nothing to send
/// for `heartbeat`. Flushes whenever the queue runs empty.
pub(crate) fn write_loop(
    slot: &Slot,
    id: u64,
    stream: &TcpStream,
    stop: &AtomicBool,
    heartbeat: Duration,
) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(64 * 1024, stream);
    let mut unflushed = false;
    loop {
        let wait = if unflushed { Duration::ZERO } else { heartbeat };
        match slot.next(id, stop, wait) {
            Next::Frame(frame) => {
                write_frame(&mut out, Kind::Data, &frame)?;
                unflushed = true;
            }
            Next::Idle if unflushed => {
                out.flush()?;
                unflushed = false;
            }
            Next::Idle => {
                write_frame(&mut out, Kind::Ping, &[])?;
                out.flush()?;
            }
            Next::Stop => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
