//! Garbage, oversized frames and peers that never read cost only their own
//! connection, and bounded memory; the other peers go on.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;

use common::*;
use pbft_net::frame::{write_frame, Kind};
use pbft_net::handshake;
use pbft_net::{CloseReason, Event, MAX_FRAME_BYTES};

#[test]
fn garbage_before_the_handshake_closes_only_that_connection() {
    keep_logs();
    let mut cluster = cluster(2);
    let (_r1, r1_events) = cluster.start(1);
    let mut stream = TcpStream::connect(cluster.addrs[1]).expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: pbft\r\n\r\n")
        .expect("write");
    let from = stream.local_addr().expect("bound").to_string();
    assert!(closed_by_peer(&mut stream));
    assert!(logged(&[
        "refused a connection from",
        &from,
        "malformed handshake"
    ]));
    // An oversized handshake frame too.
    let mut stream = TcpStream::connect(cluster.addrs[1]).expect("connect");
    stream.write_all(&[0, 0, 4, 0, 0x10]).expect("write");
    let from = stream.local_addr().expect("bound").to_string();
    assert!(closed_by_peer(&mut stream));
    assert!(logged(&[&from, "over the limit"]));
    let (r0, _r0_events) = cluster.start(0);
    assert_eq!(
        deliver(&r0, &replica(1), &r1_events, b"still fine"),
        replica(0)
    );
}

/// Plays replica 0 by hand toward replica 1 of a three-replica cluster,
/// writes `bytes` after the handshake, and checks that replica 1 closes
/// that connection for `expected` while replicas 1 and 2 keep talking.
fn after_the_handshake(bytes: &[u8], expected: impl Fn(&CloseReason) -> bool, log: &str) {
    keep_logs();
    let mut cluster = cluster(3);
    let (r1, r1_events) = cluster.start(1);
    let (r2, r2_events) = cluster.start(2);
    let me = cluster.identity(replica(0), secret(0));
    let mut stream = TcpStream::connect(cluster.addrs[1]).expect("connect");
    handshake::dial(&mut stream, &me, &cluster.roster, &replica(1)).expect("authenticated");
    stream.write_all(bytes).expect("write");
    let reason = wait_for(&r1_events, |event| match event {
        Event::Disconnected { peer, reason } if *peer == replica(0) => Some(reason.clone()),
        _ => None,
    })
    .expect("replica 1 closed the connection");
    assert!(expected(&reason), "{reason:?}");
    assert!(closed_by_peer(&mut stream));
    assert!(logged(&["closed the connection to n1 (replica 0)", log]));
    assert_eq!(deliver(&r1, &replica(2), &r2_events, b"1 to 2"), replica(1));
    assert_eq!(deliver(&r2, &replica(1), &r1_events, b"2 to 1"), replica(2));
}

#[test]
fn an_oversized_frame_closes_the_connection_before_its_bytes_are_read() {
    let len = (MAX_FRAME_BYTES as u32 + 1).to_be_bytes();
    // Only the header: replica 1 must not wait for 16 MiB that never come.
    let header = [len[0], len[1], len[2], len[3], 0x01];
    after_the_handshake(
        &header,
        |r| {
            *r == CloseReason::Oversized {
                len: MAX_FRAME_BYTES as u64 + 1,
            }
        },
        "over the limit",
    );
}

#[test]
fn an_unknown_frame_kind_closes_the_connection() {
    after_the_handshake(
        &[0, 0, 0, 1, 0x7f, 0],
        |r| matches!(r, CloseReason::Garbage(_)),
        "unknown frame kind 0x7f",
    );
}

#[test]
fn a_second_handshake_closes_the_connection() {
    let mut frame = Vec::new();
    write_frame(&mut frame, Kind::Hello, b"pbft-net/v1").expect("in memory");
    after_the_handshake(
        &frame,
        |r| matches!(r, CloseReason::Garbage(_)),
        "a handshake frame after the handshake",
    );
}

#[test]
fn a_peer_that_never_reads_costs_a_bounded_queue_and_blocks_nobody() {
    keep_logs();
    let mut cluster = cluster(3);
    // Replica 1 is played by hand: it completes the handshake and then
    // never reads again.
    let listener = cluster.take_listener(1);
    let me = cluster.identity(replica(1), secret(1));
    let roster = cluster.roster.clone();
    let (held, hold) = mpsc::channel();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("replica 0 dials");
        handshake::accept(&mut stream, &me, &roster).expect("replica 0 proves itself");
        // Keep the connection (and listener) open, unread, until the test ends.
        let _ = held.send((stream, listener));
    });
    let (r0, _r0_events) = cluster.start(0);
    let (_r2, r2_events) = cluster.start(2);
    let _stuck = hold.recv_timeout(PATIENCE).expect("replica 0 connected");
    deliver(&r0, &replica(2), &r2_events, b"warm up");

    // 128 MiB for replica 1, far more than its queue and the sockets hold.
    let r0 = std::sync::Arc::new(r0);
    let (done, finished) = mpsc::channel();
    let sender = std::sync::Arc::clone(&r0);
    thread::spawn(move || {
        let mut refused = 0u64;
        for _ in 0..2048 {
            if sender.send(&replica(1), vec![1; 64 * 1024]).is_err() {
                refused += 1;
            }
        }
        let _ = done.send(refused);
    });
    let refused = finished
        .recv_timeout(PATIENCE)
        .expect("send never blocks on a peer that does not read");
    let stats = r0.peer_stats(&replica(1)).expect("a member");
    assert!(
        refused > 0 && stats.dropped == refused,
        "{refused} refused, {stats:?}"
    );
    let config = config();
    assert!(stats.queued_frames <= config.queue_frames, "{stats:?}");
    assert!(stats.queued_bytes <= config.queue_bytes, "{stats:?}");
    assert!(logged(&["dropped a frame for n2: its queue is full"]));

    // Replica 2 gets every frame, in order, meanwhile.
    for i in 0..100u8 {
        r0.send(&replica(2), vec![i; 100])
            .expect("room for replica 2");
    }
    for i in 0..100u8 {
        assert_eq!(next_frame(&r2_events), Some((replica(0), vec![i; 100])));
    }
}

#[test]
fn an_authenticated_peer_that_falls_silent_is_closed_after_the_idle_timeout() {
    keep_logs();
    let mut cluster = cluster(2);
    let quick = pbft_net::NetConfig {
        idle_timeout: std::time::Duration::from_millis(600),
        ..config()
    };
    let (_r1, r1_events) = cluster.start_with(1, quick);
    let me = cluster.identity(replica(0), secret(0));
    let mut stream = TcpStream::connect(cluster.addrs[1]).expect("connect");
    handshake::dial(&mut stream, &me, &cluster.roster, &replica(1)).expect("authenticated");
    // Sends nothing more, not even pings: a peer whose host died.
    let reason = wait_for(&r1_events, |event| match event {
        Event::Disconnected { peer, reason } if *peer == replica(0) => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(reason, Some(CloseReason::IdleTimeout));
    assert!(closed_by_peer(&mut stream));
    assert!(logged(&["disconnected from n1 (replica 0): silent"]));
}
