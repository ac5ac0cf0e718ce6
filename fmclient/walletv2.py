"""walletv2, fedimint 0.13's default on-chain module: its client config and peg-in addresses
(fedimint-walletv2-common/-client-0.13.0).

`WalletClientConfig {bitcoin_pks: BTreeMap<PeerId, PublicKey>, descriptor: WalletDescriptor
(Wsh), send_tx_vbytes, receive_tx_vbytes, feerate_base: u64, dust_limit: bitcoin::Amount (sat),
fee_consensus {base: Amount (msat), parts_per_million}, network: 4 magic bytes}`.

A peg-in address is `wsh(sortedmulti(threshold, pk_i + t·G))` with t = SHA-256 of a tweak key's
compressed public key. The federation watches only scripts that pass its filter:
SHA-256(enc(script_pubkey) ‖ SHA-256(enc(bitcoin_pks))) starts with two zero bytes, so an
address is ground over tweak keys (about 65,536 tries). Its tweak key later signs the claim.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from coincurve import PrivateKey, PublicKey
from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

from gwcore.bitcoin_address import p2wsh

from .encoding import Reader, Writer, encode

MAGIC = {
    bytes.fromhex("f9beb4d9"): "mainnet",
    bytes.fromhex("0b110907"): "testnet",
    bytes.fromhex("1c163f28"): "testnet",  # testnet4
    bytes.fromhex("0a03cf40"): "signet",
    bytes.fromhex("fabfb5da"): "regtest",
}
OP_CHECKMULTISIG = 0xAE
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass(frozen=True)
class WalletConfig:
    bitcoin_pks: dict[int, bytes]  # peer -> compressed secp256k1 key
    send_tx_vbytes: int
    receive_tx_vbytes: int
    feerate_base: int
    dust_limit_sat: int
    fee_base_msat: int
    fee_ppm: int
    network: str

    @classmethod
    def from_bytes(cls, body: bytes) -> WalletConfig:
        r = Reader(body, "walletv2 config")
        pks = r.map(lambda r2: r2.varint(0xFFFF), lambda r2: r2.raw(33))
        descriptor, rest = r.framed()
        if descriptor != 0 or rest.remaining():
            raise ValueError(f"walletv2 descriptor {descriptor} is not Wsh")
        send, receive, base = r.varint(), r.varint(), r.varint()
        dust, fee_base, ppm = r.varint(), r.varint(), r.varint()
        magic = r.raw(4)
        r.done()
        if magic not in MAGIC:
            raise ValueError(f"unknown bitcoin network magic {magic.hex()}")
        return cls(pks, send, receive, base, dust, fee_base, ppm, MAGIC[magic])

    @property
    def threshold(self) -> int:
        n = len(self.bitcoin_pks)
        return n - (n - 1) // 3

    @property
    def pks_hash(self) -> bytes:
        return hashlib.sha256(
            encode(lambda w: w.map(self.bitcoin_pks, Writer.varint, Writer.raw))
        ).digest()


def witness_script(config: WalletConfig, tweak_pubkey: bytes) -> bytes:
    """sortedmulti(threshold, every guardian's key tweaked by SHA-256(tweak_pubkey))."""
    t = hashlib.sha256(tweak_pubkey).digest()
    keys = sorted(
        PublicKey(pk).add(t).format(compressed=True) for pk in config.bitcoin_pks.values()
    )
    return (
        bytes([0x50 + config.threshold])
        + b"".join(bytes([33]) + k for k in keys)
        + bytes([0x50 + len(keys), OP_CHECKMULTISIG])
    )


def script_pubkey(script: bytes) -> bytes:
    return b"\x00\x20" + hashlib.sha256(script).digest()


def is_potential_receive(spk: bytes, pks_hash: bytes) -> bool:
    """The federation's filter: SHA-256(CompactSize(len) ‖ spk ‖ pks_hash)[:2] == 0."""
    return hashlib.sha256(bytes([len(spk)]) + spk + pks_hash).digest()[:2] == b"\x00\x00"


@dataclass(frozen=True)
class PegInAddress:
    address: str
    tweak_secret: bytes  # signs the claim of what is paid to the address
    script_pubkey: bytes
    index: int | None = None  # the derivation index of a seeded tweak key


class _Secp:
    """The libsecp256k1 calls an address search makes per index, straight through coincurve's
    bindings: building coincurve's key objects costs as much again as the multiplications
    (about 100 µs an index through them, half that here; a search is ~65,536 indexes). Its
    results are checked against `witness_script` and coincurve's keys by the tests."""

    def __init__(self, guardian_keys: list[bytes]) -> None:
        self.ctx = GLOBAL_CONTEXT.ctx
        self.guardians = []
        for key in guardian_keys:
            point = ffi.new("secp256k1_pubkey *")
            if not lib.secp256k1_ec_pubkey_parse(self.ctx, point, key, len(key)):
                raise ValueError("a guardian's bitcoin key is not a valid public key")
            self.guardians.append(point)
        self.point = ffi.new("secp256k1_pubkey *")
        self.tweak = ffi.new("secp256k1_pubkey *")
        self.sum = ffi.new("secp256k1_pubkey *")
        self.pair = ffi.new("secp256k1_pubkey *[2]")
        self.out = ffi.new("unsigned char[33]")
        self.out_len = ffi.new("size_t *")

    def _serialize(self, point: object) -> bytes:
        self.out_len[0] = 33
        lib.secp256k1_ec_pubkey_serialize(
            self.ctx, self.out, self.out_len, point, lib.SECP256K1_EC_COMPRESSED
        )
        return bytes(ffi.buffer(self.out, 33))

    def public_key(self, secret: bytes) -> bytes:
        """secret·G, compressed; ValueError for a secret that is no valid key."""
        if not lib.secp256k1_ec_pubkey_create(self.ctx, self.point, secret):
            raise ValueError("not a valid secret key")
        return self._serialize(self.point)

    def walk(self, secret: bytes) -> Callable[[], bytes]:
        """Public keys secret·G, (secret+1)·G, …, compressed, one a call: each the last plus
        G (a point addition, not a multiplication)."""
        points = [ffi.new("secp256k1_pubkey *"), ffi.new("secp256k1_pubkey *")]
        generator = ffi.new("secp256k1_pubkey *")
        if not lib.secp256k1_ec_pubkey_create(self.ctx, points[0], secret):
            raise ValueError("not a valid secret key")
        lib.secp256k1_ec_pubkey_create(self.ctx, generator, (1).to_bytes(32, "big"))
        pair = ffi.new("secp256k1_pubkey *[2]")
        pair[1] = generator
        at = [0]

        # `generator` bound here: `pair` holds raw pointers, and cffi frees what nothing refers to
        def step(generator: object = generator) -> bytes:
            point = points[at[0]]
            key = self._serialize(point)
            pair[0] = point  # combine zeroes its output first: the sum goes to the other one
            at[0] ^= 1
            if not lib.secp256k1_ec_pubkey_combine(self.ctx, points[at[0]], pair, 2):
                raise ValueError("the walk reached the point at infinity")
            return key

        return step

    def tweaked(self, tweak: bytes) -> list[bytes]:
        """Every guardian's key plus tweak·G, compressed, sorted."""
        if not lib.secp256k1_ec_pubkey_create(self.ctx, self.tweak, tweak):
            raise ValueError("the tweak is not a valid scalar")
        self.pair[1] = self.tweak
        keys = []
        for guardian in self.guardians:
            self.pair[0] = guardian
            if not lib.secp256k1_ec_pubkey_combine(self.ctx, self.sum, self.pair, 2):
                raise ValueError("a tweaked key is the point at infinity")
            keys.append(self._serialize(self.sum))
        return sorted(keys)


def _multisig(config: WalletConfig) -> tuple[_Secp, Callable[[bytes], bytes]]:
    """tweak public key -> the peg-in script (the guardians' keys tweaked, sorted multisig), as
    `witness_script`, with the secp256k1 calls it makes (the search's own, not thread-safe)."""
    secp = _Secp(list(config.bitcoin_pks.values()))
    m, n = config.threshold, len(secp.guardians)
    head, tail = bytes([0x50 + m]), bytes([0x50 + n, OP_CHECKMULTISIG])
    sha256 = hashlib.sha256

    def script(tweak_pubkey: bytes) -> bytes:
        keys = secp.tweaked(sha256(tweak_pubkey).digest())
        return head + b"".join(b"\x21" + k for k in keys) + tail

    return secp, script


class GrindCancelled(Exception):
    """An address search stopped because its owner is closing."""


CHECK_EVERY = 1024  # tries between looks at `cancelled`


def derived_peg_in_address(
    config: WalletConfig,
    tweak_key: Callable[[int], bytes],
    start: int,
    cancelled: Callable[[], bool] = lambda: False,
    reached: Callable[[int], None] = lambda index: None,
) -> PegInAddress:
    """The first seeded address at index `start` or after that the federation will see, as
    the walletv2 client finds its next valid index (`next_valid_index`, fedimint-walletv2-client
    lib.rs:694-716: the tweak key of each index, `tweak_key(index)`, until the filter passes;
    about 65,536 indexes, ~100 µs each here). `reached(index)` is told now and then that no
    index below `index` is valid (a search stopped midway can go on from there)."""
    (secp, script_of), index = _multisig(config), start
    pks_hash = config.pks_hash
    while True:
        if index % CHECK_EVERY == 0:
            if cancelled():
                raise GrindCancelled("the wallet is closing")
            reached(index)
        secret = tweak_key(index)
        script = script_of(secp.public_key(secret))
        spk = script_pubkey(script)
        if is_potential_receive(spk, pks_hash):
            return PegInAddress(p2wsh(script, config.network), secret, spk, index)
        index += 1


def new_peg_in_address(
    config: WalletConfig,
    max_tries: int = 5_000_000,
    cancelled: Callable[[], bool] = lambda: False,
    start: bytes | None = None,
) -> PegInAddress:
    """A fresh address the federation will see, with a random tweak key (a federation joined
    before the gateway had a seed): tweak keys ground until the filter passes
    (about 65,536 tries). The search starts at a random key (`start`: a given one, for tests)
    and steps by one (k+1 has the public key P+G: a point addition instead of a
    multiplication); only the key found is ever shown, so addresses are not linkable by their
    keys."""
    pks_hash = config.pks_hash
    secp, script_of = _multisig(config)
    start = PrivateKey(start).secret if start is not None else PrivateKey().secret
    next_key = secp.walk(start)
    for step in range(max_tries):
        if step % CHECK_EVERY == 0 and cancelled():
            raise GrindCancelled("the wallet is closing")
        tweak_pubkey = next_key()
        script = script_of(tweak_pubkey)
        spk = script_pubkey(script)
        if is_potential_receive(spk, pks_hash):
            secret = (int.from_bytes(start, "big") + step) % SECP256K1_ORDER
            key = PrivateKey(secret.to_bytes(32, "big"))
            assert key.public_key.format(compressed=True) == tweak_pubkey
            return PegInAddress(p2wsh(script, config.network), key.secret, spk)
    raise RuntimeError("no address passed the federation's filter")  # 2^-76 for the default
