//! Test vectors from the real 0.13.0 crates for fmclient's TBS (mintv2 e-cash) code: prints JSON
//! to stdout. `make vectors` writes it to tests/fmclient/data/tbs_vectors.json. Every input is
//! fixed, so the output is the same on every run.
use std::collections::BTreeMap;

use bls12_381::{G1Affine, G2Affine, Scalar};
use tbs::{
    AggregatePublicKey, BlindedMessage, BlindingKey, Message, PublicKeyShare, SecretKeyShare,
    aggregate_signature_shares, blind_message, sign_message, unblind_signature, verify,
    verify_blinded_signature, verify_signature_share,
};
use serde_json::{Value, json};

fn g1(p: &G1Affine) -> String {
    hex::encode(p.to_compressed())
}

fn g2(p: &G2Affine) -> String {
    hex::encode(p.to_compressed())
}

fn scalar(s: &Scalar) -> String {
    hex::encode(s.to_bytes()) // 32 bytes little-endian, as fedimint's consensus encoding
}

fn main() {
    // hash to G1: mintv2's from_bytes_sha256 (and mint v1's from_bytes, for comparison)
    let mut inputs: Vec<Vec<u8>> = vec![vec![], b"fedimint".to_vec(), vec![0u8; 64]];
    for i in 0u8..8 {
        let mut pk = vec![2 + (i & 1)];
        pk.extend((0..32u8).map(|j| j.wrapping_mul(31).wrapping_add(i)));
        inputs.push(pk); // shaped like a note nonce: a 33-byte compressed secp256k1 key
    }
    let hashes: Vec<Value> = inputs
        .iter()
        .map(|data| {
            json!({
                "data": hex::encode(data),
                "sha256_message": g1(&Message::from_bytes_sha256(data).0),
                "v1_message": g1(&Message::from_bytes(data).0),
            })
        })
        .collect();

    // a 3-of-4 key: f(x) = a0 + a1 x + a2 x^2, guardian i holds f(i + 1)
    let coefficients = [Scalar::from(123_456_789u64), Scalar::from(987_654_321u64), Scalar::from(555u64)];
    let f = |x: u64| {
        let x = Scalar::from(x);
        coefficients[0] + coefficients[1] * x + coefficients[2] * x * x
    };
    let sks: BTreeMap<u64, SecretKeyShare> = (0..4u64).map(|i| (i, SecretKeyShare(f(i + 1)))).collect();
    let pks: BTreeMap<u64, PublicKeyShare> = sks
        .iter()
        .map(|(i, sk)| (*i, PublicKeyShare(G2Affine::from(G2Affine::generator() * sk.0))))
        .collect();
    let agg = AggregatePublicKey(G2Affine::from(G2Affine::generator() * coefficients[0]));

    let mut notes = vec![];
    for (n, data) in inputs.iter().skip(3).take(4).enumerate() {
        let msg = Message::from_bytes_sha256(data);
        let r = BlindingKey(Scalar::from(1_000_003u64 * (n as u64 + 1)));
        let blinded: BlindedMessage = blind_message(msg, r);
        let shares: BTreeMap<u64, _> = sks.iter().map(|(i, sk)| (*i, sign_message(blinded, *sk))).collect();
        for (i, share) in &shares {
            assert!(verify_signature_share(blinded, *share, pks[i]));
        }
        // combine a subset other than the first three: guardians 0, 1 and 3
        let subset: BTreeMap<u64, _> = shares.iter().filter(|(i, _)| **i != 2).map(|(i, s)| (*i, *s)).collect();
        let blind_sig = aggregate_signature_shares(&subset);
        assert!(verify_blinded_signature(blinded, blind_sig, agg));
        let sig = unblind_signature(r, blind_sig);
        assert!(verify(msg, sig, agg));
        notes.push(json!({
            "nonce": hex::encode(data),
            "message": g1(&msg.0),
            "blinding_key": scalar(&r.0),
            "blinded_message": g1(&blinded.0),
            "shares": shares.iter().map(|(i, s)| (i.to_string(), Value::String(g1(&s.0)))).collect::<serde_json::Map<_, _>>(),
            "combined_from": [0, 1, 3],
            "blinded_signature": g1(&blind_sig.0),
            "signature": g1(&sig.0),
        }));
    }
    let out = json!({
        "source": "fedimint-tbs 0.13.0 and bls12_381 0.8.0 (peers/fedimint/src/bin/fedimint-vectors.rs)",
        "hash_to_g1": hashes,
        "threshold_key": {
            "threshold": 3,
            "secret_key_shares": sks.iter().map(|(i, s)| (i.to_string(), Value::String(scalar(&s.0)))).collect::<serde_json::Map<_, _>>(),
            "public_key_shares": pks.iter().map(|(i, p)| (i.to_string(), Value::String(g2(&p.0)))).collect::<serde_json::Map<_, _>>(),
            "aggregate_public_key": g2(&agg.0),
        },
        "notes": notes,
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}
