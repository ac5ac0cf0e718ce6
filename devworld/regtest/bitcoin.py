"""Bitcoin encodings the simulated chain uses: keys, transactions, blocks.

Real formats, so tools that parse them are not surprised: transactions in Bitcoin's legacy
serialization with txid = reversed double SHA-256, and 80-byte block headers with a real merkle
root. Addresses are parsed and made by `gwcore.bitcoin_address`, the one place every room shares.
Nothing is signed: the simulated chain checks ownership by its wallet table instead of scripts.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import coincurve

COIN = 100_000_000  # sats per BTC
COINBASE_MATURITY = 100
HALVING_INTERVAL = 150  # regtest


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256d(data: bytes) -> bytes:
    return sha256(sha256(data))


def hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", sha256(data)).digest()


def new_key() -> coincurve.PrivateKey:
    return coincurve.PrivateKey()


def tagged_hash(tag: str, data: bytes) -> bytes:
    t = sha256(tag.encode())
    return sha256(t + t + data)


def bip86_output_key(key: coincurve.PrivateKey) -> bytes:
    """The x-only taproot output key of a key-path-only output (BIP 86): P + H_TapTweak(P)·G."""
    internal = coincurve.PublicKeyXOnly.from_secret(key.secret)
    internal.tweak_add(tagged_hash("TapTweak", internal.format()))
    return internal.format()


def varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


@dataclass(frozen=True)
class TxIn:
    prev_txid: str  # hex, display order; "" for coinbase
    vout: int
    script_sig: bytes = b""
    sequence: int = 0xFFFFFFFD


@dataclass(frozen=True)
class TxOut:
    amount_sat: int
    script: bytes


def serialize_tx(vin: list[TxIn], vout: list[TxOut], *, locktime: int = 0) -> bytes:
    out = [struct.pack("<i", 2), varint(len(vin))]
    for i in vin:
        prev = bytes.fromhex(i.prev_txid)[::-1] if i.prev_txid else b"\x00" * 32
        out += [prev, struct.pack("<I", i.vout), varint(len(i.script_sig)), i.script_sig]
        out.append(struct.pack("<I", i.sequence))
    out.append(varint(len(vout)))
    for o in vout:
        out += [struct.pack("<q", o.amount_sat), varint(len(o.script)), o.script]
    out.append(struct.pack("<I", locktime))
    return b"".join(out)


def txid_of(raw: bytes) -> str:
    return sha256d(raw)[::-1].hex()


def coinbase_input(height: int, extra: bytes = b"") -> TxIn:
    h = height.to_bytes((height.bit_length() + 8) // 8 or 1, "little")
    return TxIn("", 0xFFFFFFFF, bytes([len(h)]) + h + extra, 0xFFFFFFFF)


def merkle_root(txids: list[str]) -> bytes:
    layer = [bytes.fromhex(t)[::-1] for t in txids] or [b"\x00" * 32]
    while len(layer) > 1:
        if len(layer) % 2:
            layer.append(layer[-1])
        layer = [sha256d(layer[i] + layer[i + 1]) for i in range(0, len(layer), 2)]
    return layer[0]


def block_header(prev_hash: str, txids: list[str], time: int, nonce: int) -> bytes:
    prev = bytes.fromhex(prev_hash)[::-1] if prev_hash else b"\x00" * 32
    return (
        struct.pack("<i", 0x20000000)
        + prev
        + merkle_root(txids)
        + struct.pack("<III", time, 0x207FFFFF, nonce)
    )


def block_hash(header: bytes) -> str:
    return sha256d(header)[::-1].hex()


def block_subsidy(height: int) -> int:
    halvings = height // HALVING_INTERVAL
    return 0 if halvings >= 64 else (50 * COIN) >> halvings


def estimate_vsize(n_in: int, n_out: int) -> int:
    """vsize of a P2WPKH-in, P2WPKH-out transaction (10.5 + 68/input + 31/output vbytes)."""
    return (21 + 136 * n_in + 62 * n_out + 1) // 2
