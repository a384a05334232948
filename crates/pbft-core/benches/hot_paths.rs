//! The core's hot paths, without signatures: building a batch and its
//! digest, a primary ordering a request, and a backup handling a
//! pre-prepare and a prepare.
//!
//! Run with `cargo bench -p pbft-core --bench hot_paths`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use pbft_core::{
    Batch, Config, Input, KvService, Message, PrePrepare, Replica, ReplicaId, Request, Seq, Signed,
    Unauthenticated, View, Vote,
};

fn requests(n: usize) -> Vec<Request> {
    (0..n)
        .map(|i| Request::new(&format!("c{i}"), Some(1), &format!("set k{i}=v{i}")))
        .collect()
}

fn replica(id: u32) -> Replica<KvService> {
    Replica::new(
        &Config::new(4),
        ReplicaId(id),
        KvService::default(),
        Unauthenticated,
    )
    .expect("valid")
}

fn unsigned(message: Message) -> Signed {
    Signed {
        message,
        signature: None,
    }
}

fn batch_digest(c: &mut Criterion) {
    for n in [1, 16, 256] {
        let input = requests(n);
        c.bench_function(&format!("batch of {n}: build and digest"), |b| {
            b.iter_batched(
                || input.clone(),
                |requests| Batch::new(black_box(requests)),
                BatchSize::SmallInput,
            )
        });
    }
}

fn replica_steps(c: &mut Criterion) {
    let mut out = Vec::with_capacity(16);
    c.bench_function("primary orders a request", |b| {
        b.iter_batched(
            || (replica(0), requests(1).remove(0)),
            |(mut primary, request)| {
                out.clear();
                primary.step(Input::Request(black_box(request)), &mut out);
                primary
            },
            BatchSize::SmallInput,
        )
    });

    let pre_prepare = PrePrepare::new(View(0), Seq(1), Arc::new(Batch::new(requests(16))));
    c.bench_function("backup accepts a pre-prepare of 16 requests", |b| {
        b.iter_batched(
            || replica(1),
            |mut backup| {
                out.clear();
                let signed = unsigned(Message::PrePrepare(pre_prepare.clone()));
                backup.step(
                    Input::Message {
                        from: ReplicaId(0),
                        signed,
                    },
                    &mut out,
                );
                backup
            },
            BatchSize::SmallInput,
        )
    });

    let prepare = Vote {
        view: View(0),
        seq: Seq(1),
        digest: pre_prepare.digest,
        replica: ReplicaId(2),
    };
    c.bench_function("backup handles a prepare", |b| {
        b.iter_batched(
            || {
                let mut backup = replica(1);
                let mut sink = Vec::new();
                let signed = unsigned(Message::PrePrepare(pre_prepare.clone()));
                backup.step(
                    Input::Message {
                        from: ReplicaId(0),
                        signed,
                    },
                    &mut sink,
                );
                backup
            },
            |mut backup| {
                out.clear();
                let signed = unsigned(Message::Prepare(prepare));
                backup.step(
                    Input::Message {
                        from: ReplicaId(2),
                        signed,
                    },
                    &mut out,
                );
                backup
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, batch_digest, replica_steps);
criterion_main!(benches);
