"""fmclient.tpe against vectors printed by the real fedimint-tpe 0.13.0 (make vectors): the hash
to G2 (zkcrypto's Fp2 square root and cofactor clearing), encryption, the ciphertext's
encoding, share checks, combination and decryption, byte for byte."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from fmclient import tpe
from fmclient.tbs import P, TbsError, g1, to_bytes

VECTORS = json.loads((Path(__file__).parent / "data" / "tpe_vectors.json").read_text())
KEY = VECTORS["threshold_key"]
AGG = g1(bytes.fromhex(KEY["aggregate_public_key"]))
PKS = {int(i): g1(bytes.fromhex(pk)) for i, pk in KEY["public_key_shares"].items()}
CASES = VECTORS["cases"]


def _b(h: str) -> bytes:
    return bytes.fromhex(h)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["encryption_seed"][:8])
def test_encryption_is_the_real_crates(case: dict) -> None:
    ct = tpe.encrypt_preimage(
        AGG, _b(case["encryption_seed"]), _b(case["preimage"]), _b(case["commitment_hash"])
    )
    want = case["ciphertext"]
    assert ct.encrypted_preimage.hex() == want["encrypted_preimage"]
    assert ct.pk_bytes.hex() == want["pk"]
    assert ct.signature_bytes.hex() == want["signature"]  # H·esk: our hash to G2 is theirs
    assert ct.to_bytes().hex() == case["ciphertext_encoding"]
    assert tpe.CipherText.from_bytes(ct.to_bytes()).to_bytes() == ct.to_bytes()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["encryption_seed"][:8])
def test_shares_are_checked_combined_and_decrypt(case: dict) -> None:
    ct = tpe.CipherText.from_bytes(_b(case["ciphertext_encoding"]))
    commitment = _b(case["commitment_hash"])
    message = ct.message(commitment)
    assert tpe.verify_ciphertext(ct, commitment, message)
    assert not tpe.verify_ciphertext(ct, bytes(32))  # another contract's commitment
    shares = {int(i): g1(_b(s)) for i, s in case["decryption_key_shares"].items()}
    for peer, share in shares.items():
        assert tpe.verify_dk_share(PKS[peer], share, ct, message)
        other = shares[(peer + 1) % 4]
        assert not tpe.verify_dk_share(PKS[peer], other, ct, message)  # a lying guardian
    subset = {p: shares[p] for p in case["combined_from"]}
    agg_dk = tpe.aggregate_dk_shares(subset)
    assert to_bytes(agg_dk).hex() == case["aggregate_decryption_key"]
    assert tpe.decrypt_preimage(ct, agg_dk).hex() == case["preimage"]
    # any three shares give the same key; two do not
    others = {p: shares[p] for p in sorted(shares)[:3]}
    assert to_bytes(tpe.aggregate_dk_shares(others)) == to_bytes(agg_dk)
    two = {p: shares[p] for p in sorted(shares)[:2]}
    assert tpe.decrypt_preimage(ct, tpe.aggregate_dk_shares(two)).hex() != case["preimage"]


def test_fp2_square_roots() -> None:
    rng = random.Random(7)
    for _ in range(50):
        a = (rng.randrange(P), rng.randrange(P))
        square = tpe._sq(a)
        root = tpe._sqrt(square)
        assert root is not None and tpe._sq(root) == square
        assert root in (a, tpe._neg(a))
    non_residue = (1, 1)  # 1 + u is not a square in Fp2 (it is the sextic twist's ξ)
    assert tpe._sqrt(non_residue) is None


def test_damaged_ciphertexts_are_refused() -> None:
    data = bytearray(_b(CASES[0]["ciphertext_encoding"]))
    with pytest.raises(TbsError):
        tpe.CipherText.from_bytes(bytes(data[:-1]))
    data[40] ^= 1  # inside the G1 point
    with pytest.raises(TbsError):
        tpe.CipherText.from_bytes(bytes(data))


def test_the_hash_to_g2_is_made_once_per_exact_input() -> None:
    """A receive asks H of one ciphertext twice (the contract's check, then the shares'): the
    second is the cached bytes, as a point of its own; another input is hashed anew."""
    case = CASES[0]
    ct = tpe.CipherText.from_bytes(_b(case["ciphertext_encoding"]))
    commitment = _b(case["commitment_hash"])
    tpe._message_bytes.cache_clear()
    first = ct.message(commitment)
    again = ct.message(bytearray(commitment))  # the same bytes, another type
    assert again is not first and to_bytes(again) == to_bytes(first)
    info = tpe._message_bytes.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    other = ct.message(bytes(32))
    assert to_bytes(other) != to_bytes(first)
    assert tpe._message_bytes.cache_info().misses == 2
    # the cached H checks what the uncached one did, and the generator is untouched by use
    assert tpe.verify_ciphertext(ct, commitment) and not tpe.verify_ciphertext(ct, bytes(32))
    assert to_bytes(tpe._G1) == tpe.G1_GENERATOR


def test_the_cofactor_is_cleared_by_psi_as_by_h_eff() -> None:
    """The ψ-based clearing (zkcrypto's) is h_eff· on curve points that are not in G2."""
    rng = random.Random(7)
    seen = 0
    while seen < 12:
        x = (rng.randrange(P), rng.randrange(P))
        y = tpe._sqrt(tpe._add(tpe._mul(tpe._sq(x), x), tpe.B2))
        if y is None:
            continue
        seen += 1
        assert tpe._clear_cofactor(x, y) == tpe._times_h_eff(x, y)
