//! The transport: a listener, one dialer per peer this side dials, and a
//! reader and a writer thread per established connection.

use std::collections::HashMap;
use std::io::{self, BufReader};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Receiver, SendTimeoutError, Sender};
use log::{debug, info, warn};
use pbft_core::ReplicaId;

use crate::config::{ConfigError, NetConfig};
use crate::event::{worth_logging, Budget, CloseReason, Event};
use crate::frame::{read_frame, FrameError, Kind, MAX_FRAME_BYTES};
use crate::handshake::{self, Refusal};
use crate::peer::{write_loop, PeerStats, SendError, Slot};
use crate::roster::{Identity, PeerId, Roster};

/// How often the listener looks for new connections while none arrive.
const ACCEPT_POLL: Duration = Duration::from_millis(5);

/// How long a reader waits for room in the event channel before it looks
/// at the stop flag again.
const DELIVER_POLL: Duration = Duration::from_millis(100);

/// A running transport. Dropping it stops it (see [`Transport::shutdown`]).
pub struct Transport {
    shared: Arc<Shared>,
    listener: Option<JoinHandle<()>>,
    local_addr: Option<SocketAddr>,
}

/// Why a transport could not start.
#[derive(Debug)]
pub enum StartError {
    /// The settings cannot work.
    Config(ConfigError),
    /// A replica must listen: it was given no listener.
    NoListener,
    /// The listener could not be set up.
    Io(io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "bad transport settings: {e}"),
            StartError::NoListener => f.write_str("a replica needs a listener"),
            StartError::Io(e) => write!(f, "cannot listen: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

struct Shared {
    identity: Identity,
    roster: Roster,
    config: NetConfig,
    stop: AtomicBool,
    /// Sleeping dialers wait on this, so a stop wakes them.
    sleep: (Mutex<()>, Condvar),
    slots: Mutex<HashMap<PeerId, Arc<Slot>>>,
    /// Every open socket, so a stop can shut them all down.
    sockets: Mutex<HashMap<u64, TcpStream>>,
    next_socket: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
    events: Sender<Event>,
    incoming: Budget,
    incoming_dropped: AtomicU64,
    pending_handshakes: AtomicUsize,
}

impl Transport {
    /// Starts the transport for `identity` in `roster`.
    ///
    /// A replica listens on `listener` (bound by the caller, so tests can
    /// use port 0) and dials every replica with a higher id; a client
    /// passes no listener and dials every replica. Returns the transport
    /// and the channel of its [`Event`]s, which the driver must keep
    /// reading: readers wait for room in it.
    pub fn start(
        identity: Identity,
        roster: Roster,
        listener: Option<TcpListener>,
        config: NetConfig,
    ) -> Result<(Transport, Receiver<Event>), StartError> {
        config.check().map_err(StartError::Config)?;
        let dials: Vec<ReplicaId> = (0..roster.replicas() as u32)
            .map(ReplicaId)
            .filter(|r| match identity.me() {
                PeerId::Replica(me) => r > me,
                PeerId::Client(_) => true,
            })
            .collect();
        if matches!(identity.me(), PeerId::Replica(_)) && listener.is_none() {
            return Err(StartError::NoListener);
        }
        let (events, receiver) = crossbeam_channel::bounded(config.incoming_events);
        let slots = (0..roster.replicas() as u32)
            .map(|r| PeerId::Replica(ReplicaId(r)))
            .filter(|p| p != identity.me())
            .map(|p| {
                let slot = Slot::new(roster.name(&p), config.queue_frames, config.queue_bytes);
                (p, Arc::new(slot))
            })
            .collect();
        let shared = Arc::new(Shared {
            incoming: Budget::new(config.incoming_bytes),
            identity,
            roster,
            config,
            stop: AtomicBool::new(false),
            sleep: (Mutex::new(()), Condvar::new()),
            slots: Mutex::new(slots),
            sockets: Mutex::new(HashMap::new()),
            next_socket: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
            events,
            incoming_dropped: AtomicU64::new(0),
            pending_handshakes: AtomicUsize::new(0),
        });
        let mut local_addr = None;
        let listener = match listener {
            Some(listener) => {
                local_addr = Some(listener.local_addr().map_err(StartError::Io)?);
                listener.set_nonblocking(true).map_err(StartError::Io)?;
                let shared = Arc::clone(&shared);
                Some(
                    thread::Builder::new()
                        .name("pbft-net-listen".into())
                        .spawn(move || listen(&shared, listener))
                        .map_err(StartError::Io)?,
                )
            }
            None => None,
        };
        for peer in dials {
            let for_thread = Arc::clone(&shared);
            spawn(&shared, move || dial_forever(&for_thread, peer));
        }
        Ok((
            Transport {
                shared,
                listener,
                local_addr,
            },
            receiver,
        ))
    }

    /// Queues `frame` for `to`. Never blocks on the network: a full queue
    /// drops the frame (counted in [`PeerStats::dropped`]).
    pub fn send(&self, to: &PeerId, frame: Vec<u8>) -> Result<(), SendError> {
        if frame.len() > MAX_FRAME_BYTES {
            return Err(SendError::TooLarge(frame.len()));
        }
        self.shared
            .slot(to)
            .ok_or(SendError::UnknownPeer)?
            .push(frame)
    }

    /// The address the listener is bound to, if this side listens.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// A peer's outgoing side: connected or not, what is queued, what was
    /// dropped. `None` for a peer this transport has never had to reach.
    pub fn peer_stats(&self, peer: &PeerId) -> Option<PeerStats> {
        self.shared.slots().get(peer).map(|slot| slot.stats())
    }

    /// Received frames dropped because the driver held too many bytes.
    pub fn incoming_dropped(&self) -> u64 {
        self.shared.incoming_dropped.load(Ordering::Relaxed)
    }

    /// Stops: closes the listener and every connection, and waits for
    /// every thread to end. Peers see the connections close.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let shared = &self.shared;
        shared.stop.store(true, Ordering::Release);
        {
            let _sleepers = lock(&shared.sleep.0);
            shared.sleep.1.notify_all();
        }
        for slot in shared.slots().values() {
            slot.wake();
        }
        for socket in lock(&shared.sockets).values() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        if let Some(listener) = self.listener.take() {
            let _ = listener.join();
        }
        loop {
            let threads = std::mem::take(&mut *lock(&shared.threads));
            if threads.is_empty() {
                break;
            }
            for thread in threads {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<PeerId, Arc<Slot>>> {
        lock(&self.slots)
    }

    /// The slot of a member, made on first use for a client.
    fn slot(&self, peer: &PeerId) -> Option<Arc<Slot>> {
        let mut slots = self.slots();
        if let Some(slot) = slots.get(peer) {
            return Some(Arc::clone(slot));
        }
        if *peer == self.identity.me || self.roster.key(peer).is_none() {
            return None;
        }
        let name = self.roster.name(peer);
        let slot = Arc::new(Slot::new(
            name,
            self.config.queue_frames,
            self.config.queue_bytes,
        ));
        slots.insert(peer.clone(), Arc::clone(&slot));
        Some(slot)
    }

    /// Sleeps up to `wait`, or until the transport stops.
    fn sleep(&self, wait: Duration) {
        let guard = lock(&self.sleep.0);
        if !self.stopped() {
            let _ = self.sleep.1.wait_timeout(guard, wait);
        }
    }

    /// Sends an informational event if there is room; never waits.
    fn notify(&self, event: Event) {
        let _ = self.events.try_send(event);
    }

    fn refused(&self, addr: SocketAddr, reason: Refusal, dialing: bool) {
        if dialing {
            warn!("connection to {addr} refused: {reason}");
        } else {
            warn!("refused a connection from {addr}: {reason}");
        }
        self.notify(Event::Refused { addr, reason });
    }
}

/// Registers a socket for shutdown; forgets it when dropped.
struct Registered<'a> {
    shared: &'a Shared,
    id: u64,
}

impl<'a> Registered<'a> {
    fn new(shared: &'a Shared, stream: &TcpStream) -> io::Result<Registered<'a>> {
        let id = shared.next_socket.fetch_add(1, Ordering::Relaxed);
        let handle = stream.try_clone()?;
        let mut sockets = lock(&shared.sockets);
        if shared.stopped() {
            let _ = handle.shutdown(Shutdown::Both);
        }
        sockets.insert(id, handle);
        Ok(Registered { shared, id })
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        if let Some(socket) = lock(&self.shared.sockets).remove(&self.id) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// Counts an accepted connection in its handshake until dropped.
struct Pending<'a>(&'a AtomicUsize);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs `f` on a thread the transport joins when it stops. Does nothing
/// once it is stopping.
fn spawn(shared: &Shared, f: impl FnOnce() + Send + 'static) {
    let mut threads = lock(&shared.threads);
    if shared.stopped() {
        return;
    }
    threads.retain(|t| !t.is_finished());
    match thread::Builder::new().name("pbft-net".into()).spawn(f) {
        Ok(handle) => threads.push(handle),
        Err(e) => warn!("could not start a transport thread: {e}"),
    }
}

fn listen(shared: &Arc<Shared>, listener: TcpListener) {
    let (mut overflows, mut failures) = (0u64, 0u64);
    while !shared.stopped() {
        match listener.accept() {
            Ok((stream, addr)) => {
                let pending = shared.pending_handshakes.fetch_add(1, Ordering::AcqRel);
                if pending >= shared.config.max_pending_handshakes {
                    shared.pending_handshakes.fetch_sub(1, Ordering::AcqRel);
                    let _ = stream.shutdown(Shutdown::Both);
                    // A flood of connections is logged rarely.
                    overflows += 1;
                    if worth_logging(overflows) {
                        warn!(
                            "refused a connection from {addr}: {} ({overflows} so far)",
                            Refusal::TooManyPending
                        );
                    }
                    shared.notify(Event::Refused {
                        addr,
                        reason: Refusal::TooManyPending,
                    });
                    continue;
                }
                let for_thread = Arc::clone(shared);
                spawn(shared, move || serve_accepted(&for_thread, stream, addr));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(ACCEPT_POLL),
            Err(e) => {
                // Out of file descriptors, say: logged rarely, retried.
                failures += 1;
                if worth_logging(failures) {
                    warn!("accepting a connection failed: {e} ({failures} failures so far)");
                }
                thread::sleep(ACCEPT_POLL);
            }
        }
    }
    debug!("listener stopped");
}

/// An accepted connection: handshake, then serve it until it closes.
fn serve_accepted(shared: &Arc<Shared>, mut stream: TcpStream, addr: SocketAddr) {
    let pending = Pending(&shared.pending_handshakes);
    let registered = match prepare(shared, &stream) {
        Ok(registered) => registered,
        Err(e) => {
            drop(pending);
            shared.refused(addr, Refusal::Io(e.to_string()), false);
            return;
        }
    };
    let result = handshake::accept(&mut stream, &shared.identity, &shared.roster);
    drop(pending);
    match result {
        Ok(peer) => serve_connection(shared, peer, stream, registered, addr),
        Err(reason) => shared.refused(addr, reason, false),
    }
}

/// Blocking mode, no delay, handshake timeouts, registered for shutdown.
fn prepare<'a>(shared: &'a Shared, stream: &TcpStream) -> io::Result<Registered<'a>> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(shared.config.handshake_timeout))?;
    stream.set_write_timeout(Some(shared.config.handshake_timeout))?;
    Registered::new(shared, stream)
}

/// Keeps a connection to `peer` up: dials, and after a failure or a
/// disconnection waits (doubling the wait up to the cap) and dials again.
fn dial_forever(shared: &Arc<Shared>, peer: ReplicaId) {
    let Some(entry) = shared.roster.replica(peer).cloned() else {
        return;
    };
    let expected = PeerId::Replica(peer);
    let mut backoff = shared.config.backoff_initial;
    let mut failures: u64 = 0;
    while !shared.stopped() {
        match dial_once(shared, &expected, entry.addr) {
            Ok((stream, registered)) => {
                failures = 0;
                backoff = shared.config.backoff_initial;
                serve_connection(shared, expected.clone(), stream, registered, entry.addr);
            }
            Err(_) if shared.stopped() => break,
            Err(reason) => {
                failures += 1;
                match reason {
                    // A peer that is down is expected while it restarts:
                    // logged on the first failure and then rarely.
                    DialError::Connect(e) if worth_logging(failures) => info!(
                        "cannot reach {} at {}: {e} (attempt {failures}, next in {backoff:?})",
                        entry.name, entry.addr
                    ),
                    DialError::Connect(e) => debug!("cannot reach {}: {e}", entry.name),
                    DialError::Refused(reason) => shared.refused(entry.addr, reason, true),
                }
                backoff = next_backoff(backoff, shared.config.backoff_max);
            }
        }
        shared.sleep(backoff);
    }
}

enum DialError {
    Connect(io::Error),
    Refused(Refusal),
}

fn dial_once<'a>(
    shared: &'a Shared,
    expected: &PeerId,
    addr: SocketAddr,
) -> Result<(TcpStream, Registered<'a>), DialError> {
    let mut stream = TcpStream::connect_timeout(&addr, shared.config.handshake_timeout)
        .map_err(DialError::Connect)?;
    let registered =
        prepare(shared, &stream).map_err(|e| DialError::Refused(Refusal::Io(e.to_string())))?;
    handshake::dial(&mut stream, &shared.identity, &shared.roster, expected)
        .map_err(DialError::Refused)?;
    Ok((stream, registered))
}

/// The wait after `current`: twice as long, at most `cap`.
pub(crate) fn next_backoff(current: Duration, cap: Duration) -> Duration {
    current.saturating_mul(2).min(cap)
}

/// An authenticated connection: installs it as the peer's current one
/// (closing an older one), starts its writer and reads until it closes.
fn serve_connection(
    shared: &Arc<Shared>,
    peer: PeerId,
    stream: TcpStream,
    registered: Registered<'_>,
    addr: SocketAddr,
) {
    let Some(slot) = shared.slot(&peer) else {
        return;
    };
    let timeouts = stream
        .set_read_timeout(Some(shared.config.idle_timeout))
        .and_then(|()| stream.set_write_timeout(Some(shared.config.idle_timeout)));
    let (for_slot, for_writer) =
        match timeouts.and_then(|()| Ok((stream.try_clone()?, stream.try_clone()?))) {
            Ok(handles) => handles,
            Err(e) => {
                warn!("could not set up the connection to {}: {e}", slot.name);
                return;
            }
        };
    let id = registered.id;
    if let Some(old) = slot.install(id, for_slot) {
        let _ = old.shutdown(Shutdown::Both);
    }
    info!("connected to {} ({peer}) at {addr}", slot.name);
    shared.notify(Event::Connected {
        peer: peer.clone(),
        addr,
    });
    // The writer is joined through the transport's thread list; it ends
    // when this connection stops being the slot's current one.
    {
        let slot = Arc::clone(&slot);
        let for_thread = Arc::clone(shared);
        spawn(shared, move || {
            let config = &for_thread.config;
            if let Err(e) = write_loop(&slot, id, &for_writer, &for_thread.stop, config.heartbeat) {
                debug!("writing to {} failed: {e}", slot.name);
                // The reader sees the connection close and reports it.
                let _ = for_writer.shutdown(Shutdown::Both);
            }
        });
    }
    let reason = read_loop(shared, &peer, &stream);
    let current = slot.remove(id);
    let _ = stream.shutdown(Shutdown::Both);
    drop(registered);
    let reason = if current {
        reason
    } else {
        CloseReason::Replaced
    };
    match &reason {
        CloseReason::Oversized { .. } | CloseReason::Garbage(_) => {
            warn!("closed the connection to {} ({peer}): {reason}", slot.name)
        }
        _ => info!("disconnected from {} ({peer}): {reason}", slot.name),
    }
    shared.notify(Event::Disconnected { peer, reason });
}

/// Reads frames and hands data frames to the driver until the connection
/// closes, turns silent, or carries something that is not a frame.
fn read_loop(shared: &Shared, peer: &PeerId, stream: &TcpStream) -> CloseReason {
    let mut input = BufReader::with_capacity(64 * 1024, stream);
    let account = shared.incoming.sender(peer);
    loop {
        if shared.stopped() {
            return CloseReason::Stopped;
        }
        let (kind, payload) = match read_frame(&mut input, MAX_FRAME_BYTES) {
            Ok(frame) => frame,
            Err(_) if shared.stopped() => return CloseReason::Stopped,
            Err(e) if e.is_timeout() => return CloseReason::IdleTimeout,
            Err(FrameError::Closed) => return CloseReason::Closed,
            Err(FrameError::TooLarge { len, .. }) => return CloseReason::Oversized { len },
            Err(e @ FrameError::UnknownKind(_)) => return CloseReason::Garbage(e.to_string()),
            Err(FrameError::Io(e)) => return CloseReason::Io(e.to_string()),
        };
        match kind {
            Kind::Data => {
                if let Err(reason) = deliver(shared, peer, &account, payload) {
                    return reason;
                }
            }
            Kind::Ping if payload.is_empty() => {}
            Kind::Ping => return CloseReason::Garbage("a ping with a payload".into()),
            Kind::Hello | Kind::Proof => {
                return CloseReason::Garbage("a handshake frame after the handshake".into())
            }
        }
    }
}

/// Hands one frame to the driver, waiting for room in the channel; drops
/// it if the driver holds too many received bytes already and the sender
/// (whose held bytes `account` counts) has used its reserve.
fn deliver(
    shared: &Shared,
    peer: &PeerId,
    account: &Arc<AtomicUsize>,
    payload: Vec<u8>,
) -> Result<(), CloseReason> {
    let Some(frame) = shared.incoming.admit(account, payload) else {
        let dropped = shared.incoming_dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if worth_logging(dropped) {
            warn!(
                "dropped a frame from {}: the driver holds too many received bytes, \
                 and as many of its own as any member may ({dropped} dropped so far)",
                shared.roster.name(peer)
            );
        }
        return Ok(());
    };
    let mut event = Event::Frame {
        from: peer.clone(),
        frame,
    };
    loop {
        match shared.events.send_timeout(event, DELIVER_POLL) {
            Ok(()) => return Ok(()),
            Err(SendTimeoutError::Timeout(back)) if !shared.stopped() => event = back,
            Err(_) => return Err(CloseReason::Stopped),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let cap = Duration::from_millis(500);
        let mut wait = Duration::from_millis(50);
        let mut waits = vec![];
        for _ in 0..6 {
            wait = next_backoff(wait, cap);
            waits.push(wait.as_millis());
        }
        assert_eq!(waits, [100, 200, 400, 500, 500, 500]);
    }
}
