//! The handshake refuses whoever cannot prove the identity it claims, and
//! a connection that never completes it is dropped without holding up
//! anyone else.

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::thread;

use common::*;
use pbft_net::handshake::{self, HELLO_TAG};
use pbft_net::{Event, Refusal};

/// Dials replica `to` of `cluster` by hand, as `identity`.
fn dial_as(
    cluster: &Cluster,
    to: u32,
    identity: &pbft_net::Identity,
) -> (TcpStream, Result<pbft_net::PeerId, Refusal>) {
    let mut stream = TcpStream::connect(cluster.addrs[to as usize]).expect("connect");
    let result = handshake::dial(&mut stream, identity, &cluster.roster, &replica(to));
    (stream, result)
}

/// The refusal replica `events` reports for a connection from `addr`.
fn refusal_for(
    events: &crossbeam_channel::Receiver<Event>,
    from: std::net::SocketAddr,
) -> Option<Refusal> {
    wait_for(events, |event| match event {
        Event::Refused { addr, reason } if *addr == from => Some(reason.clone()),
        _ => None,
    })
}

#[test]
fn a_peer_with_the_wrong_key_is_refused() {
    keep_logs();
    let mut cluster = cluster(2);
    let (_r1, r1_events) = cluster.start(1);
    // Claims to be replica 0, but holds a key that is nobody's.
    let impostor = cluster.forged_identity(replica(0), [77; 32]);
    let (mut stream, _) = dial_as(&cluster, 1, &impostor);
    let from = stream.local_addr().expect("bound");
    assert_eq!(
        refusal_for(&r1_events, from),
        Some(Refusal::BadProof(replica(0)))
    );
    assert!(closed_by_peer(&mut stream));
    assert!(logged(&[
        "refused a connection from",
        &from.to_string(),
        "proof does not verify"
    ]));
    // The real replica 0 still gets in.
    let (r0, _r0_events) = cluster.start(0);
    assert_eq!(deliver(&r0, &replica(1), &r1_events, b"real"), replica(0));
}

#[test]
fn a_member_claiming_another_members_id_is_refused() {
    keep_logs();
    let mut cluster = cluster(4);
    let (_r3, r3_events) = cluster.start(3);
    // Replica 2's own, valid key, used to claim replica 0's place.
    let impostor = cluster.forged_identity(replica(0), secret(2));
    let (mut stream, _) = dial_as(&cluster, 3, &impostor);
    let from = stream.local_addr().expect("bound");
    assert_eq!(
        refusal_for(&r3_events, from),
        Some(Refusal::BadProof(replica(0)))
    );
    assert!(closed_by_peer(&mut stream));
    assert!(logged(&[&from.to_string(), "claims to be replica 0"]));
    // A client with its own valid key cannot speak as another client.
    let impostor = cluster.forged_identity(client("c2"), secret(100));
    let (mut stream, _) = dial_as(&cluster, 3, &impostor);
    let from = stream.local_addr().expect("bound");
    assert_eq!(
        refusal_for(&r3_events, from),
        Some(Refusal::BadProof(client("c2")))
    );
    assert!(closed_by_peer(&mut stream));
}

#[test]
fn an_unknown_replica_or_client_is_refused() {
    keep_logs();
    let mut cluster = cluster(2);
    let (_r1, r1_events) = cluster.start(1);
    for (claim, key) in [(replica(9), secret(9)), (client("mallory"), [66; 32])] {
        let stranger = cluster.forged_identity(claim.clone(), key);
        let (mut stream, result) = dial_as(&cluster, 1, &stranger);
        let from = stream.local_addr().expect("bound");
        assert!(
            result.is_err(),
            "refused before the acceptor proves anything"
        );
        assert_eq!(
            refusal_for(&r1_events, from),
            Some(Refusal::UnknownPeer(claim))
        );
        assert!(closed_by_peer(&mut stream));
        assert!(logged(&[&from.to_string(), "not a member"]));
    }
    // A known client with its own key gets in.
    let (c1, _c1_events) = cluster.start_client("c1", secret(100));
    assert_eq!(deliver(&c1, &replica(1), &r1_events, b"hi"), client("c1"));
}

#[test]
fn a_replica_is_dialed_only_by_lower_replicas() {
    keep_logs();
    let mut cluster = cluster(3);
    let (_r1, r1_events) = cluster.start(1);
    // Replica 2, with its real key, dials replica 1: the rule says 1
    // dials 2, so this would make a second connection for the pair.
    let higher = cluster.identity(replica(2), secret(2));
    let (mut stream, _) = dial_as(&cluster, 1, &higher);
    let from = stream.local_addr().expect("bound");
    assert_eq!(
        refusal_for(&r1_events, from),
        Some(Refusal::WrongDirection(replica(2)))
    );
    assert!(closed_by_peer(&mut stream));
    assert!(logged(&[&from.to_string(), "lower ids dial higher"]));
}

#[test]
fn a_dialer_refuses_an_address_that_answers_as_another_member() {
    keep_logs();
    let mut cluster = cluster(3);
    // Replica 1's address is answered by someone proving to be replica 2.
    let listener: TcpListener = cluster.take_listener(1);
    let answering = cluster.identity(replica(2), secret(2));
    let roster = cluster.roster.clone();
    let acceptor = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("r0 dials");
        let _ = handshake::accept(&mut stream, &answering, &roster);
        stream
    });
    let (_r0, r0_events) = cluster.start(0);
    let addr = cluster.addrs[1];
    let reason = wait_for(&r0_events, |event| match event {
        Event::Refused { addr: a, reason } if *a == addr => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(
        reason,
        Some(Refusal::UnexpectedPeer {
            expected: replica(1),
            found: replica(2)
        })
    );
    assert!(logged(&[
        "connection to",
        &addr.to_string(),
        "dialed replica 1 but it claims to be replica 2"
    ]));
    drop(acceptor.join());
}

/// One connection that says nothing and one that sends half a hello.
fn stalled_handshakes(cluster: &Cluster, to: u32) -> [TcpStream; 2] {
    let silent = TcpStream::connect(cluster.addrs[to as usize]).expect("connect");
    let mut partial = TcpStream::connect(cluster.addrs[to as usize]).expect("connect");
    partial.write_all(&[0, 0, 0, 80, 0x10]).expect("header");
    partial.write_all(HELLO_TAG).expect("part of the payload");
    [silent, partial]
}

#[test]
fn a_stalled_handshake_blocks_nobody() {
    let mut cluster = cluster(2);
    // Stalled handshakes are never timed out during this test, so the real
    // replica gets in only if handshakes do not wait for each other.
    let patient = pbft_net::NetConfig {
        handshake_timeout: 3 * PATIENCE,
        ..config()
    };
    let (_r1, r1_events) = cluster.start_with(1, patient);
    let _stalled = stalled_handshakes(&cluster, 1);
    let (r0, _r0_events) = cluster.start(0);
    assert_eq!(
        deliver(&r0, &replica(1), &r1_events, b"not blocked"),
        replica(0)
    );
}

#[test]
fn a_half_open_connection_is_dropped_after_the_handshake_timeout() {
    keep_logs();
    let mut cluster = cluster(2);
    let (_r1, r1_events) = cluster.start(1);
    let stalled = stalled_handshakes(&cluster, 1);
    let addrs: Vec<_> = stalled
        .iter()
        .map(|s| s.local_addr().expect("bound"))
        .collect();
    let mut refused = std::collections::BTreeMap::new();
    while refused.len() < addrs.len() {
        let (addr, reason) = wait_for(&r1_events, |event| match event {
            Event::Refused { addr, reason } if addrs.contains(addr) => {
                Some((*addr, reason.clone()))
            }
            _ => None,
        })
        .expect("both stalled handshakes refused");
        refused.insert(addr, reason);
    }
    for (mut stream, from) in stalled.into_iter().zip(addrs) {
        assert_eq!(refused.get(&from), Some(&Refusal::Timeout));
        assert!(closed_by_peer(&mut stream));
        assert!(logged(&[&from.to_string(), "the handshake timed out"]));
    }
}

#[test]
fn another_protocol_is_refused() {
    keep_logs();
    let mut cluster = cluster(2);
    let (_r1, r1_events) = cluster.start(1);
    let mut stream = TcpStream::connect(cluster.addrs[1]).expect("connect");
    let mut hello = b"pbft-net/v0".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 0, 0]);
    hello.extend_from_slice(&[1; 32]);
    pbft_net::frame::write_frame(&mut stream, pbft_net::frame::Kind::Hello, &hello).expect("write");
    let from = stream.local_addr().expect("bound");
    assert_eq!(refusal_for(&r1_events, from), Some(Refusal::WrongProtocol));
    assert!(closed_by_peer(&mut stream));
}

#[test]
fn handshakes_in_progress_are_bounded() {
    let mut cluster = cluster(2);
    let few = pbft_net::NetConfig {
        handshake_timeout: 3 * PATIENCE,
        max_pending_handshakes: 2,
        ..config()
    };
    let (_r1, r1_events) = cluster.start_with(1, few);
    let _stalled = stalled_handshakes(&cluster, 1);
    let mut third = TcpStream::connect(cluster.addrs[1]).expect("connect");
    let from = third.local_addr().expect("bound");
    assert_eq!(refusal_for(&r1_events, from), Some(Refusal::TooManyPending));
    assert!(closed_by_peer(&mut third));
}
