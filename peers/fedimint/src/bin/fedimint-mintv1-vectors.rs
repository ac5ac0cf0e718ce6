//! Test vectors from the real 0.13.0 crates for fmclient's mint v1 ("mint") code: the note
//! message hash, the module's inputs, outputs, outcomes, errors and client config (consensus
//! encoding), its fees, the note amounts its client lays out (`represent_amount`) and the
//! out-of-band e-cash string (`OOBNotes`, both forms). Every input is fixed. Prints JSON;
//! `make vectors` writes it to tests/fmclient/data/mintv1_vectors.json.
use std::collections::BTreeMap;
use std::str::FromStr;

use bitcoin_hashes::{Hash, sha256};
use bls12_381::{G2Affine, Scalar};
use fedimint_core::config::FederationId;
use fedimint_core::core::IntoDynInstance;
use fedimint_core::encoding::{Decodable, Encodable};
use fedimint_core::invite_code::InviteCode;
use fedimint_core::module::registry::ModuleDecoderRegistry;
use fedimint_core::secp256k1::{Keypair, SECP256K1, SecretKey};
use fedimint_core::util::SafeUrl;
use fedimint_core::{Amount, PeerId, Tiered, TieredCounts, TieredMulti, base32};
use fedimint_mint_client::{OOBNotes, SpendableNote, represent_amount};
use fedimint_mint_common::config::{FeeConsensus, MintClientConfig};
use fedimint_mint_common::{
    BlindNonce, MintInput, MintInputError, MintOutput, MintOutputError, MintOutputOutcome, Nonce,
    Note,
};
use serde_json::{Value, json};
use tbs::{
    AggregatePublicKey, BlindingKey, PublicKeyShare, SecretKeyShare, aggregate_signature_shares,
    blind_message, sign_message, unblind_signature,
};

fn enc<T: Encodable>(v: &T) -> String {
    hex::encode(v.consensus_encode_to_vec())
}

fn key(n: u8) -> Keypair {
    Keypair::from_secret_key(SECP256K1, &SecretKey::from_slice(&[n; 32]).expect("key"))
}

/// A 3-of-4 key per tier: f_t(x) = a0 + a1 x + a2 x^2 with coefficients from the tier.
fn tier_secret(tier: u64, x: u64) -> Scalar {
    let (a0, a1, a2) = (Scalar::from(1_000 + tier), Scalar::from(77 * tier + 5), Scalar::from(3u64));
    let x = Scalar::from(x);
    a0 + a1 * x + a2 * x * x
}

fn g2(s: Scalar) -> G2Affine {
    G2Affine::from(G2Affine::generator() * s)
}

fn main() {
    let decoders = ModuleDecoderRegistry::default();
    // the message a note's nonce is signed as: SHA3 "TBS_BLS12-381_" ‖ the 33-byte key
    let messages: Vec<Value> = (1u8..=4)
        .map(|n| {
            let nonce = Nonce(key(n).public_key());
            json!({"nonce": hex::encode(nonce.0.serialize()), "message": hex::encode(nonce.to_message().0.to_compressed())})
        })
        .collect();

    // a 4-guardian config over tiers 1, 2, 4, ..., 1024 msat
    let tiers: Vec<Amount> = (0..=10).map(|k| Amount::from_msats(1 << k)).collect();
    let tbs_pks: Tiered<AggregatePublicKey> =
        tiers.iter().map(|a| (*a, AggregatePublicKey(g2(tier_secret(a.msats, 0))))).collect();
    let peer_tbs_pks: BTreeMap<PeerId, Tiered<PublicKeyShare>> = (0..4u16)
        .map(|p| {
            let keys = tiers
                .iter()
                .map(|a| (*a, PublicKeyShare(g2(tier_secret(a.msats, u64::from(p) + 1)))))
                .collect();
            (PeerId::from(p), keys)
        })
        .collect();
    let config = MintClientConfig {
        tbs_pks,
        fee_consensus: FeeConsensus::new(1_000).expect("fee"),
        peer_tbs_pks,
        max_notes_per_denomination: 3,
    };
    let config_bytes = config.consensus_encode_to_vec();
    assert_eq!(MintClientConfig::consensus_decode_whole(&config_bytes, &decoders).expect("decodes"), config);

    // notes signed by that federation: blind, a share per guardian, combine 0, 1, 3, unblind
    let mut notes = vec![];
    let mut spendable = vec![];
    for (i, msats) in [(5u8, 1024u64), (6, 1024), (7, 2), (8, 64)] {
        let spend_key = key(i);
        let nonce = Nonce(spend_key.public_key());
        let r = BlindingKey(Scalar::from(4_242u64 * u64::from(i)));
        let blinded = blind_message(nonce.to_message(), r);
        let shares: BTreeMap<u64, _> = (0..4u64)
            .map(|p| (p, sign_message(blinded, SecretKeyShare(tier_secret(msats, p + 1)))))
            .collect();
        let subset: BTreeMap<u64, _> = shares.iter().filter(|(p, _)| **p != 2).map(|(p, s)| (*p, *s)).collect();
        let signature = unblind_signature(r, aggregate_signature_shares(&subset));
        let amount = Amount::from_msats(msats);
        let note = Note { nonce, signature };
        assert!(note.verify(*config.tbs_pks.tier(&amount).expect("tier")));
        let output = MintOutput::new_v0(amount, BlindNonce(blinded));
        notes.push(json!({
            "amount_msat": msats,
            "secret": hex::encode(spend_key.secret_bytes()),
            "nonce": hex::encode(nonce.0.serialize()),
            "blinding_key": hex::encode(r.0.to_bytes()),
            "blinded_message": hex::encode(blinded.0.to_compressed()),
            "shares": shares.values().map(|s| hex::encode(s.0.to_compressed())).collect::<Vec<_>>(),
            "signature": hex::encode(signature.0.to_compressed()),
            "output": enc(&output),
            "dyn_output": enc(&output.clone().into_dyn(3)),
            "input": enc(&MintInput::new_v0(amount, note)),
            "outcome": enc(&MintOutputOutcome::new_v0(shares[&1])),
            "dyn_outcome": enc(&MintOutputOutcome::new_v0(shares[&1]).into_dyn(3)),
        }));
        spendable.push((amount, SpendableNote { signature, spend_key }));
    }

    // the out-of-band string: a prefix and the notes; and with an invite (and an API secret)
    let federation_id = FederationId(sha256::Hash::hash(b"mint v1 federation"));
    let tiered: TieredMulti<SpendableNote> = spendable.into_iter().collect();
    let plain = OOBNotes::new(federation_id.to_prefix(), tiered.clone());
    let url = SafeUrl::parse("ws://127.0.0.1:18174/").expect("url");
    let invite = InviteCode::new(url, PeerId::from(0), federation_id, Some("s3cret".into()));
    let with_invite = OOBNotes::new_with_invite(tiered, &invite);
    let oob = |o: &OOBNotes| {
        let text = o.to_string();
        let base32 = base32::encode_prefixed(base32::FEDIMINT_PREFIX, o);
        let standard = base64_standard(&o.consensus_encode_to_vec());
        for form in [&text, &base32, &standard] {
            assert_eq!(&OOBNotes::from_str(form).expect("parses"), o);
        }
        json!({"encoding": enc(o), "display": text, "base32": base32, "standard_base64": standard,
               "total_msat": o.total_amount().msats, "federation_id_prefix": o.federation_id_prefix().to_string()})
    };

    // errors a submission names (variant index, then the body)
    let errors = json!({
        "input_spent_coin": enc(&MintInputError::SpentCoin),
        "input_invalid_amount_tier": enc(&MintInputError::InvalidAmountTier(Amount::from_msats(3))),
        "input_invalid_signature": enc(&MintInputError::InvalidSignature),
        "output_invalid_amount_tier": enc(&MintOutputError::InvalidAmountTier(Amount::from_msats(3))),
        "output_blind_nonce_used": enc(&MintOutputError::BlindNonceAlreadyUsed),
    });

    // fees and the client's note layout over the real tiers (1 msat .. 1e6 BTC, powers of two)
    let real_tiers = Tiered::gen_denominations(2, Amount::from_bitcoins(1_000_000));
    let fee_cases = [("zero", FeeConsensus::zero()), ("base", FeeConsensus::new(0).expect("fee")), ("ppm1000", FeeConsensus::new(1_000).expect("fee"))];
    let amounts = [0u64, 1, 99, 100, 101, 511, 512, 1_000, 64_000, 1_000_000, 123_456_789, 100_000_000_000];
    let fees: Vec<Value> = fee_cases
        .iter()
        .map(|(name, fc)| {
            json!({
                "name": name, "encoding": enc(fc),
                "fee": amounts.iter().map(|a| (a.to_string(), json!(fc.fee(Amount::from_msats(*a)).msats))).collect::<serde_json::Map<_, _>>(),
                "min_economical_msat": fc.min_economical_denomination().msats,
                "round_up": amounts.iter().map(|a| (a.to_string(), json!(fc.round_up(Amount::from_msats(*a)).msats))).collect::<serde_json::Map<_, _>>(),
            })
        })
        .collect();
    let bad_fees: Vec<Value> = [(50u64, 0u64), (100, 1_001), (0, 10), (100, 1_000)]
        .iter()
        .map(|(base, ppm)| {
            let bytes = (Amount::from_msats(*base), *ppm).consensus_encode_to_vec();
            json!({"encoding": hex::encode(&bytes), "decodes": FeeConsensus::consensus_decode_whole(&bytes, &decoders).is_ok()})
        })
        .collect();
    let mut held = TieredCounts::default();
    held.inc(Amount::from_msats(1), 3);
    held.inc(Amount::from_msats(4), 1);
    held.inc(Amount::from_msats(1024), 5);
    let mut layouts: Vec<Value> = vec![];
    for (sets, with_held) in [(0u16, false), (2, false), (3, true)] {
        let current = if with_held { held.clone() } else { TieredCounts::default() };
        for (name, fc) in &fee_cases {
            for a in amounts {
                let counts = represent_amount(Amount::from_msats(a), &current, &real_tiers, sets, fc);
                layouts.push(json!({"amount_msat": a, "fees": name, "sets": sets, "held": with_held,
                    "counts": counts.iter().map(|(t, n)| json!([t.msats, n])).collect::<Vec<_>>()}));
            }
        }
    }

    let out = json!({
        "source": "fedimint-mint-common/-client 0.13.0 (peers/fedimint/src/bin/fedimint-mintv1-vectors.rs)",
        "messages": messages,
        "config": {"encoding": hex::encode(&config_bytes), "json": serde_json::to_value(&config).expect("json")},
        "tier_secret_note": "tier t, guardian p: sk = (1000 + t) + (77 t + 5) x + 3 x^2 at x = p + 1; aggregate at x = 0",
        "notes": notes,
        "federation_id": federation_id.to_string(),
        "oob_plain": oob(&plain),
        "oob_invite": oob(&with_invite),
        "invite": invite.to_string(),
        "errors": errors,
        "fees": fees,
        "bad_fees": bad_fees,
        "held": held.iter().map(|(t, n)| json!([t.msats, n])).collect::<Vec<_>>(),
        "layouts": layouts,
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}

/// Standard base64 with padding (the third form `OOBNotes::from_str` accepts).
fn base64_standard(data: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
