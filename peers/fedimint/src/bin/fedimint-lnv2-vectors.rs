//! Test vectors from the real 0.13.0 crates for fmclient's LNv2 wire types: contracts, their
//! ids, inputs and outputs (consensus encoding), and the JSON of the gateway API's bodies.
//! Prints JSON; `make vectors` writes it to tests/fmclient/data/lnv2_vectors.json.
use std::str::FromStr;

use bitcoin_hashes::{Hash, sha256};
use bls12_381::{G1Affine, G1Projective, Scalar};
use fedimint_core::encoding::Encodable;
use fedimint_core::secp256k1::{Keypair, Message, PublicKey, SECP256K1, SecretKey};
use fedimint_core::{Amount, OutPoint, TransactionId, config::FederationId};
use fedimint_lnv2_common::contracts::{IncomingContract, OutgoingContract, PaymentImage};
use fedimint_lnv2_common::gateway_api::{CreateBolt11InvoicePayload, SendPaymentPayload};
use fedimint_lnv2_common::{
    Bolt11InvoiceDescription, LightningInput, LightningInputV0, LightningInvoice, LightningOutput,
    LightningOutputV0, OutgoingWitness,
};
use std::time::Duration;

use lightning_invoice::{Bolt11Invoice, Currency, InvoiceBuilder, PaymentSecret};
use serde_json::json;
use tpe::{AggregateDecryptionKey, AggregatePublicKey};

/// A regtest invoice of 250,000 sat for sha256([42; 32]), made and signed with fixed inputs.
fn make_invoice() -> Bolt11Invoice {
    let node = SecretKey::from_slice(&[11u8; 32]).expect("key");
    InvoiceBuilder::new(Currency::Regtest)
        .description("fmgw vectors".into())
        .payment_hash(sha256::Hash::hash(&[42u8; 32]))
        .payment_secret(PaymentSecret([43u8; 32]))
        .amount_milli_satoshis(250_000_000)
        .duration_since_epoch(Duration::from_secs(1_700_000_000))
        .min_final_cltv_expiry_delta(18)
        .build_signed(|m| SECP256K1.sign_ecdsa_recoverable(m, &node))
        .expect("invoice")
}

fn enc<T: Encodable>(v: &T) -> String {
    let mut out = vec![];
    v.consensus_encode(&mut out).expect("encode");
    hex::encode(out)
}

fn key(n: u8) -> Keypair {
    Keypair::from_secret_key(SECP256K1, &SecretKey::from_slice(&[n; 32]).expect("key"))
}

fn pk(n: u8) -> PublicKey {
    key(n).public_key()
}

fn main() {
    let invoice = make_invoice();
    let text = invoice.to_string();
    assert_eq!(Bolt11Invoice::from_str(&text).expect("parses"), invoice);
    let payment_hash = sha256::Hash::from_byte_array(*invoice.payment_hash().as_ref());
    let outgoing = OutgoingContract {
        payment_image: PaymentImage::Hash(payment_hash),
        amount: Amount::from_msats(250_000_000 + 752_000),
        expiration: 1_000_144,
        claim_pk: pk(1),
        refund_pk: pk(2),
        ephemeral_pk: pk(3),
    };
    let ln_invoice = LightningInvoice::Bolt11(invoice.clone());
    let invoice_hash = ln_invoice.consensus_hash::<sha256::Hash>();
    let auth = SECP256K1.sign_schnorr_no_aux_rand(&Message::from_digest(*invoice_hash.as_ref()), &key(2));
    let forfeit = SECP256K1.sign_schnorr_no_aux_rand(&outgoing.forfeit_message(), &key(1));
    assert!(outgoing.verify_forfeit_signature(&forfeit));
    assert!(outgoing.verify_invoice_auth(invoice_hash, &auth));

    let agg = AggregatePublicKey(G1Affine::from(G1Projective::generator() * Scalar::from(42_424_242u64)));
    let seed = [7u8; 32];
    let preimage = sha256::Hash::hash(&seed).to_byte_array();
    let incoming = IncomingContract::new(
        agg,
        seed,
        preimage,
        PaymentImage::Hash(preimage.consensus_hash::<sha256::Hash>()),
        Amount::from_msats(99_000),
        1_900_000_000,
        pk(4),
        pk(5),
        pk(6),
    );
    assert!(incoming.verify());
    let agg_dk = AggregateDecryptionKey(G1Affine::from(agg.0 * Scalar::from(3u64)));

    let txid = TransactionId::from_byte_array([9u8; 32]);
    let outpoint = OutPoint { txid, out_idx: 1 };
    let inputs = [
        ("outgoing_claim", LightningInputV0::Outgoing(outpoint, OutgoingWitness::Claim(preimage))),
        ("outgoing_refund", LightningInputV0::Outgoing(outpoint, OutgoingWitness::Refund)),
        ("outgoing_cancel", LightningInputV0::Outgoing(outpoint, OutgoingWitness::Cancel(forfeit))),
        ("incoming", LightningInputV0::Incoming(outpoint, agg_dk)),
    ];
    let fed = FederationId(sha256::Hash::hash(b"federation"));
    let send = SendPaymentPayload {
        federation_id: fed,
        outpoint,
        contract: outgoing.clone(),
        invoice: ln_invoice.clone(),
        auth,
    };
    let create = CreateBolt11InvoicePayload {
        federation_id: fed,
        contract: incoming.clone(),
        amount: Amount::from_msats(100_000),
        description: Bolt11InvoiceDescription::Direct("coffee".into()),
        expiry_secs: 3600,
    };
    let ok: Result<[u8; 32], fedimint_core::secp256k1::schnorr::Signature> = Ok(preimage);
    let err: Result<[u8; 32], fedimint_core::secp256k1::schnorr::Signature> = Err(forfeit);
    let out = json!({
        "source": "fedimint-lnv2-common 0.13.0 (peers/fedimint/src/bin/fedimint-lnv2-vectors.rs)",
        "secret_keys": {"claim": hex::encode([1u8; 32]), "refund": hex::encode([2u8; 32])},
        "outgoing": {
            "json": serde_json::to_value(&outgoing).expect("json"),
            "encoding": enc(&outgoing),
            "contract_id": hex::encode(outgoing.contract_id().0.to_byte_array()),
            "output": enc(&LightningOutput::V0(LightningOutputV0::Outgoing(outgoing.clone()))),
            "forfeit_signature": hex::encode(forfeit.as_ref()),
        },
        "invoice": {
            "bolt11": text,
            "encoding": enc(&ln_invoice),
            "hash": hex::encode(invoice_hash.to_byte_array()),
            "auth": hex::encode(auth.as_ref()),
        },
        "incoming": {
            "aggregate_public_key": hex::encode(agg.0.to_compressed()),
            "encryption_seed": hex::encode(seed),
            "preimage": hex::encode(preimage),
            "json": serde_json::to_value(&incoming).expect("json"),
            "encoding": enc(&incoming),
            "commitment_hash": hex::encode(incoming.commitment.consensus_hash::<sha256::Hash>().to_byte_array()),
            "contract_id": hex::encode(incoming.contract_id().0.to_byte_array()),
            "output": enc(&LightningOutput::V0(LightningOutputV0::Incoming(incoming.clone()))),
        },
        "inputs": inputs.iter().map(|(name, i)| json!({"name": name, "encoding": enc(&LightningInput::V0(i.clone()))})).collect::<Vec<_>>(),
        "aggregate_decryption_key": hex::encode(agg_dk.0.to_compressed()),
        "send_payment_payload": serde_json::to_value(&send).expect("json"),
        "send_payment_ok": serde_json::to_value(&ok).expect("json"),
        "send_payment_err": serde_json::to_value(&err).expect("json"),
        "create_bolt11_invoice_payload": serde_json::to_value(&create).expect("json"),
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}
