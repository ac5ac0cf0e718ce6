//! Test vectors from the real 0.13.0 crates for fmclient's wallet v1 wire types: the client
//! config (1 and 4 guardians), peg-in addresses (the descriptor tweaked by a tweak key), the
//! peg-in proof and both claim inputs, a claim's txid, peg-outs to every standard address type,
//! peg-out fees and the output outcome. Prints JSON; `make vectors` writes it to
//! tests/fmclient/data/walletv1_vectors.json.
use std::collections::BTreeMap;

use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version as BlockVersion};
use bitcoin::hashes::Hash;
use bitcoin::merkle_tree::PartialMerkleTree;
use bitcoin::transaction::Version;
use bitcoin::{
    Address, Amount as BtcAmount, BlockHash, CompactTarget, Network, OutPoint as BtcOutPoint,
    ScriptBuf, Sequence, Transaction as BtcTransaction, TxIn, TxMerkleNode, TxOut, Txid, Witness,
};
use fedimint_core::core::{DynInput, DynOutput, DynOutputOutcome};
use fedimint_core::encoding::Encodable;
use fedimint_core::encoding::btc::NetworkLegacyEncodingWrapper;
use fedimint_core::envs::BitcoinRpcConfig;
use fedimint_core::secp256k1::{PublicKey, SECP256K1, SecretKey};
use fedimint_core::transaction::{Transaction, TransactionSignature};
use fedimint_core::txoproof::TxOutProof;
use fedimint_core::util::SafeUrl;
use fedimint_wallet_common::config::{FeeConsensus, WalletClientConfig};
use fedimint_wallet_common::keys::CompressedPublicKey;
use fedimint_wallet_common::tweakable::Tweakable;
use fedimint_wallet_common::txoproof::PegInProof;
use fedimint_wallet_common::{
    PegInDescriptor, PegOutFees, WalletInput, WalletOutput, WalletOutputOutcome,
};
use miniscript::Descriptor;
use miniscript::descriptor::{Wpkh, Wsh};
use serde_json::{Value, json};

const MODULE: u16 = 4;

fn enc<T: Encodable>(v: &T) -> String {
    let mut out = vec![];
    v.consensus_encode(&mut out).expect("encode");
    hex::encode(out)
}

fn sk(n: u8) -> SecretKey {
    SecretKey::from_slice(&[n; 32]).expect("key")
}

fn pk(n: u8) -> PublicKey {
    sk(n).public_key(SECP256K1)
}

fn descriptor(guardians: u8) -> PegInDescriptor {
    let keys: Vec<CompressedPublicKey> =
        (1..=guardians).map(|i| CompressedPublicKey::new(pk(20 + i))).collect();
    if keys.len() == 1 {
        Descriptor::Wpkh(Wpkh::new(keys[0]).expect("compressed"))
    } else {
        let n = keys.len();
        Descriptor::Wsh(Wsh::new_sortedmulti(n - (n - 1) / 3, keys).expect("sortedmulti"))
    }
}

fn config(guardians: u8) -> WalletClientConfig {
    WalletClientConfig {
        peg_in_descriptor: descriptor(guardians),
        network: NetworkLegacyEncodingWrapper(Network::Regtest),
        finality_delay: 10,
        fee_consensus: FeeConsensus::default(),
        default_bitcoin_rpc: BitcoinRpcConfig {
            kind: "esplora".into(),
            url: SafeUrl::parse("http://127.0.0.1:50002/").expect("url"),
        },
    }
}

/// A transaction paying `script` 150,000 sat at output 1 (output 0 pays someone else).
fn deposit_tx(script: ScriptBuf) -> BtcTransaction {
    BtcTransaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: BtcOutPoint { txid: Txid::from_byte_array([5; 32]), vout: 3 },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::from_slice(&[vec![0x30; 71], vec![0x02; 33]]),
        }],
        output: vec![
            TxOut {
                value: BtcAmount::from_sat(49_000),
                script_pubkey: ScriptBuf::from_bytes(vec![0x00, 0x14].into_iter().chain([9; 20]).collect()),
            },
            TxOut { value: BtcAmount::from_sat(150_000), script_pubkey: script },
        ],
    }
}

fn peg_in(guardians: u8) -> Value {
    let cfg = config(guardians);
    let tweak_key = pk(9);
    let tweaked = cfg.peg_in_descriptor.tweak(&tweak_key, SECP256K1);
    let script = tweaked.script_pubkey();
    let address = tweaked.address(Network::Regtest).expect("address");
    let tx = deposit_tx(script.clone());
    let txids = [Txid::from_byte_array([1; 32]), tx.compute_txid(), Txid::from_byte_array([3; 32])];
    let pmt = PartialMerkleTree::from_txids(&txids, &[false, true, false]);
    let mut matches = vec![];
    let mut indexes = vec![];
    let root = pmt.extract_matches(&mut matches, &mut indexes).expect("tree");
    let header = Header {
        version: BlockVersion::TWO,
        prev_blockhash: BlockHash::from_byte_array([4; 32]),
        merkle_root: TxMerkleNode::from_byte_array(root.to_byte_array()),
        time: 1_700_000_000,
        bits: CompactTarget::from_consensus(0x207f_ffff),
        nonce: 7,
    };
    let proof = TxOutProof { block_header: header, merkle_proof: pmt };
    let peg_in_proof = PegInProof::new(proof.clone(), tx.clone(), 1, tweak_key).expect("proof");
    peg_in_proof.verify(SECP256K1, &cfg.peg_in_descriptor).expect("verifies");
    let v0 = WalletInput::new_v0(peg_in_proof.clone());
    let v1 = WalletInput::new_v1(&peg_in_proof);
    let claim = Transaction {
        inputs: vec![DynInput::from_typed(MODULE, v0.clone())],
        outputs: vec![],
        nonce: [7; 8],
        signatures: TransactionSignature::NaiveMultisig(vec![]),
    };
    let claim_v1 = Transaction {
        inputs: vec![DynInput::from_typed(MODULE, v1.clone())],
        outputs: vec![],
        nonce: [7; 8],
        signatures: TransactionSignature::NaiveMultisig(vec![]),
    };
    json!({
        "guardians": guardians,
        "config": enc(&cfg),
        "descriptor": cfg.peg_in_descriptor.to_string(),
        "tweak_key": hex::encode(tweak_key.serialize()),
        "tweak_secret": hex::encode(sk(9).secret_bytes()),
        "script_pubkey": hex::encode(script.as_bytes()),
        "address": address.to_string(),
        "transaction": enc(&tx),
        "txid": tx.compute_txid().to_string(),
        "block_hash": header.block_hash().to_string(),
        "txout_proof": enc(&proof),
        "txout_proof_bitcoin": hex::encode(bitcoin::consensus::serialize(&bitcoin::MerkleBlock {
            header,
            txn: proof.merkle_proof.clone(),
        })),
        "peg_in_proof": enc(&peg_in_proof),
        "input_v0": enc(&v0),
        "input_v1": enc(&v1),
        "claim_txid_v0": claim.tx_hash().to_string(),
        "claim_txid_v1": claim_v1.tx_hash().to_string(),
    })
}

fn main() {
    let fees = PegOutFees::new(2_000, 1_234);
    let addresses: BTreeMap<&str, Address> = [
        ("p2pkh", Address::p2pkh(bitcoin::PublicKey::new(pk(11)), Network::Regtest)),
        (
            "p2sh",
            Address::p2sh(&ScriptBuf::from_bytes(vec![0x51]), Network::Regtest).expect("p2sh"),
        ),
        (
            "p2wpkh",
            Address::p2wpkh(&bitcoin::CompressedPublicKey(pk(12)), Network::Regtest),
        ),
        ("p2wsh", Address::p2wsh(&ScriptBuf::from_bytes(vec![0x51]), Network::Regtest)),
        ("p2tr", Address::p2tr(SECP256K1, pk(13).x_only_public_key().0, None, Network::Regtest)),
    ]
    .into_iter()
    .collect();
    let peg_outs: BTreeMap<&str, Value> = addresses
        .iter()
        .map(|(kind, address)| {
            let output = WalletOutput::new_v0_peg_out(address.clone(), BtcAmount::from_sat(25_000), fees);
            let dyn_output = DynOutput::from_typed(MODULE, output.clone());
            (*kind, json!({"address": address.to_string(), "output": enc(&output), "module_output": enc(&dyn_output)}))
        })
        .collect();
    let btc_txid = Txid::from_byte_array(core::array::from_fn(|i| i as u8));
    let outcome = WalletOutputOutcome::new_v0(btc_txid);
    let out = json!({
        "module": MODULE,
        "peg_in": [peg_in(1), peg_in(4)],
        "peg_out_fees": {
            "json": serde_json::to_value(fees).expect("json"),
            "amount_sat": fees.amount().to_sat(),
            "encoding": enc(&fees),
        },
        "peg_outs": peg_outs,
        "outcome": {
            "btc_txid": btc_txid.to_string(),
            "encoding": enc(&outcome),
            "module_outcome": enc(&DynOutputOutcome::from_typed(MODULE, outcome)),
        },
        "network_regtest": enc(&NetworkLegacyEncodingWrapper(Network::Regtest)),
        "network_testnet": enc(&NetworkLegacyEncodingWrapper(Network::Testnet)),
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}
