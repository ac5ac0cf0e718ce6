//! Test vectors from the real 0.13.0 crates for fmclient/derive.py and the secrets the gateway
//! derives from its seed: fedimint-derive-secret's tree (child keys, federation keys, tweaks,
//! secp / BLS / ChaCha / raw-bytes outputs), fedimint-bip39's root secret, the per-federation
//! client root secret of `RootSecret::StandardDoubleDerive` (get_default_client_secret, then
//! the client builder's second `federation_key`), module secrets, and from them the gateway
//! modules' keys (gw-client's redeem key, gwv2-client's keypair), mint v1 and mintv2 note
//! secrets, and the wallet v1 / walletv2 peg-in tweak keys.
//! Prints JSON; `make vectors` writes it to tests/fmclient/data/derive_vectors.json.
use std::str::FromStr;

use fedimint_bip39::{Bip39RootSecretStrategy, Mnemonic};
use fedimint_client_module::secret::{
    DeriveableSecretClientExt, RootSecretStrategy, get_default_client_secret,
};
use fedimint_core::Amount;
use fedimint_core::config::FederationId;
use fedimint_core::encoding::Encodable;
use fedimint_core::secp256k1::SECP256K1;
use fedimint_derive_secret::{ChildId, DerivableSecret};
use fedimint_mint_client::output::NoteIssuanceRequest as MintV1Request;
use fedimint_mint_client::{MintClientModule, NoteIndex};
use fedimint_mintv2_client::common::Denomination;
use fedimint_mintv2_client::issuance;
use serde_json::{Value, json};

fn enc<T: Encodable>(v: &T) -> String {
    let mut out = vec![];
    v.consensus_encode(&mut out).expect("encode");
    hex::encode(out)
}

/// The PRK of a secret (its encoding is level as a varint, then the 64-byte PRK).
fn prk(s: &DerivableSecret) -> String {
    let e = enc(s);
    e[e.len() - 128..].to_string()
}

fn secp(s: &DerivableSecret) -> Value {
    let kp = s.clone().to_secp_key(SECP256K1);
    json!({
        "secret": hex::encode(kp.secret_key().secret_bytes()),
        "public": hex::encode(kp.public_key().serialize()),
    })
}

fn outputs(s: &DerivableSecret) -> Value {
    json!({
        "level": s.level(),
        "prk": prk(s),
        "secp": secp(s),
        "bls12_381_le": hex::encode(s.to_bls12_381_key().to_bytes()),
        "chacha20_poly1305": hex::encode(s.to_chacha20_poly1305_key_raw()),
        "random_bytes_32": hex::encode(s.to_random_bytes::<32>()),
        "random_bytes_100": hex::encode(s.to_random_bytes::<100>()),
    })
}

/// A tweak passing the mintv2 client's filter, found by counting (so the vectors are fixed).
fn first_ground_tweak(filter: [u8; 32]) -> [u8; 16] {
    for i in 0u128.. {
        let tweak = i.to_be_bytes();
        if issuance::check_tweak(tweak, filter) {
            return tweak;
        }
    }
    unreachable!()
}

fn module_vectors(module: &DerivableSecret) -> Value {
    // gw-client (LNv1): redeem key = module/0 (fedimint-gw-client lib.rs:190-193)
    let lnv1_redeem = module.child_key(ChildId(0));
    // mint v1 note secrets: module/0/index/amount, spend key /0, blinding key /1
    let mut mint_v1 = vec![];
    for (msat, idx) in [(1u64, 0u64), (1024, 0), (1024, 1), (1 << 20, 7)] {
        let secret = MintClientModule::new_note_secret_static(
            module,
            Amount::from_msats(msat),
            NoteIndex::from_u64(idx),
        );
        let (req, blind_nonce) = MintV1Request::new(SECP256K1, &secret);
        mint_v1.push(json!({
            "amount_msat": msat,
            "index": idx,
            "note_secret_prk": prk(&secret),
            "spend_secret": hex::encode(req.spend_key().secret_key().secret_bytes()),
            "nonce": hex::encode(req.nonce().0.serialize()),
            "blinding_key_le": hex::encode(req.blinding_key().0.to_bytes()),
            "blind_nonce": enc(&blind_nonce),
        }));
    }
    // mintv2: filter = module.to_random_bytes::<32>, secret = module/denomination.tweak(tweak)
    let filter = issuance::tweak_filter(module);
    let ground = first_ground_tweak(filter);
    let mut mint_v2 = vec![];
    for (d, tweak) in [(0u8, ground), (10, ground), (3, [7u8; 16])] {
        let req = issuance::NoteIssuanceRequest::new(Denomination(d), tweak, module);
        mint_v2.push(json!({
            "denomination": d,
            "tweak": hex::encode(tweak),
            "tweak_passes_filter": issuance::check_tweak(tweak, filter),
            "spend_secret": hex::encode(req.keypair.secret_key().secret_bytes()),
            "nonce": hex::encode(req.keypair.public_key().serialize()),
            "blinding_key_le": hex::encode(req.blinding_key.0.to_bytes()),
            "blinded_message": enc(&req.blinded_message()),
        }));
    }
    // wallet v1 peg-in tweak key: module/0/index (fedimint-wallet-client lib.rs:575-585)
    let wallet_v1: Vec<Value> = [0u64, 1, 5]
        .iter()
        .map(|i| json!({"index": i, "key": secp(&module.child_key(ChildId(0)).child_key(ChildId(*i)))}))
        .collect();
    // walletv2 address tweak key: module/index (fedimint-walletv2-client lib.rs:683-687)
    let wallet_v2: Vec<Value> = [0u64, 3]
        .iter()
        .map(|i| json!({"index": i, "key": secp(&module.child_key(ChildId(*i)))}))
        .collect();
    json!({
        "prk": prk(module),
        "lnv2_gateway_key": secp(module),
        "lnv1_redeem_key": secp(&lnv1_redeem),
        "mint_v1": mint_v1,
        "mintv2_tweak_filter": hex::encode(filter),
        "mint_v2": mint_v2,
        "wallet_v1": wallet_v1,
        "wallet_v2": wallet_v2,
    })
}

fn main() {
    let mnemonics = [
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
        "legal winner thank year wave sausage worth useful legal winner thank yellow",
        "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong",
    ];
    let federation_ids = [
        "0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a",
        "f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff00",
    ];
    let mut cases = vec![];
    for words in mnemonics {
        let mnemonic = Mnemonic::from_str(words).expect("mnemonic");
        let root = Bip39RootSecretStrategy::<12>::to_root_secret(&mnemonic);
        let mut feds = vec![];
        for fid in federation_ids {
            let federation_id = FederationId::from_str(fid).expect("federation id");
            // RootSecret::StandardDoubleDerive(root).to_inner(fid) (fedimint-client builder.rs:111-118)
            let client = get_default_client_secret(&root, &federation_id);
            // ClientBuilder::federation_root_secret (builder.rs:1255-1260)
            let federation = client.federation_key(&federation_id);
            let modules: Vec<Value> = [0u16, 3]
                .iter()
                .map(|i| {
                    let mut v = module_vectors(&federation.derive_module_secret(*i));
                    v["module_instance_id"] = json!(i);
                    v
                })
                .collect();
            feds.push(json!({
                "federation_id": fid,
                "client_secret": outputs(&client),
                "pre_root_secret_hash": hex::encode(client.derive_pre_root_secret_hash()),
                "federation_root_secret": outputs(&federation),
                "backup_secret_prk": prk(&federation.derive_backup_secret()),
                "modules": modules,
            }));
        }
        cases.push(json!({
            "words": words,
            "bip39_seed": hex::encode(mnemonic.to_seed_normalized("")),
            "root": outputs(&root),
            "root_child_0": outputs(&root.child_key(ChildId(0))),
            "root_child_max": outputs(&root.child_key(ChildId(u64::MAX))),
            "root_tweak_abc": outputs(&root.tweak(b"abc")),
            "federations": feds,
        }));
    }
    println!("{}", serde_json::to_string_pretty(&json!({"cases": cases})).expect("json"));
}
