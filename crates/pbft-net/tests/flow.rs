//! Frames flow between replicas and clients over loopback TCP, with the
//! sender the handshake proved, and flow again after a peer restarts.

mod common;

use common::*;
use pbft_net::{CloseReason, Event};

#[test]
fn every_pair_of_four_replicas_exchanges_frames_with_authenticated_senders() {
    let mut cluster = cluster(4);
    let nodes: Vec<_> = (0..4).map(|i| cluster.start(i)).collect();
    for (i, (from, _)) in nodes.iter().enumerate() {
        for (j, (_, events)) in nodes.iter().enumerate() {
            if i == j {
                continue;
            }
            let payload = format!("{i}->{j}").into_bytes();
            let sender = deliver(from, &replica(j as u32), events, &payload);
            assert_eq!(sender, replica(i as u32));
        }
    }
    for (i, (transport, _)) in nodes.iter().enumerate() {
        assert!(transport
            .send(&replica(i as u32), b"self".to_vec())
            .is_err());
        assert!(transport.send(&replica(9), b"nobody".to_vec()).is_err());
    }
}

#[test]
fn frames_arrive_in_order_and_whole() {
    let mut cluster = cluster(2);
    let (a, _a_events) = cluster.start(0);
    let (_b, b_events) = cluster.start(1);
    deliver(&a, &replica(1), &b_events, b"first");
    let big = vec![7u8; 3 * 1024 * 1024];
    for i in 0..50u8 {
        a.send(&replica(1), vec![i; 1000]).expect("queued");
    }
    a.send(&replica(1), big.clone()).expect("queued");
    for i in 0..50u8 {
        assert_eq!(next_frame(&b_events), Some((replica(0), vec![i; 1000])));
    }
    assert_eq!(next_frame(&b_events), Some((replica(0), big)));
}

#[test]
fn a_client_dials_every_replica_and_both_directions_work() {
    let mut cluster = cluster(2);
    let (r0, r0_events) = cluster.start(0);
    let (r1, r1_events) = cluster.start(1);
    let (c1, c1_events) = cluster.start_client("c1", secret(100));
    assert_eq!(
        deliver(&c1, &replica(0), &r0_events, b"to r0"),
        client("c1")
    );
    assert_eq!(
        deliver(&c1, &replica(1), &r1_events, b"to r1"),
        client("c1")
    );
    assert_eq!(
        deliver(&r0, &client("c1"), &c1_events, b"reply 0"),
        replica(0)
    );
    assert_eq!(
        deliver(&r1, &client("c1"), &c1_events, b"reply 1"),
        replica(1)
    );
    // A client is reached only over the connection it opened.
    assert_eq!(
        r0.send(&client("nobody"), b"x".to_vec()),
        Err(pbft_net::SendError::UnknownPeer)
    );
}

#[test]
fn a_restarted_acceptor_is_dialed_again_and_frames_flow() {
    keep_logs();
    let mut cluster = cluster(2);
    let (r0, r0_events) = cluster.start(0);
    let (r1, r1_events) = cluster.start(1);
    deliver(&r0, &replica(1), &r1_events, b"before");
    r1.shutdown();
    let reason = wait_for(&r0_events, |event| match event {
        Event::Disconnected { peer, reason } if *peer == replica(1) => Some(reason.clone()),
        _ => None,
    });
    assert!(reason.is_some(), "the dialer saw the connection close");
    let (r1, r1_events) = cluster.start(1);
    assert_eq!(deliver(&r0, &replica(1), &r1_events, b"after"), replica(0));
    assert_eq!(deliver(&r1, &replica(0), &r0_events, b"back"), replica(1));
    let port = cluster.addrs[1].port().to_string();
    assert!(logged(&["connected to n2", &port]));
    assert!(logged(&["disconnected from n2"]));
}

#[test]
fn a_restarted_dialer_replaces_its_old_connection() {
    let mut cluster = cluster(2);
    let (r0, _r0_events) = cluster.start(0);
    let (r1, r1_events) = cluster.start(1);
    deliver(&r0, &replica(1), &r1_events, b"before");
    r0.shutdown();
    let (r0, r0_events) = cluster.start(0);
    assert_eq!(deliver(&r0, &replica(1), &r1_events, b"after"), replica(0));
    assert_eq!(deliver(&r1, &replica(0), &r0_events, b"back"), replica(1));
    let stats = r1.peer_stats(&replica(0)).expect("a member");
    assert!(stats.connected);
}

#[test]
fn frames_queued_while_a_peer_is_down_go_out_once_it_is_up() {
    let mut cluster = cluster(2);
    let (r0, _r0_events) = cluster.start(0);
    for i in 0..10u8 {
        r0.send(&replica(1), vec![i]).expect("queued while down");
    }
    let stats = r0.peer_stats(&replica(1)).expect("a member");
    assert!(!stats.connected);
    assert_eq!(stats.queued_frames, 10);
    let (_r1, r1_events) = cluster.start(1);
    for i in 0..10u8 {
        assert_eq!(next_frame(&r1_events), Some((replica(0), vec![i])));
    }
}

#[test]
fn a_stopped_transport_reports_its_connections_closed() {
    let mut cluster = cluster(2);
    let (r0, r0_events) = cluster.start(0);
    let (_r1, r1_events) = cluster.start(1);
    deliver(&r0, &replica(1), &r1_events, b"hello");
    drop(r0);
    let closed = wait_for(&r1_events, |event| match event {
        Event::Disconnected { peer, reason } => Some((peer.clone(), reason.clone())),
        _ => None,
    });
    // A close, or a reset if a ping was still unread when the socket closed.
    assert!(
        matches!(&closed, Some((peer, CloseReason::Closed | CloseReason::Io(_))) if *peer == replica(0)),
        "{closed:?}"
    );
    drop(r0_events);
}
