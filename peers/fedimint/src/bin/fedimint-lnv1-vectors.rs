//! Test vectors from the real 0.13.0 crates for fmclient's LNv1 ("ln" module) wire types: the
//! client config, the gateway registration (its consensus encoding, the signed message and an
//! announcement's JSON), contracts and their ids, the cancellation message, inputs, outputs,
//! outcomes and the JSON the guardians answer. Prints JSON; `make vectors` writes it to
//! tests/fmclient/data/lnv1_vectors.json.
//!
//! `PayInvoicePayload` lives in fedimint-ln-client, which this crate does not link: its JSON is
//! assembled from the serde of its fields (all from fedimint-ln-common, fedimint-core and
//! lightning-invoice) and `PaymentData`'s `#[serde(rename_all = "snake_case")]`
//! (fedimint-ln-client-0.13.0/src/pay.rs).
use std::str::FromStr;
use std::time::Duration;

use bitcoin_hashes::{Hash, sha256};
use bls12_381::Scalar;
use fedimint_core::encoding::Encodable;
use fedimint_core::encoding::btc::NetworkLegacyEncodingWrapper;
use fedimint_core::secp256k1::{Keypair, Message, PublicKey, SECP256K1, SecretKey};
use fedimint_core::util::SafeUrl;
use fedimint_core::{Amount, OutPoint, TransactionId, config::FederationId};
use fedimint_ln_common::config::{FeeConsensus, FeeToAmount, LightningClientConfig};
use fedimint_ln_common::contracts::incoming::{
    FundedIncomingContract, IncomingContract, IncomingContractAccount, IncomingContractOffer,
};
use fedimint_ln_common::contracts::outgoing::OutgoingContract;
use fedimint_ln_common::contracts::{
    Contract, ContractOutcome, DecryptedPreimage, DecryptedPreimageStatus, EncryptedPreimage,
    FundedContract, IdentifiableContract, OutgoingContractOutcome, Preimage, PreimageKey,
};
use fedimint_ln_common::route_hints::{RouteHint, RouteHintHop};
use fedimint_ln_common::{
    ContractAccount, ContractOutput, GatewayRegistrationAuth, LightningGateway,
    LightningGatewayAnnouncement, LightningInput, LightningOutput, LightningOutputOutcome,
    PrunedInvoice, create_gateway_registration_message,
};
use lightning_invoice::{Bolt11Invoice, Currency, InvoiceBuilder, PaymentSecret, RoutingFees};
use serde_json::json;

/// A regtest invoice of 250,000 sat for sha256([42; 32]) with a route hint, fixed inputs.
fn make_invoice() -> Bolt11Invoice {
    let node = SecretKey::from_slice(&[11u8; 32]).expect("key");
    InvoiceBuilder::new(Currency::Regtest)
        .description("fmgw lnv1 vectors".into())
        .payment_hash(sha256::Hash::hash(&[42u8; 32]))
        .payment_secret(PaymentSecret([43u8; 32]))
        .amount_milli_satoshis(250_000_000)
        .duration_since_epoch(Duration::from_secs(1_700_000_000))
        .expiry_time(Duration::from_secs(3600))
        .min_final_cltv_expiry_delta(18)
        .private_route(lightning_invoice::RouteHint(vec![lightning_invoice::RouteHintHop {
            src_node_id: pk(7),
            short_channel_id: 5,
            fees: RoutingFees { base_msat: 0, proportional_millionths: 0 },
            cltv_expiry_delta: 144,
            htlc_minimum_msat: None,
            htlc_maximum_msat: None,
        }]))
        .build_signed(|m| SECP256K1.sign_ecdsa_recoverable(m, &node))
        .expect("invoice")
}

fn enc<T: Encodable>(v: &T) -> String {
    let mut out = vec![];
    v.consensus_encode(&mut out).expect("encode");
    hex::encode(out)
}

/// serde's JSON of a value (serde itself is not a dependency of this crate: a macro, not a
/// generic function)
macro_rules! js {
    ($v:expr) => {
        serde_json::to_value($v).expect("json")
    };
}

fn key(n: u8) -> Keypair {
    Keypair::from_secret_key(SECP256K1, &SecretKey::from_slice(&[n; 32]).expect("key"))
}

fn pk(n: u8) -> PublicKey {
    key(n).public_key()
}

fn main() {
    // -- the client config, with a threshold key from a fixed scalar
    let tsk = threshold_crypto::SecretKey::from_mut(&mut Scalar::from(4_242_424_242u64));
    let tpk = tsk.public_key();
    let config = LightningClientConfig {
        threshold_pub_key: tpk,
        fee_consensus: FeeConsensus {
            contract_input: Amount::from_msats(7),
            contract_output: Amount::from_msats(1_300),
        },
        network: NetworkLegacyEncodingWrapper(bitcoin::Network::Regtest),
    };

    // -- the gateway's registration: node key 7, redeem key 8, gateway id 9
    let route_hints = vec![
        RouteHint(vec![RouteHintHop {
            src_node_id: pk(12),
            short_channel_id: 0x0001_2300_0045_0001,
            base_msat: 1_000,
            proportional_millionths: 100,
            cltv_expiry_delta: 40,
            htlc_minimum_msat: Some(1_000),
            htlc_maximum_msat: Some(990_000_000),
        }]),
        RouteHint(vec![]),
    ];
    let gateway = LightningGateway {
        federation_index: 3,
        gateway_redeem_key: pk(8),
        node_pub_key: pk(7),
        lightning_alias: "fmgw-gateway".into(),
        api: SafeUrl::parse("http://127.0.0.1:8175/").expect("url"),
        route_hints,
        fees: RoutingFees { base_msat: 1_000, proportional_millionths: 2_500 },
        gateway_id: pk(9),
        supports_private_payments: false,
    };
    let nonce = 1_700_000_000_123u64;
    let message = create_gateway_registration_message(tpk, nonce, &gateway);
    let signature = SECP256K1.sign_schnorr_no_aux_rand(&message, &key(9));
    let announcement = LightningGatewayAnnouncement {
        info: gateway.clone(),
        vetted: false,
        ttl: Duration::from_secs(600),
        auth: Some(GatewayRegistrationAuth { nonce, signature }),
    };
    assert!(announcement.registration_proof_is_valid(tpk));
    let unsigned = LightningGatewayAnnouncement { auth: None, ..announcement.clone() };

    // -- an outgoing contract: hash of the invoice, gateway key 8, user key 10
    let invoice = make_invoice();
    let bolt11 = invoice.to_string();
    assert_eq!(Bolt11Invoice::from_str(&bolt11).expect("parses"), invoice);
    let payment_hash = *invoice.payment_hash();
    let outgoing = OutgoingContract {
        hash: payment_hash,
        gateway_key: pk(8),
        timelock: 1_000_500,
        user_key: pk(10),
        cancelled: false,
    };
    let cancelled = OutgoingContract { cancelled: true, ..outgoing.clone() };
    assert_eq!(outgoing.contract_id(), cancelled.contract_id());
    let cancel_message = outgoing.cancellation_message();
    let cancel_signature =
        SECP256K1.sign_schnorr_no_aux_rand(&Message::from_digest(*cancel_message.as_ref()), &key(8));
    let fees = gateway.fees;
    let invoice_amount = Amount::from_msats(250_000_000);
    let contract_amount = invoice_amount + fees.to_amount(&invoice_amount);

    // -- an incoming offer and the contract funding it: the preimage key is a public key
    let preimage_key = PreimageKey(pk(13).serialize());
    let preimage = Preimage(sha256::Hash::hash(&preimage_key.0).to_byte_array());
    let incoming_hash = sha256::Hash::hash(&preimage.0);
    let encrypted = EncryptedPreimage::new(&preimage_key, &tpk);
    assert_eq!(tsk.decrypt(&encrypted.0).expect("decrypts"), preimage_key.0.to_vec());
    let offer = IncomingContractOffer {
        amount: Amount::from_msats(99_000),
        hash: incoming_hash,
        encrypted_preimage: encrypted.clone(),
        expiry_time: Some(1_900_000_000),
    };
    let incoming = IncomingContract {
        hash: incoming_hash,
        encrypted_preimage: encrypted.clone(),
        decrypted_preimage: DecryptedPreimage::Pending,
        gateway_key: pk(8),
    };
    let txid = TransactionId::from_byte_array([9u8; 32]);
    let out_point = OutPoint { txid, out_idx: 1 };
    let funded_incoming = FundedContract::Incoming(FundedIncomingContract {
        contract: incoming.clone(),
        out_point,
    });
    let decrypted_some = IncomingContract {
        decrypted_preimage: DecryptedPreimage::Some(preimage_key.clone()),
        ..incoming.clone()
    };
    let decrypted_invalid =
        IncomingContract { decrypted_preimage: DecryptedPreimage::Invalid, ..incoming.clone() };
    let account_out = ContractAccount {
        amount: contract_amount,
        contract: FundedContract::Outgoing(outgoing.clone()),
    };
    let account_in = ContractAccount { amount: offer.amount, contract: funded_incoming.clone() };
    let incoming_account = |c: &IncomingContract| IncomingContractAccount {
        amount: offer.amount,
        contract: c.clone(),
    };

    // -- inputs, outputs, outcomes
    let claim = LightningInput::new_v0(outgoing.contract_id(), contract_amount, Some(Preimage([42u8; 32])));
    let refund = LightningInput::new_v0(incoming.contract_id(), offer.amount, None);
    let outputs = [
        ("contract_outgoing", LightningOutput::new_v0_contract(ContractOutput {
            amount: contract_amount,
            contract: Contract::Outgoing(outgoing.clone()),
        })),
        ("contract_incoming", LightningOutput::new_v0_contract(ContractOutput {
            amount: offer.amount,
            contract: Contract::Incoming(incoming.clone()),
        })),
        ("offer", LightningOutput::new_v0_offer(offer.clone())),
        ("cancel_outgoing", LightningOutput::new_v0_cancel_outgoing(outgoing.contract_id(), cancel_signature)),
    ];
    let outcomes = [
        ("contract_incoming_pending", LightningOutputOutcome::new_v0_contract(
            incoming.contract_id(), ContractOutcome::Incoming(DecryptedPreimage::Pending))),
        ("contract_incoming_some", LightningOutputOutcome::new_v0_contract(
            incoming.contract_id(), ContractOutcome::Incoming(DecryptedPreimage::Some(preimage_key.clone())))),
        ("contract_incoming_invalid", LightningOutputOutcome::new_v0_contract(
            incoming.contract_id(), ContractOutcome::Incoming(DecryptedPreimage::Invalid))),
        ("contract_outgoing", LightningOutputOutcome::new_v0_contract(
            outgoing.contract_id(), ContractOutcome::Outgoing(OutgoingContractOutcome {}))),
        ("offer", LightningOutputOutcome::new_v0_offer(offer.id())),
        ("cancel_outgoing", LightningOutputOutcome::new_v0_cancel_outgoing(outgoing.contract_id())),
    ];

    // -- the body of POST /pay_invoice (PayInvoicePayload, see the module comment)
    let fed = FederationId(sha256::Hash::hash(b"federation"));
    let preimage_auth = sha256::Hash::hash(b"preimage auth");
    let pruned = PrunedInvoice::try_from(invoice.clone()).expect("amount");
    let pay_invoice = json!({
        "federation_id": js!(&fed),
        "contract_id": js!(&outgoing.contract_id()),
        "payment_data": {"invoice": js!(&invoice)},
        "preimage_auth": js!(&preimage_auth),
    });
    let pay_pruned = json!({
        "federation_id": js!(&fed),
        "contract_id": js!(&outgoing.contract_id()),
        "payment_data": {"pruned_invoice": js!(&pruned)},
        "preimage_auth": js!(&preimage_auth),
    });

    let fee_cases: Vec<_> = [
        (0u32, 100u32, 1_000_000u64),
        (0, 3_000, 1_000_000),
        (1_000, 10_000, 250_000_000),
        (500, 0, 0),
        (0, 1_000_001, 1_000_000),
        (2_000, 7_777, 123_456_789),
    ]
    .iter()
    .map(|&(base, ppm, amount)| {
        let f = RoutingFees { base_msat: base, proportional_millionths: ppm };
        json!({"base_msat": base, "proportional_millionths": ppm, "amount_msat": amount,
               "fee_msat": f.to_amount(&Amount::from_msats(amount)).msats})
    })
    .collect();

    let out = json!({
        "source": "fedimint-ln-common 0.13.0 (peers/fedimint/src/bin/fedimint-lnv1-vectors.rs)",
        "secret_keys": {
            "node": hex::encode([7u8; 32]), "redeem": hex::encode([8u8; 32]),
            "gateway_id": hex::encode([9u8; 32]), "user": hex::encode([10u8; 32]),
        },
        "config": {
            "threshold_pub_key": hex::encode(tpk.to_bytes()),
            "encoding": enc(&config),
            "json": js!(&config),
        },
        "gateway": {
            "json": js!(&gateway),
            "encoding": enc(&gateway),
            "nonce": nonce,
            "registration_message": hex::encode(message.as_ref()),
            "signature": hex::encode(signature.as_ref()),
            "announcement": js!(&announcement),
            "announcement_unsigned": js!(&unsigned),
        },
        "fees": fee_cases,
        "invoice": {"bolt11": bolt11, "pruned": js!(&pruned), "pruned_encoding": enc(&pruned)},
        "outgoing": {
            "json": js!(&outgoing),
            "encoding": enc(&outgoing),
            "cancelled_json": js!(&cancelled),
            "contract_id": hex::encode(outgoing.contract_id().to_byte_array()),
            "cancellation_message": hex::encode(cancel_message.to_byte_array()),
            "cancel_signature": hex::encode(cancel_signature.as_ref()),
            "amount_msat": contract_amount.msats,
        },
        "incoming": {
            "preimage_key": hex::encode(preimage_key.0),
            "preimage": hex::encode(preimage.0),
            "payment_hash": hex::encode(incoming_hash.to_byte_array()),
            "ciphertext": hex::encode(encrypted.0.to_bytes()),
            "offer_json": js!(&offer),
            "offer_encoding": enc(&offer),
            "json": js!(&incoming),
            "encoding": enc(&incoming),
            "contract_id": hex::encode(incoming.contract_id().to_byte_array()),
            "some_json": js!(&decrypted_some),
            "some_encoding": enc(&decrypted_some),
            "invalid_json": js!(&decrypted_invalid),
            "invalid_encoding": enc(&decrypted_invalid),
        },
        "accounts": {
            "outgoing_json": js!(&account_out),
            "outgoing_encoding": enc(&account_out),
            "incoming_json": js!(&account_in),
            "incoming_encoding": enc(&account_in),
            "account_none": js!(&Option::<ContractAccount>::None),
            "account_some": js!(&Some(account_out.clone())),
        },
        "answers": {
            "await_preimage_decryption_some": js!(&(incoming_account(&decrypted_some), Some(preimage.clone()))),
            "await_preimage_decryption_invalid": js!(&(incoming_account(&decrypted_invalid), Option::<Preimage>::None)),
            "status_pending": js!(&(incoming_account(&incoming), DecryptedPreimageStatus::Pending)),
            "status_some": js!(&(incoming_account(&decrypted_some), DecryptedPreimageStatus::Some(preimage.clone()))),
            "status_invalid": js!(&(incoming_account(&decrypted_invalid), DecryptedPreimageStatus::Invalid)),
            "offer": js!(&Some(offer.clone())),
            "list_gateways": js!(&vec![announcement.clone(), unsigned.clone()]),
            "block_count": js!(&Some(1_000_000u64)),
        },
        "inputs": [
            {"name": "claim", "encoding": enc(&claim), "json": js!(&claim)},
            {"name": "refund", "encoding": enc(&refund), "json": js!(&refund)},
        ],
        "outputs": outputs.iter().map(|(n, o)| json!({"name": n, "encoding": enc(o)})).collect::<Vec<_>>(),
        "outcomes": outcomes.iter().map(|(n, o)| json!({"name": n, "encoding": enc(o)})).collect::<Vec<_>>(),
        "pay_invoice_payload": pay_invoice,
        "pay_invoice_payload_pruned": pay_pruned,
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}
