"""Cryptography of the development federation, all on secp256k1 (coincurve = libsecp256k1).

* Blind signatures for e-cash: blind Diffie-Hellman key exchange (BDHKE, as Cashu and Fedimint's
  early mint), with a DLEQ proof that the mint signed with the key it publishes:
      user:  Y = hash_to_curve(nonce), B_ = Y + rG           (r: blinding factor)
      mint:  C_ = k B_, proof (e, s) that log_G(K) == log_B_(C_)
      user:  C = C_ - rK = kY                                 (the note's signature)
      spend: the mint checks C == k * hash_to_curve(nonce)
* Schnorr signatures (BIP-340) over transaction ids for key-guarded inputs.
* ECIES for offers' preimages: ephemeral ECDH + ChaCha20-Poly1305 (`cryptography`).
"""

from __future__ import annotations

import hashlib
import os

import coincurve
from coincurve import PrivateKey, PublicKey, PublicKeyXOnly
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
H2C_DOMAIN = b"fmgw-dev-federation/hash_to_curve/v1"
DLEQ_DOMAIN = b"fmgw-dev-federation/dleq/v1"
ECIES_DOMAIN = b"fmgw-dev-federation/ecies/v1"


class CryptoError(ValueError):
    """A key, point, signature or ciphertext that does not check out."""


def point(data: bytes | str) -> PublicKey:
    try:
        return PublicKey(bytes.fromhex(data) if isinstance(data, str) else data)
    except (ValueError, TypeError) as exc:
        raise CryptoError("not a valid secp256k1 point") from exc


def hash_to_curve(message: bytes) -> PublicKey:
    """A point nobody knows the discrete log of (try-and-increment on SHA-256)."""
    digest = hashlib.sha256(H2C_DOMAIN + message).digest()
    for counter in range(1 << 16):
        candidate = hashlib.sha256(digest + counter.to_bytes(4, "little")).digest()
        try:
            return PublicKey(b"\x02" + candidate)
        except ValueError:
            continue
    raise CryptoError("hash_to_curve found no point")  # pragma: no cover - probability 2^-65536


def _neg_mul(p: PublicKey, scalar: int) -> PublicKey:
    """-(scalar * p)"""
    return p.multiply(((N - scalar) % N).to_bytes(32, "big"))


def _scalar(data: bytes) -> int:
    return int.from_bytes(data, "big") % N


def _challenge(*points: PublicKey) -> int:
    h = hashlib.sha256(DLEQ_DOMAIN)
    for p in points:
        h.update(p.format())
    return _scalar(h.digest())


def blind(nonce: bytes, r: PrivateKey | None = None) -> tuple[PublicKey, PrivateKey]:
    """(B_, r): the blinded message for `nonce` and its blinding factor."""
    r = r or PrivateKey()
    return PublicKey.combine_keys([hash_to_curve(nonce), r.public_key]), r


def sign_blinded(k: PrivateKey, blinded: PublicKey) -> tuple[PublicKey, int, int]:
    """The mint's blind signature C_ = k B_ and a DLEQ proof (e, s)."""
    c_ = blinded.multiply(k.secret)
    p = PrivateKey()
    r1, r2 = p.public_key, blinded.multiply(p.secret)
    e = _challenge(r1, r2, k.public_key, c_)
    s = (p.to_int() + e * k.to_int()) % N
    return c_, e, s


def verify_dleq(blinded: PublicKey, c_: PublicKey, e: int, s: int, mint_key: PublicKey) -> bool:
    """True iff (e, s) proves C_ was made with the secret of `mint_key`."""
    if not (0 < s < N and 0 <= e < N):
        return False
    try:
        r1 = PublicKey.combine_keys(
            [PublicKey.from_secret(s.to_bytes(32, "big")), _neg_mul(mint_key, e)]
        )
        r2 = PublicKey.combine_keys([blinded.multiply(s.to_bytes(32, "big")), _neg_mul(c_, e)])
    except ValueError:  # a sum at infinity: not a valid proof
        return False
    return _challenge(r1, r2, mint_key, c_) == e


def unblind(c_: PublicKey, r: PrivateKey, mint_key: PublicKey) -> PublicKey:
    """C = C_ - rK."""
    return PublicKey.combine_keys([c_, _neg_mul(mint_key, r.to_int())])


def verify_note(k: PrivateKey, nonce: bytes, signature: PublicKey) -> bool:
    """The mint's check when a note is spent: C == k * hash_to_curve(nonce)."""
    return hash_to_curve(nonce).multiply(k.secret).format() == signature.format()


# --- Schnorr (BIP-340) -----------------------------------------------------------------------
def xonly(key: PrivateKey) -> str:
    return key.public_key_xonly.format().hex()


def schnorr_sign(key: PrivateKey, message32: bytes) -> str:
    return key.sign_schnorr(message32, os.urandom(32)).hex()


def schnorr_verify(xonly_hex: str, message32: bytes, signature_hex: str) -> bool:
    try:
        pub = PublicKeyXOnly(bytes.fromhex(xonly_hex))
        return pub.verify(bytes.fromhex(signature_hex), message32)
    except (ValueError, TypeError):
        return False


def valid_xonly(xonly_hex: object) -> bool:
    try:
        PublicKeyXOnly(bytes.fromhex(str(xonly_hex)))
        return len(str(xonly_hex)) == 64
    except (ValueError, TypeError):
        return False


# --- ECIES ------------------------------------------------------------------------------------
def ecies_encrypt(recipient: PublicKey, plaintext: bytes) -> bytes:
    eph = PrivateKey()
    key = hashlib.sha256(ECIES_DOMAIN + eph.ecdh(recipient.format())).digest()
    sealed = ChaCha20Poly1305(key).encrypt(b"\x00" * 12, plaintext, eph.public_key.format())
    return eph.public_key.format() + sealed


def ecies_decrypt(key: PrivateKey, ciphertext: bytes) -> bytes:
    if len(ciphertext) < 33 + 16:
        raise CryptoError("ciphertext too short")
    eph = point(ciphertext[:33])
    shared = hashlib.sha256(ECIES_DOMAIN + key.ecdh(eph.format())).digest()
    try:
        return ChaCha20Poly1305(shared).decrypt(b"\x00" * 12, ciphertext[33:], eph.format())
    except Exception as exc:  # InvalidTag
        raise CryptoError("ciphertext does not decrypt") from exc


def new_key() -> PrivateKey:
    return coincurve.PrivateKey()
