//! State transfer in chunks: each chunk is checked against the proven
//! manifest as it arrives, a faulty peer's bad chunk is dropped without
//! stopping the transfer, and a transfer whose checkpoint the others
//! collect restarts on their newer one.

mod common;

use common::*;
use pbft_core::{
    Chunk, Cluster, ClusterAuth, Config, KvService, Message, Output, Rejection, Seq, StateError,
};

/// Chunks of 256 bytes, a checkpoint every 4 numbers.
fn small_chunks() -> Cluster<KvService> {
    let config = Config {
        state_chunk_bytes: 256,
        ..Config::new(4).with_checkpoint_interval(4)
    };
    Cluster::new(&config, ClusterAuth::Seeded(3), |_| KvService::default()).expect("valid")
}

/// Requests `from..=to`, each writing 1,000 bytes under its own key.
fn write(c: &mut Cluster<KvService>, from: u64, to: u64) {
    for t in from..=to {
        let value = format!("{t}").repeat(1000 / format!("{t}").len());
        c.submit(R0, req("c1", t, &format!("set k{t}={value}")));
        c.stabilize();
    }
}

/// Ticks and delivers, passing each message through `network`, which
/// returns what to deliver instead (nothing to drop it), until `done`.
fn run(
    c: &mut Cluster<KvService>,
    rounds: usize,
    mut network: impl FnMut(&Cluster<KvService>, pbft_core::Envelope) -> Option<pbft_core::Envelope>,
    done: impl Fn(&Cluster<KvService>) -> bool,
) {
    for _ in 0..rounds {
        if done(c) {
            return;
        }
        c.tick_all();
        loop {
            let sent = c.take_in_flight();
            if sent.is_empty() {
                break;
            }
            for envelope in sent {
                if let Some(envelope) = network(c, envelope) {
                    c.deliver(envelope);
                }
            }
        }
    }
}

fn restored_at(events: &[pbft_core::Event], r: pbft_core::ReplicaId) -> Vec<Seq> {
    events
        .iter()
        .filter(|e| e.replica == r)
        .filter_map(|e| match e.output {
            Output::Restored { seq, .. } => Some(seq),
            _ => None,
        })
        .collect()
}

#[test]
fn a_faulty_peers_corrupt_chunks_are_dropped_and_the_transfer_completes() {
    let mut c = small_chunks();
    c.set_filter(|e| e.to != R3 && e.from != R3);
    write(&mut c, 1, 12);
    c.clear_filter();
    c.restart(R3, KvService::default()).expect("member");
    c.take_events();
    // R1 is faulty: every chunk it sends R3 has one byte changed, and is
    // signed by R1 as it is.
    let mut corrupted = 0;
    run(
        &mut c,
        100,
        |c, mut e| {
            if let (R1, R3, Message::State(st)) = (e.from, e.to, &e.signed.message) {
                if let Some(chunk) = &st.chunk {
                    let mut bytes = (*chunk.bytes).clone();
                    bytes[0] ^= 1;
                    let mut st = st.clone();
                    st.chunk = Some(Chunk {
                        index: chunk.index,
                        bytes: std::sync::Arc::new(bytes),
                    });
                    e.signed = c.replica(R1).sign(Message::State(st));
                    corrupted += 1;
                }
            }
            Some(e)
        },
        |c| c.replica(R3).last_executed() >= Seq(12),
    );
    let events = c.take_events();
    let bad: Vec<_> = rejections(&events, R3)
        .into_iter()
        .filter(|(_, r)| matches!(r, Rejection::InvalidState(StateError::ChunkMismatch { .. })))
        .collect();
    assert!(corrupted > 0 && !bad.is_empty(), "R1's chunks were tried");
    assert!(bad.iter().all(|(from, _)| *from == R1), "{bad:?}");
    // Once caught, R1 is asked for no more chunks in this transfer.
    assert_eq!(bad.len(), corrupted, "every corrupt chunk was refused");
    assert!(corrupted <= pbft_core::CHUNKS_ASKED_PER_PEER as usize);
    assert_eq!(restored_at(&events, R3), [Seq(12)]);
    assert_eq!(c.replica(R3).service(), c.replica(R0).service());
    assert_eq!(
        c.replica(R3).stable_checkpoint().digest,
        c.replica(R0).stable_checkpoint().digest
    );
    // And R3 executes new requests with the others.
    write(&mut c, 13, 13);
    for r in [R0, R1, R2, R3] {
        assert_eq!(c.replica(r).last_executed(), Seq(13), "{r}");
    }
}

#[test]
fn a_transfer_restarts_on_the_newer_checkpoint_when_peers_collect_its_own() {
    let mut c = small_chunks();
    c.set_filter(|e| e.to != R3 && e.from != R3);
    write(&mut c, 1, 8);
    c.restart(R3, KvService::default()).expect("member");
    // R3 learns checkpoint 8's manifest, but no chunk reaches it.
    c.set_filter(|e| !matches!(&e.signed.message, Message::State(st) if st.chunk.is_some()));
    for _ in 0..30 {
        c.tick_all();
        c.stabilize();
        if c.replica(R3).fetching().is_some() {
            break;
        }
    }
    assert_eq!(c.replica(R3).fetching().map(|f| f.0), Some(Seq(8)));
    // The others move two checkpoints on without R3, and collect 8.
    c.set_filter(|e| e.to != R3 && e.from != R3);
    write(&mut c, 9, 16);
    assert_eq!(c.replica(R0).stable_checkpoint().seq, Seq(16));
    c.clear_filter();
    c.take_events();
    run(
        &mut c,
        100,
        |_, e| Some(e),
        |c| c.replica(R3).last_executed() >= Seq(16),
    );
    let events = c.take_events();
    assert_eq!(restored_at(&events, R3), [Seq(16)], "restarted on 16");
    assert_eq!(c.replica(R3).service(), c.replica(R0).service());
    assert_eq!(c.replica(R3).fetching(), None);
    write(&mut c, 17, 17);
    for r in [R0, R1, R2, R3] {
        assert_eq!(c.replica(r).last_executed(), Seq(17), "{r}");
    }
}

#[test]
fn a_small_state_still_travels_whole_in_one_answer() {
    // The default chunk size: a tiny state is one chunk, sent as before.
    let config = Config::new(4).with_checkpoint_interval(4);
    let mut c =
        Cluster::new(&config, ClusterAuth::Seeded(3), |_| KvService::default()).expect("valid");
    c.set_filter(|e| e.to != R3 && e.from != R3);
    write(&mut c, 1, 8);
    c.clear_filter();
    c.restart(R3, KvService::default()).expect("member");
    let mut chunked = 0;
    run(
        &mut c,
        50,
        |_, e| {
            if let Message::State(st) = &e.signed.message {
                if st.chunk.is_some() || st.manifest.is_some() {
                    chunked += 1;
                }
            }
            Some(e)
        },
        |c| c.replica(R3).last_executed() >= Seq(8),
    );
    assert_eq!(c.replica(R3).last_executed(), Seq(8));
    assert_eq!(chunked, 0, "no manifest, no chunk");
}

#[test]
fn a_peer_is_served_a_few_chunks_per_tick_whatever_it_asks() {
    use pbft_core::{ChunkRange, FetchState, CHUNKS_SERVED_PER_TICK};
    let mut c = small_chunks();
    write(&mut c, 1, 12);
    let stable = c.replica(R0).stable_checkpoint().clone();
    assert_eq!(stable.seq, Seq(12));
    let ask = |first: u64, count: u64| {
        Message::FetchState(FetchState {
            chunks: Some(ChunkRange {
                checkpoint: stable.seq,
                digest: stable.digest,
                first,
                count,
            }),
            ..FetchState::new(Seq(1), R3)
        })
    };
    // A faulty R3 asks R0 for a thousand chunks, ten times, within a tick.
    let chunks_to_r3 = |c: &mut Cluster<KvService>| {
        c.take_in_flight()
            .iter()
            .filter(|e| {
                e.to == R3 && matches!(&e.signed.message, Message::State(st) if st.chunk.is_some())
            })
            .count() as u64
    };
    for round in 0..2 {
        c.take_in_flight();
        let (mut refused, mut served) = (0, 0);
        for _ in 0..10 {
            c.inject(R3, R0, ask(0, 1000));
            c.deliver_next();
            served += chunks_to_r3(&mut c);
            refused += rejections(&c.take_events(), R0)
                .iter()
                .filter(|(_, r)| *r == Rejection::TooFrequent)
                .count();
        }
        assert_eq!(served, CHUNKS_SERVED_PER_TICK, "round {round}");
        assert_eq!(refused, 9, "round {round}");
        c.tick(R0);
    }
    // Extreme ranges are served within the state, or refused.
    c.tick(R0);
    c.take_in_flight();
    c.take_events();
    c.inject(R3, R0, ask(u64::MAX, u64::MAX));
    c.deliver_next();
    assert!(matches!(
        rejections(&c.take_events(), R0)[..],
        [(R3, Rejection::InvalidState(StateError::NoSuchChunk { .. }))]
    ));
    let count = c.replica(R0).stable_checkpoint().seq; // unchanged
    assert_eq!(count, Seq(12));
    let last = {
        // The manifest of R0's stable state tells how many chunks it has.
        c.inject(R3, R0, Message::FetchState(FetchState::new(Seq(1), R3)));
        c.deliver_next();
        let manifest = c
            .take_in_flight()
            .into_iter()
            .find_map(|e| match e.signed.message {
                Message::State(st) => st.manifest,
                _ => None,
            });
        manifest.expect("a manifest").chunks.len() as u64 - 1
    };
    c.inject(R3, R0, ask(last, u64::MAX));
    c.deliver_next();
    assert_eq!(chunks_to_r3(&mut c), 1, "only the last chunk");
}

#[test]
fn chunks_a_silent_peer_was_asked_for_are_asked_again_of_others() {
    let mut c = small_chunks();
    c.set_filter(|e| e.to != R3 && e.from != R3);
    write(&mut c, 1, 12);
    c.clear_filter();
    c.restart(R3, KvService::default()).expect("member");
    c.take_events();
    // R1 takes R3's requests for chunks and never answers them.
    let mut asked_of_r1 = 0;
    run(
        &mut c,
        200,
        |_, e| {
            if e.to == R1 {
                if let Message::FetchState(fetch) = &e.signed.message {
                    if fetch.chunks.is_some() {
                        asked_of_r1 += 1;
                        return None;
                    }
                }
            }
            Some(e)
        },
        |c| c.replica(R3).last_executed() >= Seq(12),
    );
    assert!(asked_of_r1 > 0, "R1 was asked for chunks");
    assert_eq!(c.replica(R3).last_executed(), Seq(12));
    assert_eq!(c.replica(R3).service(), c.replica(R0).service());
}

#[test]
fn a_silent_peer_is_not_asked_again_when_its_turn_comes_round_as_chunks_fall_due() {
    // A view-change timeout of 16 ticks: chunks are asked again after 8
    // ticks, a multiple of n = 4, so the rotation of peers is back where
    // it was each time a chunk falls due.
    let config = Config {
        state_chunk_bytes: 256,
        view_change_timeout: 16,
        ..Config::new(4).with_checkpoint_interval(4)
    };
    let mut c =
        Cluster::new(&config, ClusterAuth::Seeded(3), |_| KvService::default()).expect("valid");
    c.set_filter(|e| e.to != R3 && e.from != R3);
    write(&mut c, 1, 12);
    c.clear_filter();
    c.restart(R3, KvService::default()).expect("member");
    c.take_events();
    // The peer R3 asks first for chunks takes every request for chunks
    // and never answers one.
    let mut silent = None;
    let mut asked_of_silent = 0;
    run(
        &mut c,
        200,
        |_, e| {
            if let Message::FetchState(fetch) = &e.signed.message {
                if e.from == R3 && fetch.chunks.is_some() {
                    let peer = *silent.get_or_insert(e.to);
                    if e.to == peer {
                        asked_of_silent += 1;
                        return None;
                    }
                }
            }
            Some(e)
        },
        |c| c.replica(R3).last_executed() >= Seq(12),
    );
    assert!(silent.is_some(), "R3 fetched in chunks");
    assert_eq!(c.replica(R3).last_executed(), Seq(12), "R3 caught up");
    assert_eq!(c.replica(R3).service(), c.replica(R0).service());
    // Asked once, then passed over while the others serve.
    assert!(asked_of_silent <= 2, "asked {asked_of_silent} times");
}
