"""Threshold blind signatures on BLS12-381 as fedimint-tbs 0.13.0 makes them (mintv2 e-cash).

Messages and signatures are G1 points, keys G2 points (48 / 96-byte compressed, ZCash format),
scalars 32 bytes little-endian (Python ints here). Group arithmetic, subgroup checks and pairings
are blst's (pyblst, compiled: chosen over py-arkworks-bls12381 by bench/tbs.py, four times faster
at pairings); only the hash to G1 is ours, because fedimint's is its own and not RFC 9380:
`seed = SHA-256("FEDIMINT_TBS_BLS12_381_MESSAGE" ‖ data)` (mintv2) or
`SHA3-256("TBS_BLS12-381_" ‖ data)` (mint v1), then zkcrypto's `G1Projective::random` over the
ChaCha20 keystream of that seed: x from 96 bytes (d0 + d1·2^384 mod p, d0 and d1 the big-endian
halves in that order), a sign bit from the next
32-bit word, y = sqrt(x³ + 4) if it exists, then the cofactor cleared (times h_eff).
Checked against vectors printed by the real crates (tests/fmclient/data/tbs_vectors.json).

Blind: B = M·r. A guardian's share: B·sk_i, checked by e(B, pk_i) = e(share, g2). Combine:
Lagrange at 0 over x_i = peer id + 1 (one share passes through). Unblind: S·r⁻¹. Verify:
e(M, PK) = e(sig, g2).

The hash to G1 (~0.8 ms of CPU) is kept per exact input (the last `MESSAGE_CACHE_SIZE`): a note
we issue is hashed when its nonce is blinded and again when the federation's signature on it is
verified. Points are values (nothing here or in blst's bindings changes one in place, `uncompress`
of a new point aside), so the one point is handed to every caller.
"""

from __future__ import annotations

import functools
import hashlib
import secrets

import gmpy2
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from gmpy2 import mpz
from pyblst import BlstP1Element, BlstP2Element, final_verify, miller_loop

P = 0x1A0111EA397FE69A4B1BA7B6434BACD764774B84F38512BF6730D2A0F6B0F6241EABFFFEB153FFFFB9FEFFFFFFFFAAAB
R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
H_EFF_G1 = 0xD201000000010001
SHA256_DOMAIN = b"FEDIMINT_TBS_BLS12_381_MESSAGE"
SHA3_DOMAIN = b"TBS_BLS12-381_"
G2_GENERATOR = bytes.fromhex(
    "93e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d05"
    "5d042b7e024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbef"
    "d48056c8c121bdb8"
)
G1Point = BlstP1Element
G2Point = BlstP2Element
MESSAGE_CACHE_SIZE = 1024


class TbsError(ValueError):
    """A point or scalar that is not valid (not on the curve, not in the subgroup, zero)."""


class _ChaCha:
    """rand_chacha's ChaCha20Rng from a 32-byte seed: the ChaCha20 keystream (counter 0, nonce
    0) read as little-endian 32-bit words, `fill_bytes(n)` taking ceil(n/4) words."""

    def __init__(self, seed: bytes) -> None:
        cipher = Cipher(algorithms.ChaCha20(seed, b"\x00" * 16), mode=None)
        self._enc = cipher.encryptor()
        self._buf = b""

    def _words(self, n: int) -> bytes:
        need = 4 * n
        while len(self._buf) < need:
            self._buf += self._enc.update(b"\x00" * 64)
        out, self._buf = self._buf[:need], self._buf[need:]
        return out

    def fill_bytes(self, n: int) -> bytes:
        return self._words((n + 3) // 4)[:n]

    def next_u32(self) -> int:
        return int.from_bytes(self._words(1), "little")


# -- the hash's own arithmetic: Jacobian coordinates on y² = x³ + 4 over Fp (the point is not in
# -- the subgroup before its cofactor is cleared, so no library that checks points takes it)


# gmpy2's integers: the same arithmetic as Python's, an order of magnitude faster on 381-bit
# numbers (a message hash was ~1 ms in Python's, most of it `pow` and the cofactor's doublings)
_P = mpz(P)
_SQRT_EXP = mpz((P + 1) // 4)
_H_EFF_BITS = bin(H_EFF_G1)[2:]


def _double(pt: tuple[mpz, mpz, mpz]) -> tuple[mpz, mpz, mpz]:
    x, y, z = pt
    if y == 0:
        return (mpz(1), mpz(1), mpz(0))
    a, b = x * x % _P, y * y % _P
    c = b * b % _P
    d = 2 * ((x + b) ** 2 - a - c) % _P
    e = 3 * a % _P
    x3 = (e * e - 2 * d) % _P
    return (x3, (e * (d - x3) - 8 * c) % _P, 2 * y * z % _P)


def _add_affine(pt: tuple[mpz, mpz, mpz], qx: mpz, qy: mpz) -> tuple[mpz, mpz, mpz]:
    x1, y1, z1 = pt
    if z1 == 0:
        return (qx, qy, mpz(1))
    z1z1 = z1 * z1 % _P
    u2, s2 = qx * z1z1 % _P, qy * z1 * z1z1 % _P
    h, r = (u2 - x1) % _P, 2 * (s2 - y1) % _P
    if h == 0:
        return _double(pt) if r == 0 else (mpz(1), mpz(1), mpz(0))
    hh = h * h % _P
    i = 4 * hh % _P
    j, v = h * i % _P, x1 * i % _P
    x3 = (r * r - j - 2 * v) % _P
    y3 = (r * (v - x3) - 2 * y1 * j) % _P
    return (x3, y3, ((z1 + h) ** 2 - z1z1 - hh) % _P)


def _clear_cofactor(x: mpz, y: mpz) -> tuple[int, int] | None:
    """[h_eff](x, y) in affine coordinates, None for the identity."""
    acc = (mpz(1), mpz(1), mpz(0))
    for bit in _H_EFF_BITS:
        acc = _double(acc)
        if bit == "1":
            acc = _add_affine(acc, x, y)
    X, Y, Z = acc
    if Z == 0:
        return None
    zinv = gmpy2.invert(Z, _P)
    zinv2 = zinv * zinv % _P
    return (int(X * zinv2 % _P), int(Y * zinv2 * zinv % _P))


def _compress(x: int, y: int) -> bytes:
    out = bytearray(x.to_bytes(48, "big"))
    out[0] |= 0x80 | (0x20 if y > (P - 1) // 2 else 0)
    return bytes(out)


def _random_g1(rng: _ChaCha) -> G1Point:
    """zkcrypto's G1Projective::random."""
    while True:
        # Fp::random: two big-endian 384-bit halves, the first the LOW digit (from_u768:
        # d0 + d1·2^384), whatever its comment says
        wide = rng.fill_bytes(96)
        x = mpz((int.from_bytes(wide[:48], "big") + (int.from_bytes(wide[48:], "big") << 384)) % P)
        flip = rng.next_u32() & 1
        y2 = (gmpy2.powmod(x, 3, _P) + 4) % _P
        y = gmpy2.powmod(y2, _SQRT_EXP, _P)
        if y * y % _P != y2:
            continue
        if flip:
            y = (_P - y) % _P
        cleared = _clear_cofactor(x, y)
        if cleared is not None:
            return G1Point().uncompress(_compress(*cleared))


def message_sha256(data: bytes) -> G1Point:
    """mintv2's `Message::from_bytes_sha256` (kept per input: see the module's docstring)."""
    return _message_sha256(bytes(data))


def message_v1(data: bytes) -> G1Point:
    """mint v1's `Message::from_bytes` (kept per input: see the module's docstring)."""
    return _message_v1(bytes(data))


@functools.lru_cache(maxsize=MESSAGE_CACHE_SIZE)
def _message_sha256(data: bytes) -> G1Point:
    return _random_g1(_ChaCha(hashlib.sha256(SHA256_DOMAIN + data).digest()))


@functools.lru_cache(maxsize=MESSAGE_CACHE_SIZE)
def _message_v1(data: bytes) -> G1Point:
    return _random_g1(_ChaCha(hashlib.sha3_256(SHA3_DOMAIN + data).digest()))


# -- points and scalars on the wire


def g1(data: bytes) -> G1Point:
    """A G1 point from its 48 compressed bytes, on the curve and in the subgroup."""
    try:
        return G1Point().uncompress(bytes(data))
    except Exception as exc:
        raise TbsError(f"not a G1 point: {exc}") from None


def g2(data: bytes) -> G2Point:
    try:
        return G2Point().uncompress(bytes(data))
    except Exception as exc:
        raise TbsError(f"not a G2 point: {exc}") from None


def to_bytes(point: G1Point | G2Point) -> bytes:
    return bytes(point.compress())


def scalar_from_le(data: bytes) -> int:
    n = int.from_bytes(data, "little")
    if len(data) != 32 or n >= R:
        raise TbsError("a scalar is 32 bytes, little-endian, below the group order")
    return n


def scalar_to_le(n: int) -> bytes:
    return (n % R).to_bytes(32, "little")


def new_blinding_key() -> int:
    return secrets.randbelow(R - 1) + 1


# -- the scheme


def blind(message: G1Point, r: int) -> G1Point:
    return message.scalar_mul(r)


def sign_share(blinded: G1Point, secret_key_share: int) -> G1Point:
    """What a guardian does (tests and the development world)."""
    return blinded.scalar_mul(secret_key_share)


def verify_share(blinded: G1Point, share: G1Point, pk_share: G2Point) -> bool:
    return _pairing_eq(blinded, pk_share, share)


def combine(shares: dict[int, G1Point]) -> G1Point:
    """Lagrange interpolation at 0 of shares keyed by peer id (x = peer id + 1)."""
    if not shares:
        raise TbsError("no shares to combine")
    if len(shares) == 1:
        return next(iter(shares.values()))
    xs = {peer: peer + 1 for peer in shares}
    total = G1Point()  # the identity
    for peer, share in shares.items():
        lam = 1
        for other, x in xs.items():
            if other != peer:
                lam = lam * x * pow(x - xs[peer], -1, R) % R
        total = total + share.scalar_mul(lam)
    return total


def unblind(blinded_signature: G1Point, r: int) -> G1Point:
    if r % R == 0:
        raise TbsError("a blinding key is not zero")
    return blinded_signature.scalar_mul(pow(r, -1, R))


def verify(message: G1Point, signature: G1Point, aggregate_pk: G2Point) -> bool:
    return _pairing_eq(message, aggregate_pk, signature)


def _pairing_eq(a: G1Point, key: G2Point, b: G1Point) -> bool:
    """e(a, key) == e(b, g2)."""
    return bool(final_verify(miller_loop(a, key), miller_loop(b, _G2)))


_G2 = G2Point().uncompress(G2_GENERATOR)  # read once (~0.15 ms a pairing check otherwise)
