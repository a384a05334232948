//! A replica restarted with empty memory catches up on 52 MB of state: the
//! state travels in chunks, every message fits the node's 16 MiB line,
//! every honest replica executes new requests afterwards, and the memory
//! the transfer takes stays within the bound `docs/design.md` gives.
//!
//! The one test of this binary counts every allocation of the process
//! (`peak_alloc`), so nothing else runs beside it.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::*;
use pbft_core::{
    Cluster, ClusterAuth, Config, KvService, Message, Output, Seq, CHUNKS_ASKED_PER_PEER,
    DEFAULT_STATE_CHUNK_BYTES,
};
use peak_alloc::PeakAlloc;

#[global_allocator]
static ALLOCATED: PeakAlloc = PeakAlloc;

/// The node's transport reads lines of at most 16 MiB.
const LINE: usize = 16 << 20;

/// Values of 1,000,000 bytes, each in a request within the 1 MiB limit.
const VALUE: usize = 1_000_000;

/// 52 values: about 52 MB of state.
const VALUES: u64 = 52;

#[test]
fn a_restarted_replica_catches_up_on_52_mb_of_state_in_bounded_memory() {
    let config = Config::new(4).with_checkpoint_interval(VALUES / 2);
    let mut c =
        Cluster::new(&config, ClusterAuth::Seeded(5), |_| KvService::default()).expect("valid");
    // The largest message the network carried, and how many state chunks.
    let largest = Rc::new(Cell::new(0usize));
    let chunks = Rc::new(Cell::new(0u64));
    let cut_off = Rc::new(Cell::new(true));
    {
        let (largest, chunks, cut_off) = (largest.clone(), chunks.clone(), cut_off.clone());
        c.set_filter(move |e| {
            if cut_off.get() && (e.to == R3 || e.from == R3) {
                return false;
            }
            let size = e.signed.message.payload_size();
            largest.set(largest.get().max(size));
            if matches!(&e.signed.message, Message::State(st) if st.chunk.is_some()) {
                chunks.set(chunks.get() + 1);
            }
            // Over the transport's line: lost every time.
            size < LINE
        });
    }
    let value = "v".repeat(VALUE);
    for t in 1..=VALUES {
        c.submit(R0, req("c1", t, &format!("set k{t}={value}")));
        c.stabilize();
    }
    drop(value);
    assert_eq!(c.replica(R0).stable_checkpoint().seq, Seq(VALUES));
    let state = c.replica(R0).service().len() as u64 * VALUE as u64;

    // R3 restarts with empty memory and the network heals.
    c.restart(R3, KvService::default()).expect("member");
    c.take_events();
    cut_off.set(false);
    ALLOCATED.reset_peak_usage();
    let before = ALLOCATED.current_usage();
    let mut restored = false;
    for _ in 0..200 {
        c.tick_all();
        c.stabilize();
        restored = c
            .events()
            .iter()
            .any(|e| e.replica == R3 && matches!(e.output, Output::Restored { .. }));
        if restored {
            break;
        }
    }
    let peak = ALLOCATED.peak_usage() - before;
    assert!(restored, "R3 restored the checkpoint");
    assert_eq!(c.replica(R3).last_executed(), Seq(VALUES));
    assert!(
        chunks.get() >= 50,
        "the state came in {} chunks",
        chunks.get()
    );

    // The bound of docs/design.md, for S bytes of state, chunks of C and
    // n replicas: the catching-up replica holds at most S of chunks, then
    // rebuilds the snapshot from them chunk by chunk and restores the
    // service from it (2S + C); the answers in flight at once are at most
    // (n - 1) CHUNKS_ASKED_PER_PEER chunks, each counted twice while it is
    // signed or verified. 1 MiB covers the rest (digests, proofs,
    // bookkeeping).
    let chunk = DEFAULT_STATE_CHUNK_BYTES as u64;
    let in_flight = 3 * CHUNKS_ASKED_PER_PEER * 2 * chunk;
    let bound = 2 * state + chunk + in_flight + (1 << 20);
    println!(
        "state {state} bytes in {} chunks: peak {peak} bytes, bound {bound}",
        chunks.get()
    );
    assert!(
        (peak as u64) <= bound,
        "catching up on {state} bytes took {peak} bytes at its peak, over {bound}"
    );

    // Every honest replica, R3 included, executes new requests.
    for t in 1..=3u64 {
        let request = req("c2", t, &format!("set x={t}"));
        for r in [R0, R1, R2, R3] {
            c.submit(r, request.clone());
        }
        for _ in 0..50 {
            if c.replicas()
                .iter()
                .all(|r| r.service().get("x") == Some(&t.to_string()))
            {
                break;
            }
            c.tick_all();
            c.stabilize();
        }
    }
    for r in [R0, R1, R2, R3] {
        let replica = c.replica(r);
        assert_eq!(replica.service().get("x"), Some("3"), "{r} executed on");
        assert_eq!(replica.service(), c.replica(R0).service(), "{r}");
    }
    assert!(
        largest.get() < LINE / 4,
        "the largest message took {} bytes",
        largest.get()
    );
}
