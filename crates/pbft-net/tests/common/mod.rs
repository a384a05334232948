//! Loopback clusters for the transport's tests, and a logger that keeps
//! what it is told so tests can check that a refusal was logged.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use ed25519_dalek::SigningKey;
use pbft_core::{ClientId, ReplicaId};
use pbft_net::{Event, Identity, NetConfig, PeerId, ReplicaEntry, Roster, Transport};

/// How long a test waits for something that should happen soon: a guard
/// against hangs, never a measurement.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The secret key of replica `i` (and, from 100 on, of clients).
pub fn secret(i: u8) -> [u8; 32] {
    [i + 1; 32]
}

pub fn public(secret: [u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(&secret).verifying_key().to_bytes()
}

pub fn replica(i: u32) -> PeerId {
    PeerId::Replica(ReplicaId(i))
}

pub fn client(name: &str) -> PeerId {
    PeerId::Client(ClientId::from(name))
}

/// Short timeouts so stalls end quickly; none of them is asserted on.
pub fn config() -> NetConfig {
    NetConfig {
        handshake_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(5),
        heartbeat: Duration::from_millis(200),
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(200),
        ..NetConfig::default()
    }
}

/// A cluster's addresses and keys, with each replica's listener bound
/// (port 0) and not yet handed to a transport.
pub struct Cluster {
    pub roster: Roster,
    pub listeners: Vec<Option<TcpListener>>,
    pub addrs: Vec<SocketAddr>,
}

/// `n` replicas and the clients `c1` (key 100) and `c2` (key 101).
pub fn cluster(n: u32) -> Cluster {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a loopback port"))
        .collect();
    let addrs: Vec<SocketAddr> = listeners
        .iter()
        .map(|l| l.local_addr().expect("bound"))
        .collect();
    let replicas = (0..n)
        .map(|i| ReplicaEntry {
            name: format!("n{}", i + 1),
            addr: addrs[i as usize],
            public_key: public(secret(i as u8)),
        })
        .collect();
    let clients = BTreeMap::from([
        (ClientId::from("c1"), public(secret(100))),
        (ClientId::from("c2"), public(secret(101))),
    ]);
    Cluster {
        roster: Roster::new(replicas, clients).expect("valid roster"),
        listeners: listeners.into_iter().map(Some).collect(),
        addrs,
    }
}

impl Cluster {
    /// Starts replica `i` on its listener (bound anew after a stop).
    pub fn start(&mut self, i: u32) -> (Transport, Receiver<Event>) {
        self.start_with(i, config())
    }

    /// Starts replica `i` with `config`.
    pub fn start_with(&mut self, i: u32, config: NetConfig) -> (Transport, Receiver<Event>) {
        let listener = self.listeners[i as usize]
            .take()
            .unwrap_or_else(|| TcpListener::bind(self.addrs[i as usize]).expect("rebind"));
        let identity = self.identity(replica(i), secret(i as u8));
        Transport::start(identity, self.roster.clone(), Some(listener), config)
            .expect("transport starts")
    }

    /// Starts client `name` with the key of `secret`.
    pub fn start_client(&self, name: &str, key: [u8; 32]) -> (Transport, Receiver<Event>) {
        let identity = self.identity(client(name), key);
        Transport::start(identity, self.roster.clone(), None, config()).expect("client starts")
    }

    /// The listener of replica `i`, for a test that plays it by hand.
    pub fn take_listener(&mut self, i: u32) -> TcpListener {
        self.listeners[i as usize].take().expect("not started")
    }

    pub fn identity(&self, me: PeerId, key: [u8; 32]) -> Identity {
        Identity::new(me, key, &self.roster).expect("the roster's key")
    }

    /// An identity that claims `me` but holds `key`, which need not be
    /// `me`'s: built against a roster where `me` has `key`.
    pub fn forged_identity(&self, me: PeerId, key: [u8; 32]) -> Identity {
        let mut replicas: Vec<ReplicaEntry> = (0..self.roster.replicas() as u32)
            .map(|i| self.roster.replica(ReplicaId(i)).expect("member").clone())
            .collect();
        let mut clients = BTreeMap::new();
        match &me {
            PeerId::Replica(r) => {
                while replicas.len() <= r.index() {
                    replicas.push(replicas[0].clone());
                }
                replicas[r.index()].public_key = public(key);
            }
            PeerId::Client(c) => {
                clients.insert(c.clone(), public(key));
            }
        }
        let roster = Roster::new(replicas, clients).expect("roster");
        Identity::new(me, key, &roster).expect("consistent")
    }
}

/// The next data frame, skipping other events; `None` after [`PATIENCE`].
pub fn next_frame(events: &Receiver<Event>) -> Option<(PeerId, Vec<u8>)> {
    next_frame_within(events, PATIENCE)
}

pub fn next_frame_within(events: &Receiver<Event>, wait: Duration) -> Option<(PeerId, Vec<u8>)> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match events.recv_timeout(left).ok()? {
            Event::Frame { from, frame } => return Some((from, frame.into_vec())),
            _ => continue,
        }
    }
}

/// The first event that `pick` accepts; `None` after [`PATIENCE`].
pub fn wait_for<T>(
    events: &Receiver<Event>,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let event = events.recv_timeout(left).ok()?;
        if let Some(found) = pick(&event) {
            return Some(found);
        }
    }
}

/// Sends `payload` from `from` to `to` until `events` (the addressee's)
/// yields it: frames sent before a connection is up may be lost with it.
pub fn deliver(from: &Transport, to: &PeerId, events: &Receiver<Event>, payload: &[u8]) -> PeerId {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let _ = from.send(to, payload.to_vec());
        let wait = Duration::from_millis(200);
        let until = Instant::now() + wait;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match next_frame_within(events, left) {
                Some((sender, bytes)) if bytes == payload => return sender,
                Some(_) => continue,
                None => break,
            }
        }
    }
    panic!("{payload:?} never arrived");
}

/// Whether the peer closed `stream`: reads (and discards pings) until the
/// end of the stream or an error, within [`PATIENCE`].
pub fn closed_by_peer(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

/// Everything logged so far by any test of this binary.
fn lines() -> &'static Mutex<Vec<String>> {
    static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LINES.get_or_init(|| Mutex::new(Vec::new()))
}

struct Keeper;

impl log::Log for Keeper {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}", record.level(), record.args());
        lines().lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }

    fn flush(&self) {}
}

/// Keeps every log line from now on (idempotent).
pub fn keep_logs() {
    static KEEPER: Keeper = Keeper;
    if log::set_logger(&KEEPER).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}

/// Waits until a line containing every one of `parts` has been logged.
pub fn logged(parts: &[&str]) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let found = lines()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|line| parts.iter().all(|p| line.contains(p)));
        if found {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
