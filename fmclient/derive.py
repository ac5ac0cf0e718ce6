"""Deterministic secrets exactly as fedimint 0.13 derives them, so the gateway's 12 words (or
gatewayd's) give the same per-federation, per-module keys fedimint's own client would.

Owns: `DerivableSecret` (fedimint-derive-secret: HKDF-SHA512 with tagged 16-byte infos), the
BIP-39 root secret (fedimint-bip39's `Bip39RootSecretStrategy`), the client root secret gatewayd
gives each federation (`RootSecret::StandardDoubleDerive` → `get_default_client_secret`, then the
client builder's second `federation_key`), and each module instance's root secret
(`derive_module_secret`). The paths, as the crates write them (fedimint 0.13.0):

    root       = HKDF(ikm=bip39_seed(words, ""), salt=b"Fedimint Client Salt")
    client     = root/0/federation_key(fid)/0/0       (get_default_client_secret)
    federation = client.federation_key(fid)           (ClientBuilder::federation_root_secret)
    module(i)  = federation/0/i                       (derive_module_secret)

Never: invent a path of our own below `root` (a recovery by fedimint's client would not find it),
or hold secrets anywhere but in memory (callers persist what they must).
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Callable

from embit import bip39

# CPython's own SHA-256 (HACL* from 3.12, `_sha2`; before, `_sha256`), which hashlib uses when
# OpenSSL lacks one: on 48-byte inputs about 15 % faster a call than OpenSSL's through hashlib,
# whose every call sets up an EVP context. The same function (tests/fmclient/test_derive.py).
try:
    from _sha2 import sha256 as _GRIND_SHA256
except ImportError:  # CPython <= 3.11, or another Python
    try:
        from _sha256 import sha256 as _GRIND_SHA256
    except ImportError:
        _GRIND_SHA256 = hashlib.sha256

CHILD_TAG = b"childkey"
SECP256K1_TAG = b"secp256k"
BLS12_381_TAG = b"bls12381"
CHACHA20_POLY1305_TAG = b"c20p1305"
RAW_BYTES_TAG = b"rawbytes"
FEDIMINT_CLIENT_SALT = b"Fedimint Client Salt"

# derive_module_secret: federation/TYPE_MODULE/module_instance_id; TYPE_BACKUP for backups
TYPE_MODULE = 0
TYPE_BACKUP = 1

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
BLS12_381_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001

_HASH_LEN = 64  # SHA-512


def _hmac512(key: bytes, *parts: bytes) -> bytes:
    return hmac.digest(key, b"".join(parts), "sha512")  # one call into OpenSSL


def tagged_info(tag: bytes, child_id: int) -> bytes:
    """fedimint-derive-secret's `tagged_derive`: an 8-byte tag and the id as big-endian u64."""
    if len(tag) != 8:
        raise ValueError("a derivation tag is 8 bytes")
    return tag + child_id.to_bytes(8, "big")


class DerivableSecret:
    """A node of fedimint's secret tree: an HKDF-SHA512 pseudo-random key and its level.

    `child_key`, `federation_key` and `tweak` make new nodes; `to_*` read key material from a
    node. Levels count `child_key`/`tweak` steps from the root; `federation_key` resets to 0.
    """

    __slots__ = ("level", "prk")

    def __init__(self, prk: bytes, level: int = 0) -> None:
        if len(prk) != _HASH_LEN:
            raise ValueError("a DerivableSecret's PRK is 64 bytes")
        self.prk = bytes(prk)
        self.level = level

    def __repr__(self) -> str:  # never the key itself
        return f"DerivableSecret(level={self.level})"

    @classmethod
    def new_root(cls, root_key: bytes, salt: bytes) -> DerivableSecret:
        """HKDF-extract: `HMAC-SHA512(salt, root_key)`, level 0."""
        return cls(_hmac512(salt, root_key), 0)

    def derive(self, info: bytes, length: int) -> bytes:
        """HKDF-expand `length` bytes for `info` (RFC 5869, as fedimint-hkdf)."""
        out = b""
        block = b""
        counter = 1
        while len(out) < length:
            block = _hmac512(self.prk, block, info, bytes([counter]))
            out += block
            counter += 1
        return out[:length]

    def _derive_hmac(self, info: bytes) -> bytes:
        return _hmac512(self.prk, info, b"\x01")

    def child_key(self, child_id: int) -> DerivableSecret:
        """The child `child_id` (a u64), one level down."""
        return DerivableSecret(self._derive_hmac(tagged_info(CHILD_TAG, child_id)), self.level + 1)

    def tweak(self, tweak: bytes) -> DerivableSecret:
        """A child keyed by arbitrary bytes (the mintv2 client's note tweak), one level down."""
        return DerivableSecret(self._derive_hmac(bytes(tweak)), self.level + 1)

    def federation_key(self, federation_id: bytes) -> DerivableSecret:
        """The child for a federation id (32 bytes; its first 8 are the tag), level reset to 0."""
        if len(federation_id) != 32:
            raise ValueError("a federation id is 32 bytes")
        return DerivableSecret(self._derive_hmac(tagged_info(federation_id[:8], 0)), 0)

    def to_secp_secret(self) -> bytes:
        """The 32-byte secp256k1 secret key of `to_secp_key` (first valid try of 0, 1, …)."""
        key_try = 0
        while True:
            secret = self.derive(tagged_info(SECP256K1_TAG, key_try), 32)
            if 0 < int.from_bytes(secret, "big") < SECP256K1_ORDER:
                return secret
            key_try += 1

    def to_bls12_381_scalar(self) -> int:
        """`to_bls12_381_key`: 64 bytes read little-endian, reduced modulo the group order."""
        wide = self.derive(tagged_info(BLS12_381_TAG, 0), 64)
        return int.from_bytes(wide, "little") % BLS12_381_ORDER

    def to_chacha20_poly1305_key(self) -> bytes:
        """`to_chacha20_poly1305_key_raw`: a 32-byte symmetric key."""
        return self.derive(tagged_info(CHACHA20_POLY1305_TAG, 0), 32)

    def to_random_bytes(self, length: int) -> bytes:
        """`to_random_bytes::<length>`."""
        return self.derive(tagged_info(RAW_BYTES_TAG, 0), length)

    def derive_module_secret(self, module_instance_id: int) -> DerivableSecret:
        """The module instance's root secret (`DeriveableSecretClientExt::derive_module_secret`):
        `self/0/module_instance_id`; `self` must be a federation root secret (level 0)."""
        if self.level != 0:
            raise ValueError("module secrets hang off a level-0 federation root secret")
        return self.child_key(TYPE_MODULE).child_key(module_instance_id)


def normalize_words(words: str) -> str:
    """The words as BIP-39 reads them: NFKD, lower case, single spaces."""
    return " ".join(unicodedata.normalize("NFKD", words).lower().split())


def check_words(words: str, count: int = 12) -> str:
    """The normalized words if they are `count` English BIP-39 words with a valid checksum;
    ValueError (one line, naming no word of the secret) otherwise."""
    norm = normalize_words(words)
    n = len(norm.split())
    if n != count:
        raise ValueError(f"a seed is {count} BIP-39 words, got {n}")
    unknown = sum(1 for w in norm.split() if w not in bip39.WORDLIST)
    if unknown:
        raise ValueError(f"{unknown} of the words are not in the English BIP-39 word list")
    if not bip39.mnemonic_is_valid(norm):
        raise ValueError("the words' BIP-39 checksum does not match (a word is wrong or misplaced)")
    return norm


def bip39_root_secret(words: str) -> DerivableSecret:
    """fedimint-bip39's `Bip39RootSecretStrategy::to_root_secret`: the BIP-39 seed of the words
    with the empty passphrase, HKDF-extracted with the salt "Fedimint Client Salt"."""
    seed = bip39.mnemonic_to_seed(check_words(words))
    return DerivableSecret.new_root(seed, FEDIMINT_CLIENT_SALT)


def default_client_secret(root: DerivableSecret, federation_id: bytes) -> DerivableSecret:
    """fedimint-client-module's `get_default_client_secret`: root/0/federation_key(fid)/0/0 (the
    secret `RootSecret::StandardDoubleDerive` hands the client builder)."""
    return root.child_key(0).federation_key(federation_id).child_key(0).child_key(0)


def federation_root_secret(root: DerivableSecret, federation_id: bytes) -> DerivableSecret:
    """The client's federation root secret for a BIP-39 root, as gatewayd 0.13 builds each
    federation's client (`RootSecret::StandardDoubleDerive`): `default_client_secret`, then the
    client builder's own `federation_key(fid)`. Module secrets hang off this (level 0)."""
    return default_client_secret(root, federation_id).federation_key(federation_id)


def module_root_secret(
    root: DerivableSecret, federation_id: bytes, module_instance_id: int
) -> DerivableSecret:
    """The root secret fedimint's client gives module instance `module_instance_id`."""
    return federation_root_secret(root, federation_id).derive_module_secret(module_instance_id)


# --- what the client modules derive from their module root secret (fedimint 0.13.0) -----------


def lnv2_gateway_secret(module: DerivableSecret) -> bytes:
    """The LNv2 gateway module's keypair (fedimint-gwv2-client lib.rs:225-228): the module
    secret itself, as a secp key. Its public key is the gateway's `module_public_key`, the
    claim key of outgoing contracts (it signs forfeits) and the refund key of incoming ones."""
    return module.to_secp_secret()


def lnv1_redeem_secret(module: DerivableSecret) -> bytes:
    """The LNv1 gateway module's redeem key (fedimint-gw-client lib.rs:190-193): module/0."""
    return module.child_key(0).to_secp_secret()


def mint_v1_note_secret(module: DerivableSecret, amount_msat: int, index: int) -> DerivableSecret:
    """A mint v1 note's secret (fedimint-mint-client lib.rs:1955-1966,
    `new_note_secret_static`): module/0/index/amount_msat; the index is per amount."""
    if module.level != 2:
        raise ValueError("mint v1 note secrets hang off a module root secret (level 2)")
    return module.child_key(0).child_key(index).child_key(amount_msat)


def mint_v1_note_keys(note_secret: DerivableSecret) -> tuple[bytes, int]:
    """(spend secret, blinding scalar) of a mint v1 note (fedimint-mint-client output.rs:941-943):
    the spend key is note/0 as a secp key (its public key is the nonce), the blinding key
    note/1 as a BLS12-381 scalar."""
    return note_secret.child_key(0).to_secp_secret(), note_secret.child_key(1).to_bls12_381_scalar()


def mintv2_tweak_filter(module: DerivableSecret) -> bytes:
    """The mintv2 client's tweak filter (fedimint-mintv2-client issuance.rs:50-52)."""
    return module.to_random_bytes(32)


def mintv2_tweak_passes(tweak: bytes, tweak_filter: bytes) -> bool:
    """`check_tweak` (issuance.rs:66-73): SHA-256(tweak ‖ filter) starts with two zero bytes.
    Only such tweaks are looked at by the client's recovery."""
    return hashlib.sha256(tweak + tweak_filter).digest()[:2] == b"\x00\x00"


def mintv2_grind_tweak(tweak_filter: bytes, random: Callable[[int], bytes]) -> bytes:
    """A random 16-byte tweak passing the filter (`grind_tweak`, issuance.rs:54-64): about
    65,536 tries (~40 ms here). The hot loop of a seeded gateway's note issuance (most of its
    CPU per payment), so a try is one call of CPython's built-in SHA-256 (`_GRIND_SHA256`) and
    one comparison: a digest below 00 01 is one that starts with two zero bytes."""
    sha, below = _GRIND_SHA256, b"\x00\x01"
    while True:
        block = random(16 * 4096)
        for i in range(0, len(block), 16):
            if sha(block[i : i + 16] + tweak_filter).digest() < below:
                return block[i : i + 16]


def mintv2_note_keys(module: DerivableSecret, denomination: int, tweak: bytes) -> tuple[bytes, int]:
    """(spend secret, blinding scalar) of a mintv2 note (issuance.rs:85-106):
    module/denomination, tweaked by the 16-byte tweak; its secp key and BLS scalar."""
    secret = module.child_key(denomination).tweak(tweak)
    return secret.to_secp_secret(), secret.to_bls12_381_scalar()


def wallet_v1_tweak_secret(module: DerivableSecret, index: int) -> bytes:
    """Wallet v1's peg-in tweak key number `index` (fedimint-wallet-client lib.rs:575-585):
    module/0/index; its x-only public key is the peg-in's operation id."""
    return module.child_key(0).child_key(index).to_secp_secret()


def wallet_v2_tweak_secret(module: DerivableSecret, index: int) -> bytes:
    """Walletv2's address tweak key number `index` (fedimint-walletv2-client lib.rs:683-687):
    module/index (only indices whose address passes the federation's filter are used)."""
    return module.child_key(index).to_secp_secret()


class FederationSecrets:
    """One federation's secrets from the gateway's seed: its client's federation root secret
    and each module instance's root secret, and the keys the modules derive from them."""

    def __init__(self, federation_root: DerivableSecret) -> None:
        self.federation_root = federation_root

    def __repr__(self) -> str:
        return "FederationSecrets(…)"

    @classmethod
    def from_root(cls, root: DerivableSecret, federation_id: str | bytes) -> FederationSecrets:
        fid = bytes.fromhex(federation_id) if isinstance(federation_id, str) else federation_id
        return cls(federation_root_secret(root, fid))

    def module(self, module_instance_id: int) -> DerivableSecret:
        return self.federation_root.derive_module_secret(module_instance_id)
