//! Every example in `docs/protocol.md` decodes, re-encodes to the same JSON,
//! and every body type has an example.

mod common;

use std::collections::BTreeSet;

use common::protocol_examples as examples;
use pbft_core::Message;
use pbft_wire::{decode, encode, Body, Directory};
use serde_json::Value;

#[test]
fn every_example_decodes_and_round_trips() {
    let examples = examples();
    assert!(examples.len() >= 11, "found {} examples", examples.len());
    let mut types = BTreeSet::new();
    for line in examples {
        let envelope = decode(&line).unwrap_or_else(|e| panic!("{line}\n{e}"));
        types.insert(envelope.body.type_name());
        let mut original: Value = serde_json::from_str(&line).expect("JSON");
        // Maelstrom's `id` is accepted and not kept.
        original.as_object_mut().expect("object").remove("id");
        let again: Value = serde_json::from_str(&encode(&envelope)).expect("JSON");
        assert_eq!(again, original, "{line}");
    }
    let all: BTreeSet<&str> = Body::TYPES.into_iter().collect();
    assert_eq!(types, all, "every body type has an example");
}

#[test]
fn example_pre_prepares_carry_their_batch_digest() {
    let directory =
        Directory::new(vec!["n1".into(), "n2".into(), "n3".into(), "n4".into()]).expect("valid");
    let mut checked = 0;
    for line in examples() {
        let body = decode(&line).expect("decodes").body;
        if let Body::PbftPrePrepare(_) = body {
            let Ok(Message::PrePrepare(pp)) = directory.body_to_message(&body).map(|s| s.message)
            else {
                panic!("{line}");
            };
            let batch = pp
                .batch
                .expect("a pre-prepare on its own carries its batch");
            assert_eq!(pp.digest, batch.digest(), "{line}");
            checked += 1;
        }
    }
    assert_eq!(checked, 1);
}

#[test]
fn the_signed_example_verifies_with_the_test_keys_it_names() {
    use pbft_core::{AuthFailure, Authenticator, Ed25519Auth, ReplicaId};

    let directory =
        Directory::new(vec!["n1".into(), "n2".into(), "n3".into(), "n4".into()]).expect("valid");
    let signed: Vec<_> = examples()
        .iter()
        .filter_map(|line| {
            let envelope = decode(line).expect("decodes");
            let from = directory.id_of(&envelope.src)?;
            let signed = directory.body_to_message(&envelope.body).ok()?;
            signed.signature.is_some().then_some((from, signed))
        })
        .collect();
    assert_eq!(signed.len(), 1, "one signed example");
    let auth = Ed25519Auth::from_seed(1, 4, ReplicaId(0)).expect("keys");
    for (from, s) in signed {
        assert_eq!(auth.verify(from, &s.message, s.signature.as_ref()), Ok(()));
        assert_eq!(
            auth.verify(ReplicaId(2), &s.message, s.signature.as_ref()),
            Err(AuthFailure::Invalid)
        );
    }
}

#[test]
fn the_client_signed_example_verifies_with_the_key_it_names() {
    use pbft_core::{hex, Ed25519Auth};

    let directory =
        Directory::new(vec!["n1".into(), "n2".into(), "n3".into(), "n4".into()]).expect("valid");
    let requests: Vec<_> = examples()
        .iter()
        .filter_map(|line| {
            let body = decode(line).expect("decodes").body;
            match directory.body_to_message(&body).ok()?.message {
                Message::Forward(request) if request.signature().is_some() => Some(request),
                _ => None,
            }
        })
        .collect();
    assert_eq!(requests.len(), 1, "one client-signed example");
    let secret = [1; 32];
    assert_eq!(
        hex::encode(&Ed25519Auth::public_key(secret)),
        "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
    );
    let request = &requests[0];
    let resigned = request.clone().signed_with(&secret);
    assert_eq!(
        request.signature(),
        resigned.signature(),
        "Ed25519 is deterministic"
    );
}
