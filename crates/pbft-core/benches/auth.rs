//! Cost of authenticating one replica message: signing a prepare and
//! verifying it, with Ed25519 over the canonical encoding; and of checking
//! clients' signatures on requests, one at a time and in batches (as a
//! backup checks a pre-prepare's batch).
//!
//! Run with `cargo bench -p pbft-core --bench auth`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use ed25519_dalek::{verify_batch, Signature, Signer, SigningKey, VerifyingKey};
use pbft_core::{
    message_bytes, request_bytes, Authenticator, Digest, Ed25519Auth, Message, ReplicaId, Request,
    Seq, View, Vote,
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

/// `count` requests, each signed by a client of its own.
fn signed_requests(count: usize) -> (Vec<Vec<u8>>, Vec<Signature>, Vec<VerifyingKey>) {
    let mut messages = Vec::new();
    let mut signatures = Vec::new();
    let mut keys = Vec::new();
    for i in 0..count {
        let key = SigningKey::from_bytes(&[i as u8 + 1; 32]);
        let request = Request::new(&format!("c{i}"), Some(1), "set k=v");
        let bytes = request_bytes(&request);
        signatures.push(key.sign(&bytes));
        messages.push(bytes);
        keys.push(key.verifying_key());
    }
    (messages, signatures, keys)
}

fn client_signatures(c: &mut Criterion) {
    let (messages, signatures, keys) = signed_requests(1);
    c.bench_function("verify a request's signature (strict)", |b| {
        b.iter(|| {
            keys[0]
                .verify_strict(black_box(&messages[0]), &signatures[0])
                .expect("valid")
        })
    });
    for count in [16, 64, 256] {
        let (messages, signatures, keys) = signed_requests(count);
        let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        c.bench_function(
            &format!("verify {count} requests' signatures in one batch"),
            |b| b.iter(|| verify_batch(black_box(&messages), &signatures, &keys).expect("valid")),
        );
    }
}

criterion_group!(benches, auth, client_signatures);
criterion_main!(benches);
