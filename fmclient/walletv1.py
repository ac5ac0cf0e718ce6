"""wallet v1 ("wallet", fedimint-wallet-common-0.13.0): its client config, peg-in addresses,
the peg-in proof and claim inputs, peg-outs, their fees and outcome, and its errors. Wire types
only; the operations are in `onchain_v1.py`, the chain is read through `chain.py`.

`WalletClientConfig {peg_in_descriptor: Descriptor (its string, checksum included), network:
NetworkLegacyEncodingWrapper (the magic as a little-endian u32, BigSize), finality_delay: u32,
fee_consensus {peg_in_abs, peg_out_abs: Amount (msat)}, default_bitcoin_rpc {kind, url}}`.
The descriptor is `wpkh(K)` for one guardian, `wsh(sortedmulti(t, K1..Kn))` for more.

A peg-in address is the descriptor with every key K tweaked by a tweak key P (ours, random,
kept to sign the claim): K + HMAC-SHA256(key = K, msg = P)·G (tweakable.rs), sortedmulti then
sorting the tweaked keys. Any P works: the federation checks the proof's output against the
descriptor tweaked by the P the claim names, so nothing is ground.

The claim input (`WalletInput`, a plain enum: V0 = 0, V1 = 1, not the extensible V0 frame):
V0 `PegInProof {txout_proof: header ‖ PartialMerkleTree (bitcoind's merkleblock bytes),
transaction (bitcoin encoding, witness included), output_idx: u32, tweak_contract_key}`, which
the federation checks against the blocks it has synced; V1 `{outpoint, tweak_key, tx_out}`,
for an output the federation's own UTXO view holds (`utxo_confirmed`). Either is signed by P.
The peg-out: `WalletOutput::V0(PegOut {recipient: Address (network ‖ script), amount: sat,
fees: PegOutFees {fee_rate {sats_per_kvb}, total_weight}})`; the fee is ceil(weight/4) ·
rate / 1000 sat. Its outcome is the federation's bitcoin txid.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from coincurve import PrivateKey, PublicKey
from embit.descriptor.checksum import checksum as descriptor_checksum
from embit.transaction import Transaction as BtcTransaction

from gwcore.bitcoin_address import address_from_script, parse_address

from .encoding import DecodeError, Reader, Writer, encode
from .walletv2 import MAGIC, PegInAddress

NETWORK_MAGIC = {
    "mainnet": "f9beb4d9",
    "testnet": "0b110907",
    "signet": "0a03cf40",
    "regtest": "fabfb5da",
}
OP_CHECKMULTISIG = 0xAE
# (TransactionError variant 4 = an input, 5 = an output; the wallet's error variant)
WALLET_ERRORS = {
    (4, 0): "the federation has not synced the deposit's block yet; try again later",
    (4, 1): "the peg-in proof does not match the deposit",
    (4, 2): "the deposit was already claimed",
    (4, 3): "the federation does not take this claim version",
    (4, 4): "the federation does not know the deposit's output yet; try again later",
    (4, 5): "the tweak does not match the deposit's script",
    (4, 6): "the claim names another output than the deposit's",
    (5, 0): "the address is for another bitcoin network",
    (5, 1): "the fee rate is below the federation's; ask for a new quote",
    (5, 2): "the federation holds too little on chain for this withdrawal",
    (5, 3): "the amount is below the dust limit",
    (5, 5): "the federation's transaction changed; ask for a new quote",
    (5, 6): "the fee rate is below the minimum relay fee",
    (5, 7): "the federation does not take this withdrawal version",
}
# refusals after which the same deposit is claimed again later (nothing was spent)
RETRY_CLAIM = {(4, 0), (4, 4)}


class WalletV1Error(ValueError):
    """A malformed wallet v1 item (config, proof, outcome): one line saying what."""


# -- config and addresses ----------------------------------------------------------------------


@dataclass(frozen=True)
class PegInDescriptor:
    """`wpkh(K)` or `wsh(sortedmulti(threshold, K…))`, as the federation's descriptor string."""

    kind: str  # "wpkh" | "wsh"
    threshold: int
    keys: tuple[bytes, ...]  # compressed secp256k1 keys, in the descriptor's order

    @classmethod
    def parse(cls, text: str) -> PegInDescriptor:
        body, _, check = text.partition("#")
        if check and descriptor_checksum(body) != check:
            raise WalletV1Error(f"descriptor checksum {check} is wrong")
        if m := re.fullmatch(r"wpkh\(([0-9a-f]{66})\)", body):
            return cls("wpkh", 1, (_key(m.group(1)),))
        if m := re.fullmatch(r"wsh\(sortedmulti\((\d+),([0-9a-f,]+)\)\)", body):
            keys = tuple(_key(k) for k in m.group(2).split(","))
            threshold = int(m.group(1))
            if not 1 <= threshold <= len(keys) <= 20:
                raise WalletV1Error(f"sortedmulti({threshold}) of {len(keys)} keys")
            return cls("wsh", threshold, keys)
        raise WalletV1Error(f"unsupported peg-in descriptor {body[:40]}")

    def __str__(self) -> str:
        if self.kind == "wpkh":
            body = f"wpkh({self.keys[0].hex()})"
        else:
            body = f"wsh(sortedmulti({self.threshold},{','.join(k.hex() for k in self.keys)}))"
        return f"{body}#{descriptor_checksum(body)}"

    def tweaked_script(self, tweak_key: bytes) -> bytes:
        """The scriptPubKey of the descriptor with every key tweaked by `tweak_key`."""
        keys = [tweak_public_key(k, tweak_key) for k in self.keys]
        if self.kind == "wpkh":
            return b"\x00\x14" + _hash160(keys[0])
        script = (
            bytes([0x50 + self.threshold])
            + b"".join(b"\x21" + k for k in sorted(keys))
            + bytes([0x50 + len(keys), OP_CHECKMULTISIG])
        )
        return b"\x00\x20" + hashlib.sha256(script).digest()


def _key(hex_key: str) -> bytes:
    try:
        return PublicKey(bytes.fromhex(hex_key)).format(compressed=True)
    except ValueError:
        raise WalletV1Error(f"{hex_key[:16]}… is not a public key") from None


def _hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


def tweak_public_key(key: bytes, tweak_key: bytes) -> bytes:
    """K + HMAC-SHA256(key = K, msg = tweak_key)·G (tweakable.rs `Tweakable for PublicKey`)."""
    t = hmac.new(key, tweak_key, hashlib.sha256).digest()
    return PublicKey(key).add(t).format(compressed=True)


@dataclass(frozen=True)
class WalletV1Config:
    descriptor: PegInDescriptor
    network: str
    finality_delay: int
    peg_in_fee_msat: int  # fee_consensus.peg_in_abs: taken from every claim
    peg_out_fee_msat: int  # fee_consensus.peg_out_abs: taken from every peg-out
    rpc_kind: str  # the federation's suggested chain source for clients
    rpc_url: str

    @classmethod
    def from_bytes(cls, body: bytes) -> WalletV1Config:
        r = Reader(body, "wallet config")
        descriptor = PegInDescriptor.parse(r.str())
        network = _network(r)
        finality, peg_in, peg_out = r.varint(0xFFFFFFFF), r.varint(), r.varint()
        kind, url = r.str(), r.str()
        r.done()
        return cls(descriptor, network, finality, peg_in, peg_out, kind, url)

    def to_bytes(self) -> bytes:
        return encode(
            lambda w: (
                _put_network(w.str(str(self.descriptor)), self.network)
                .varint(self.finality_delay)
                .varint(self.peg_in_fee_msat)
                .varint(self.peg_out_fee_msat)
                .str(self.rpc_kind)
                .str(self.rpc_url)
            )
        )

    def peg_in_script(self, tweak_key: bytes) -> bytes:
        return self.descriptor.tweaked_script(tweak_key)

    def peg_in_address(self, tweak_key: bytes) -> str:
        address = address_from_script(self.peg_in_script(tweak_key), self.network)
        assert address is not None  # p2wpkh or p2wsh
        return address


def _network(r: Reader) -> str:
    magic = r.varint(0xFFFFFFFF).to_bytes(4, "little")
    if magic not in MAGIC:
        raise WalletV1Error(f"unknown bitcoin network magic {magic.hex()}")
    return MAGIC[magic]


def _put_network(w: Writer, network: str) -> Writer:
    return w.varint(int.from_bytes(bytes.fromhex(NETWORK_MAGIC[network]), "little"))


def new_peg_in_address(config: WalletV1Config, secret: bytes | None = None) -> PegInAddress:
    """A fresh peg-in address and the secret of its tweak key (which signs its claim): the
    given one (derived from the seed: fmclient.derive.wallet_v1_tweak_secret) or random."""
    secret = PrivateKey(os.urandom(32)).secret if secret is None else secret
    tweak_key = PrivateKey(secret).public_key.format(compressed=True)
    script = config.peg_in_script(tweak_key)
    return PegInAddress(config.peg_in_address(tweak_key), secret, script)


# -- the peg-in proof and the claim --------------------------------------------------------------


def compact_size(n: int) -> bytes:
    """Bitcoin's CompactSize (little-endian), as scripts and vectors in its encoding use."""
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


def _read_compact(r: Reader) -> int:
    first = r.u8()
    width = {0xFD: 2, 0xFE: 4, 0xFF: 8}.get(first)
    return first if width is None else int.from_bytes(r.raw(width), "little")


def _dsha(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


@dataclass(frozen=True)
class TxOutProof:
    """bitcoind's `gettxoutproof` bytes (a merkleblock): a block header and a partial merkle
    tree, checked here as the federation checks it (the tree's root is the header's)."""

    raw: bytes
    block_hash: str  # display order
    txids: tuple[str, ...]  # the transactions it proves (display order)

    @classmethod
    def parse(cls, raw: bytes) -> TxOutProof:
        r = Reader(raw, "txout proof")
        try:
            header = r.raw(80)
            total = int.from_bytes(r.raw(4), "little")
            hashes = [r.raw(32) for _ in range(min(_read_compact(r), r.remaining() // 32 + 1))]
            flag_bytes = r.raw(_read_compact(r))
            r.done()
        except DecodeError as exc:
            raise WalletV1Error(str(exc)) from None
        if not 0 < total <= 1 << 20 or len(hashes) > total:
            raise WalletV1Error("txout proof: a bad transaction count")
        bits = [(flag_bytes[i // 8] >> (i % 8)) & 1 for i in range(len(flag_bytes) * 8)]
        height = 0
        while (total + (1 << height) - 1) >> height > 1:
            height += 1
        matched: list[bytes] = []
        pos = {"bit": 0, "hash": 0}

        def width(h: int) -> int:
            return (total + (1 << h) - 1) >> h

        def walk(h: int, i: int) -> bytes:
            if pos["bit"] >= len(bits):
                raise WalletV1Error("txout proof: the tree runs out of flags")
            parent = bits[pos["bit"]]
            pos["bit"] += 1
            if h == 0 or not parent:
                if pos["hash"] >= len(hashes):
                    raise WalletV1Error("txout proof: the tree runs out of hashes")
                node = hashes[pos["hash"]]
                pos["hash"] += 1
                if h == 0 and parent:
                    matched.append(node)
                return node
            left = walk(h - 1, i * 2)
            right = walk(h - 1, i * 2 + 1) if i * 2 + 1 < width(h - 1) else left
            if i * 2 + 1 < width(h - 1) and right == left:
                raise WalletV1Error("txout proof: identical siblings")
            return _dsha(left + right)

        root = walk(height, 0)
        if pos["hash"] != len(hashes) or (pos["bit"] + 7) // 8 != len(flag_bytes):
            raise WalletV1Error("txout proof: hashes or flags left over")
        if root != header[36:68]:
            raise WalletV1Error("txout proof: the tree does not belong to the block header")
        return cls(raw, _dsha(header)[::-1].hex(), tuple(t[::-1].hex() for t in matched))


@dataclass(frozen=True)
class PegInProof:
    txout_proof: TxOutProof
    transaction: bytes  # bitcoin encoding, witness included
    output_idx: int
    tweak_key: bytes  # 33-byte public key

    @classmethod
    def make(
        cls, txout_proof: bytes, transaction: bytes, output_idx: int, tweak_key: bytes
    ) -> PegInProof:
        """Checked as `PegInProof::new` checks it: the proof holds the transaction, which has
        the output."""
        proof = TxOutProof.parse(txout_proof)
        made = cls(proof, transaction, output_idx, tweak_key)
        try:
            made.tx  # noqa: B018 (parses)
        except Exception as exc:  # embit raises several kinds on garbage
            raise WalletV1Error(f"not a bitcoin transaction: {exc}") from None
        if made.txid not in proof.txids:
            raise WalletV1Error("the txout proof does not hold the transaction")
        if not 0 <= output_idx < len(made.tx.vout):
            raise WalletV1Error(f"the transaction has no output {output_idx}")
        return made

    @property
    def tx(self) -> BtcTransaction:
        return BtcTransaction.parse(self.transaction)

    @property
    def txid(self) -> str:
        return self.tx.txid().hex()

    def tx_out(self) -> tuple[int, bytes]:
        """(value in sat, scriptPubKey) of the proven output."""
        out = self.tx.vout[self.output_idx]
        return int(out.value), out.script_pubkey.data

    def to_bytes(self) -> bytes:
        return encode(
            lambda w: (
                w.raw(self.txout_proof.raw)
                .raw(self.transaction)
                .varint(self.output_idx)
                .raw(self.tweak_key)
            )
        )


def claim_input_v0(proof: PegInProof) -> bytes:
    """`WalletInput::V0(PegInProof)`: checked against the blocks the federation synced."""
    return encode(lambda w: w.framed(0, proof.to_bytes()))


def claim_input_v1(proof: PegInProof) -> bytes:
    """`WalletInput::V1 {outpoint, tweak_key, tx_out}`: for an output the federation tracks."""
    value, script = proof.tx_out()
    body = (
        bytes.fromhex(proof.txid)[::-1]
        + proof.output_idx.to_bytes(4, "little")
        + proof.tweak_key
        + value.to_bytes(8, "little")
        + compact_size(len(script))
        + script
    )
    return encode(lambda w: w.framed(1, body))


# -- peg-out --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PegOutFees:
    sats_per_kvb: int
    total_weight: int

    @classmethod
    def from_json(cls, doc: object) -> PegOutFees:
        try:
            rate = doc["fee_rate"]["sats_per_kvb"]  # type: ignore[index]
            weight = doc["total_weight"]  # type: ignore[index]
        except (KeyError, TypeError):
            raise WalletV1Error(f"not peg-out fees: {str(doc)[:80]}") from None
        if not all(isinstance(v, int) and 0 <= v < 1 << 64 for v in (rate, weight)):
            raise WalletV1Error(f"not peg-out fees: {str(doc)[:80]}")
        return cls(rate, weight)

    @property
    def amount_sat(self) -> int:
        """`Feerate::calculate_fee`: ceil(weight / 4) vbytes at the rate per 1000 vbytes."""
        return -(-self.total_weight // 4) * self.sats_per_kvb // 1000


def address_network(address: str, network: str) -> str:
    """The network fedimint writes for an address (`get_network_for_address`): the first of
    mainnet, testnet, regtest it is valid for, so legacy (base58) regtest addresses say testnet."""
    if network == "mainnet":
        return "mainnet"
    if parse_address(address, network).kind in ("p2pkh", "p2sh") or network == "signet":
        return "testnet"
    return network


def peg_out_output(address: str, network: str, amount_sat: int, fees: PegOutFees) -> bytes:
    """The module item body of `WalletOutput::V0(WalletOutputV0::PegOut(..))`; AddressError
    for an address that is not a standard one of `network`."""
    script = parse_address(address, network).script
    body = encode(
        lambda w: (
            _put_network(w, address_network(address, network))
            .raw(compact_size(len(script)) + script)
            .varint(amount_sat)
            .varint(fees.sats_per_kvb)
            .varint(fees.total_weight)
        )
    )
    return encode(lambda w: w.framed(0, encode(lambda w2: w2.framed(0, body))))


def peg_out_outcome_txid(module_item: bytes) -> str:
    """The bitcoin txid (display order) in a `WalletOutputOutcome::V0` module item body."""
    r = Reader(module_item, "wallet output outcome")
    variant, body = r.framed()
    r.done()
    if variant != 0:
        raise WalletV1Error(f"wallet output outcome variant {variant}")
    txid = body.raw(32)
    body.done()
    return txid[::-1].hex()
