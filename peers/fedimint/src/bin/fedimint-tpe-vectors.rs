//! Test vectors from the real 0.13.0 crates for fmclient's TPE (LNv2 incoming contracts) code:
//! prints JSON to stdout. `make vectors` writes it to tests/fmclient/data/tpe_vectors.json. Every
//! input is fixed, so the output is the same on every run.
use std::collections::BTreeMap;

use bitcoin_hashes::{Hash, sha256};
use bls12_381::{G1Affine, G1Projective, Scalar};
use serde_json::{Value, json};
use tpe::{
    AggregatePublicKey, PublicKeyShare, SecretKeyShare, aggregate_dk_shares, create_dk_share,
    decrypt_preimage, derive_agg_dk, derive_pk_share, encrypt_preimage, verify_agg_dk,
    verify_ciphertext, verify_dk_share,
};

fn g1(p: &G1Affine) -> String {
    hex::encode(p.to_compressed())
}

fn main() {
    // a 3-of-4 key: f(x) = a0 + a1 x + a2 x^2, guardian i holds f(i + 1)
    let coefficients = [Scalar::from(42_424_242u64), Scalar::from(7_777_777u64), Scalar::from(31u64)];
    let f = |x: u64| {
        let x = Scalar::from(x);
        coefficients[0] + coefficients[1] * x + coefficients[2] * x * x
    };
    let sks: BTreeMap<u64, SecretKeyShare> = (0..4u64).map(|i| (i, SecretKeyShare(f(i + 1)))).collect();
    let pks: BTreeMap<u64, PublicKeyShare> = sks.iter().map(|(i, sk)| (*i, derive_pk_share(sk))).collect();
    let agg = AggregatePublicKey(G1Affine::from(G1Projective::generator() * coefficients[0]));

    let mut cases = vec![];
    for n in 0u8..6 {
        let seed: [u8; 32] = sha256::Hash::hash(&[b'S', n]).to_byte_array();
        let preimage: [u8; 32] = sha256::Hash::hash(&seed).to_byte_array();
        let commitment = sha256::Hash::hash(&[b'C', n]);
        let ct = encrypt_preimage(&agg, &seed, &preimage, &commitment);
        assert!(verify_ciphertext(&ct, &commitment));
        let shares: BTreeMap<u64, _> = sks.iter().map(|(i, sk)| (*i, create_dk_share(sk, &ct))).collect();
        for (i, share) in &shares {
            assert!(verify_dk_share(&pks[i], share, &ct, &commitment));
        }
        let subset: BTreeMap<u64, _> = shares.iter().filter(|(i, _)| **i != (n as u64 % 4)).map(|(i, s)| (*i, *s)).collect();
        let agg_dk = aggregate_dk_shares(&subset);
        assert!(verify_agg_dk(&agg, &agg_dk, &ct, &commitment));
        assert_eq!(agg_dk, derive_agg_dk(&agg, &seed));
        assert_eq!(decrypt_preimage(&ct, &agg_dk), preimage);
        let mut encoded = vec![];
        fedimint_core::encoding::Encodable::consensus_encode(&ct, &mut encoded).expect("encode");
        cases.push(json!({
            "encryption_seed": hex::encode(seed),
            "preimage": hex::encode(preimage),
            "commitment_hash": hex::encode(commitment.to_byte_array()),
            "ciphertext": {
                "encrypted_preimage": hex::encode(ct.encrypted_preimage),
                "pk": g1(&ct.pk.0),
                "signature": hex::encode(ct.signature.0.to_compressed()),
            },
            "ciphertext_encoding": hex::encode(encoded),
            "decryption_key_shares": shares.iter().map(|(i, s)| (i.to_string(), Value::String(g1(&s.0)))).collect::<serde_json::Map<_, _>>(),
            "combined_from": subset.keys().collect::<Vec<_>>(),
            "aggregate_decryption_key": g1(&agg_dk.0),
        }));
    }
    let out = json!({
        "source": "fedimint-tpe 0.13.0 and bls12_381 0.8.0 (peers/fedimint/src/bin/fedimint-tpe-vectors.rs)",
        "threshold_key": {
            "threshold": 3,
            "public_key_shares": pks.iter().map(|(i, p)| (i.to_string(), Value::String(g1(&p.0)))).collect::<serde_json::Map<_, _>>(),
            "aggregate_public_key": g1(&agg.0),
        },
        "cases": cases,
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}
