"""Threshold point encryption as fedimint-tpe 0.13.0 makes it (LNv2 incoming contracts).

Keys, decryption key shares and the ephemeral key are G1 points; the message and the
ciphertext's signature G2 points (48 / 96-byte compressed, ZCash format). The preimage of an
incoming contract is encrypted to the federation's aggregate key; when the gateway funds the
contract, each guardian answers a decryption key share `ct.pk·sk_i`, which the gateway checks
(e(share, H) = e(pk_i, ct.signature)), combines (Lagrange at 0, x_i = peer id + 1) and uses:
preimage = ct.encrypted_preimage XOR SHA-256(compressed aggregate key).

H is fedimint's own hash to G2, not RFC 9380's: `seed = SHA-256("FEDIMINT_TPE_BLS12_381_MESSAGE"
‖ encrypted_preimage ‖ compressed ct.pk ‖ commitment hash)`, then zkcrypto's
`G2Projective::random` over the ChaCha20 keystream of that seed: x = (Fp::random, Fp::random)
as (c0, c1), a sign bit from the next 32-bit word, y = zkcrypto's Fp2 square root of x³ + 4(1+u)
(its Algorithm 9 of ePrint 2012/685, whose choice of root matters), negated if the bit is set,
then the cofactor cleared (times h_eff, which zkcrypto computes with the ψ endomorphism, and so
do we: two multiplications by the 64-bit curve parameter instead of one by the 636-bit h_eff). The
field arithmetic of the hash is ours, in Python integers; everything on points in the subgroup
(checks, multiplication, pairings) is blst's. Checked against vectors from the real crates
(tests/fmclient/data/tpe_vectors.json).

H costs some 10 ms of CPU here (the field arithmetic in Python integers), and a receive needs
the H of one ciphertext twice: to check the contract when its invoice is made and to check the
guardians' decryption key shares when it is funded. So H is kept per exact input (the last
`MESSAGE_CACHE_SIZE` of them, as compressed bytes: each caller gets a point of its own).
"""

from __future__ import annotations

import functools
import hashlib

from pyblst import final_verify, miller_loop

from .tbs import G2_GENERATOR, G1Point, G2Point, P, R, TbsError, _ChaCha, combine, g1, g2, to_bytes

DOMAIN = b"FEDIMINT_TPE_BLS12_381_MESSAGE"
# h_eff of RFC 9380 for G2: what zkcrypto's psi-based clear_cofactor multiplies by
H_EFF_G2 = int(
    "0bc69f08f2ee75b3584c6a0ea91b352888e2a8e9145ad7689986ff031508ffe1329c2f178731db956d82bf015d12"
    "12b02ec0ec69d7477c1ae954cbc06689f6a359894c0adebbf6b4e8020005aaa95551",
    16,
)
G1_GENERATOR = bytes.fromhex(
    "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00a"
    "db22c6bb"
)
Fp2 = tuple[int, int]
B2: Fp2 = (4, 4)  # 4(1 + u)
MESSAGE_CACHE_SIZE = 256


# -- Fp2 = Fp[u] / (u² + 1)


def _mul(a: Fp2, b: Fp2) -> Fp2:
    t0, t1 = a[0] * b[0], a[1] * b[1]
    return ((t0 - t1) % P, ((a[0] + a[1]) * (b[0] + b[1]) - t0 - t1) % P)


def _sq(a: Fp2) -> Fp2:
    return ((a[0] + a[1]) * (a[0] - a[1]) % P, 2 * a[0] * a[1] % P)


def _add(a: Fp2, b: Fp2) -> Fp2:
    return ((a[0] + b[0]) % P, (a[1] + b[1]) % P)


def _sub(a: Fp2, b: Fp2) -> Fp2:
    return ((a[0] - b[0]) % P, (a[1] - b[1]) % P)


def _neg(a: Fp2) -> Fp2:
    return (-a[0] % P, -a[1] % P)


def _pow(a: Fp2, e: int) -> Fp2:
    out: Fp2 = (1, 0)
    for bit in bin(e)[2:]:
        out = _sq(out)
        if bit == "1":
            out = _mul(out, a)
    return out


def _inv(a: Fp2) -> Fp2:
    n = pow((a[0] * a[0] + a[1] * a[1]) % P, -1, P)
    return (a[0] * n % P, -a[1] * n % P)


def _sqrt(a: Fp2) -> Fp2 | None:
    """zkcrypto's Fp2::sqrt (Algorithm 9, ePrint 2012/685): the same root, or None."""
    if a == (0, 0):
        return (0, 0)
    a1 = _pow(a, (P - 3) // 4)
    alpha = _mul(_sq(a1), a)
    x0 = _mul(a1, a)
    if alpha == (P - 1, 0):
        root = (-x0[1] % P, x0[0])
    else:
        root = _mul(_pow(_add(alpha, (1, 0)), (P - 1) // 2), x0)
    return root if _sq(root) == a else None


BLS_X_ABS = 0xD201000000010000  # |x| of BLS12-381 (x is negative)
PSI_X = _inv(_pow((1, 1), (P - 1) // 3))
PSI_Y = _inv(_pow((1, 1), (P - 1) // 2))


# -- Jacobian points on y² = x³ + 4(1 + u) over Fp2, before the cofactor is cleared


Point = tuple[Fp2, Fp2, Fp2]
INFINITY: Point = ((1, 0), (1, 0), (0, 0))


def _double(pt: Point) -> Point:
    x, y, z = pt
    if z == (0, 0) or y == (0, 0):
        return INFINITY
    a, b = _sq(x), _sq(y)
    c = _sq(b)
    d = _sub(_sub(_sq(_add(x, b)), a), c)
    d = _add(d, d)
    e = _add(_add(a, a), a)
    x3 = _sub(_sq(e), _add(d, d))
    c8 = _add(c, c)
    c8 = _add(c8, c8)
    c8 = _add(c8, c8)
    y3 = _sub(_mul(e, _sub(d, x3)), c8)
    yz = _mul(y, z)
    return (x3, y3, _add(yz, yz))


def _add_affine(pt: Point, qx: Fp2, qy: Fp2) -> Point:
    x1, y1, z1 = pt
    if z1 == (0, 0):
        return (qx, qy, (1, 0))
    z1z1 = _sq(z1)
    u2, s2 = _mul(qx, z1z1), _mul(qy, _mul(z1, z1z1))
    h, r = _sub(u2, x1), _sub(s2, y1)
    r = _add(r, r)
    if h == (0, 0):
        return _double(pt) if r == (0, 0) else INFINITY
    hh = _sq(h)
    i = _add(hh, hh)
    i = _add(i, i)
    j, v = _mul(h, i), _mul(x1, i)
    x3 = _sub(_sub(_sq(r), j), _add(v, v))
    y1j = _mul(y1, j)
    y3 = _sub(_mul(r, _sub(v, x3)), _add(y1j, y1j))
    z3 = _sub(_sub(_sq(_add(z1, h)), z1z1), hh)
    return (x3, y3, z3)


def _clear_cofactor(x: Fp2, y: Fp2) -> tuple[Fp2, Fp2] | None:
    """h_eff·(x, y) in affine coordinates, None for the point at infinity. As zkcrypto clears
    it (Budroni-Pintore, with ψ the untwist-Frobenius-twist endomorphism and BLS_X the curve's
    negative parameter): [x²-x-1]P + [x-1]ψ(P) + ψ²(2P), two multiplications by the 64-bit x
    instead of one by the 636-bit h_eff, the same point (checked against `_times_h_eff`)."""
    t1 = _affine(_times_abs_x((x, y)))
    t2 = _psi((x, y))
    two = _affine(_double((x, y, (1, 0))))
    if t1 is None or two is None:
        return _times_h_eff(x, y)  # a point of small order on the way: the long way
    t1 = (t1[0], _neg(t1[1]))  # [x]P
    sum12 = _affine(_add_affine((*t1, (1, 0)), *t2))
    if sum12 is None:
        return _times_h_eff(x, y)
    acc = _times_abs_x(sum12)
    acc = (acc[0], _neg(acc[1]), acc[2])  # [x](t1 + t2) = [x²]P + [x]ψ(P)
    for qx, qy in (_psi(_psi(two)), (t1[0], _neg(t1[1])), (t2[0], _neg(t2[1])), (x, _neg(y))):
        acc = _add_affine(acc, qx, qy)  # + ψ²(2P) - [x]P - ψ(P) - P
    return _affine(acc)


def _times_h_eff(x: Fp2, y: Fp2) -> tuple[Fp2, Fp2] | None:
    return _affine(_times((x, y), H_EFF_G2))


def _times_abs_x(pt: tuple[Fp2, Fp2]) -> Point:
    return _times(pt, BLS_X_ABS)


def _times(pt: tuple[Fp2, Fp2], k: int) -> Point:
    acc = INFINITY
    for bit in bin(k)[2:]:
        acc = _double(acc)
        if bit == "1":
            acc = _add_affine(acc, *pt)
    return acc


def _affine(pt: Point) -> tuple[Fp2, Fp2] | None:
    X, Y, Z = pt
    if Z == (0, 0):
        return None
    zinv = _inv(Z)
    zinv2 = _sq(zinv)
    return (_mul(X, zinv2), _mul(Y, _mul(zinv2, zinv)))


def _psi(pt: tuple[Fp2, Fp2]) -> tuple[Fp2, Fp2]:
    """ψ(x, y) = (conj(x)·(1+u)^-((p-1)/3), conj(y)·(1+u)^-((p-1)/2))."""
    (x0, x1), (y0, y1) = pt
    return (_mul((x0, -x1 % P), PSI_X), _mul((y0, -y1 % P), PSI_Y))


def _largest(a: int) -> bool:
    return a > (P - 1) // 2


def _compress(x: Fp2, y: Fp2) -> bytes:
    out = bytearray(x[1].to_bytes(48, "big") + x[0].to_bytes(48, "big"))
    largest = _largest(y[1]) or (y[1] == 0 and _largest(y[0]))
    out[0] |= 0x80 | (0x20 if largest else 0)
    return bytes(out)


def _random_g2(rng: _ChaCha) -> G2Point:
    """zkcrypto's G2Projective::random."""
    while True:
        x = (_random_fp(rng), _random_fp(rng))
        flip = rng.next_u32() & 1
        y = _sqrt(_add(_mul(_sq(x), x), B2))
        if y is None:
            continue
        if flip:
            y = _neg(y)
        cleared = _clear_cofactor(x, y)
        if cleared is not None:
            return G2Point().uncompress(_compress(*cleared))


def _random_fp(rng: _ChaCha) -> int:
    """Fp::random: 96 bytes, two big-endian halves, the first the low digit (see tbs.py)."""
    wide = rng.fill_bytes(96)
    return (int.from_bytes(wide[:48], "big") + (int.from_bytes(wide[48:], "big") << 384)) % P


def hash_to_message(encrypted_preimage: bytes, ephemeral_pk: bytes, commitment: bytes) -> G2Point:
    """fedimint-tpe's `hash_to_message`: the G2 point a ciphertext's signature signs (a new
    point each call; computed once per exact input, see the module's docstring)."""
    key = (bytes(encrypted_preimage), bytes(ephemeral_pk), bytes(commitment))
    return G2Point().uncompress(_message_bytes(*key))


@functools.lru_cache(maxsize=MESSAGE_CACHE_SIZE)
def _message_bytes(encrypted_preimage: bytes, ephemeral_pk: bytes, commitment: bytes) -> bytes:
    seed = hashlib.sha256(DOMAIN + encrypted_preimage + ephemeral_pk + commitment).digest()
    return to_bytes(_random_g2(_ChaCha(seed)))


# -- the scheme


class CipherText:
    """`CipherText {encrypted_preimage: [u8; 32], pk: G1, signature: G2}`: its consensus
    encoding is the three concatenated (32 + 48 + 96 bytes)."""

    SIZE = 32 + 48 + 96

    def __init__(self, encrypted_preimage: bytes, pk: bytes, signature: bytes) -> None:
        if len(encrypted_preimage) != 32:
            raise TbsError("an encrypted preimage is 32 bytes")
        self.encrypted_preimage = bytes(encrypted_preimage)
        self.pk_bytes, self.signature_bytes = bytes(pk), bytes(signature)
        self.pk, self.signature = g1(pk), g2(signature)

    @classmethod
    def from_bytes(cls, data: bytes) -> CipherText:
        if len(data) != cls.SIZE:
            raise TbsError(f"a ciphertext is {cls.SIZE} bytes")
        return cls(data[:32], data[32:80], data[80:])

    def to_bytes(self) -> bytes:
        return self.encrypted_preimage + self.pk_bytes + self.signature_bytes

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CipherText) and other.to_bytes() == self.to_bytes()

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def message(self, commitment: bytes) -> G2Point:
        return hash_to_message(self.encrypted_preimage, self.pk_bytes, commitment)


def _g1_generator() -> G1Point:
    return G1Point().uncompress(G1_GENERATOR)


_G1 = _g1_generator()  # read once: points are never changed in place (uncompress aside)


def _pairs_equal(a1: G1Point, b1: G2Point, a2: G1Point, b2: G2Point) -> bool:
    """e(a1, b1) == e(a2, b2)."""
    return bool(final_verify(miller_loop(a1, b1), miller_loop(a2, b2)))


def verify_ciphertext(ct: CipherText, commitment: bytes, message: G2Point | None = None) -> bool:
    """Not malleated: e(g1, ct.signature) == e(ct.pk, H)."""
    message = message or ct.message(commitment)
    return _pairs_equal(_G1, ct.signature, ct.pk, message)


def verify_dk_share(pk_share: G1Point, share: G1Point, ct: CipherText, message: G2Point) -> bool:
    """A guardian's decryption key share of a valid ciphertext (`message` = its H):
    e(share, H) == e(pk_i, ct.signature)."""
    return _pairs_equal(share, message, pk_share, ct.signature)


def aggregate_dk_shares(shares: dict[int, G1Point]) -> G1Point:
    """Lagrange interpolation at 0 of shares keyed by peer id (x = peer id + 1): the same
    combination as the TBS scheme's."""
    return combine(shares)


def decrypt_preimage(ct: CipherText, aggregate_dk: G1Point) -> bytes:
    pad = hashlib.sha256(to_bytes(aggregate_dk)).digest()
    return bytes(a ^ b for a, b in zip(ct.encrypted_preimage, pad, strict=True))


def ephemeral_sk(encryption_seed: bytes) -> int:
    """Scalar::random over ChaCha20(seed): 64 bytes, little-endian, reduced mod r."""
    return int.from_bytes(_ChaCha(encryption_seed).fill_bytes(64), "little") % R


def encrypt_preimage(
    aggregate_pk: G1Point, encryption_seed: bytes, preimage: bytes, commitment: bytes
) -> CipherText:
    """What a receiving client does (tests, and the gateway's own receives later)."""
    sk = ephemeral_sk(encryption_seed)
    agg_dk = aggregate_pk.scalar_mul(sk)
    pad = hashlib.sha256(to_bytes(agg_dk)).digest()
    encrypted = bytes(a ^ b for a, b in zip(preimage, pad, strict=True))
    pk = to_bytes(_g1_generator().scalar_mul(sk))
    signature = to_bytes(hash_to_message(encrypted, pk, commitment).scalar_mul(sk))
    return CipherText(encrypted, pk, signature)


__all__ = [
    "G2_GENERATOR",
    "CipherText",
    "aggregate_dk_shares",
    "decrypt_preimage",
    "encrypt_preimage",
    "hash_to_message",
    "verify_ciphertext",
    "verify_dk_share",
]
