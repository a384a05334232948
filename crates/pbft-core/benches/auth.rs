//! Cost of authenticating one replica message: signing a prepare and
//! verifying it, with Ed25519 over the canonical encoding.
//!
//! Run with `cargo bench -p pbft-core --bench auth`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use pbft_core::{
    message_bytes, Authenticator, Digest, Ed25519Auth, Message, ReplicaId, Seq, View, Vote,
};

fn prepare() -> Message {
    Message::Prepare(Vote {
        view: View(0),
        seq: Seq(1),
        digest: Digest::of(b"set x=42"),
        replica: ReplicaId(1),
    })
}

fn auth(c: &mut Criterion) {
    let signer = Ed25519Auth::from_seed(1, 4, ReplicaId(1)).expect("keys");
    let verifier = Ed25519Auth::from_seed(1, 4, ReplicaId(2)).expect("keys");
    let message = prepare();
    let signature = signer.sign(&message);

    c.bench_function("canonical bytes of a prepare", |b| {
        b.iter(|| message_bytes(black_box(&message)))
    });
    c.bench_function("sign a prepare", |b| {
        b.iter(|| signer.sign(black_box(&message)))
    });
    c.bench_function("verify a prepare", |b| {
        b.iter(|| {
            verifier
                .verify(ReplicaId(1), black_box(&message), signature.as_ref())
                .expect("valid")
        })
    });
}

criterion_group!(benches, auth);
criterion_main!(benches);
