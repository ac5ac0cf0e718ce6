"""The TBS scheme against vectors printed by the real fedimint-tbs 0.13.0 and bls12_381 0.8.0
(peers/fedimint/src/bin/fedimint-vectors.rs, `make vectors`): hash to G1 (mintv2 and v1),
blinding, guardians' shares and their check, Lagrange combination of any threshold subset,
unblinding and verification."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from fmclient import tbs

V = json.loads((Path(__file__).parent / "data" / "tbs_vectors.json").read_text())
KEY = V["threshold_key"]


def hexed(point) -> str:  # type: ignore[no-untyped-def]
    return tbs.to_bytes(point).hex()


@pytest.mark.parametrize("case", V["hash_to_g1"], ids=lambda c: c["data"][:12] or "empty")
def test_hash_to_g1_is_fedimints(case: dict) -> None:
    data = bytes.fromhex(case["data"])
    assert hexed(tbs.message_sha256(data)) == case["sha256_message"]
    assert hexed(tbs.message_v1(data)) == case["v1_message"]


@pytest.mark.parametrize("note", V["notes"], ids=lambda n: n["nonce"][:10])
def test_issuance_combination_and_verification(note: dict) -> None:
    sks = {
        int(p): tbs.scalar_from_le(bytes.fromhex(s)) for p, s in KEY["secret_key_shares"].items()
    }
    pks = {int(p): tbs.g2(bytes.fromhex(k)) for p, k in KEY["public_key_shares"].items()}
    agg = tbs.g2(bytes.fromhex(KEY["aggregate_public_key"]))
    msg = tbs.message_sha256(bytes.fromhex(note["nonce"]))
    assert hexed(msg) == note["message"]
    r = tbs.scalar_from_le(bytes.fromhex(note["blinding_key"]))
    blinded = tbs.blind(msg, r)
    assert hexed(blinded) == note["blinded_message"]
    shares = {}
    for peer, sk in sks.items():  # what each guardian signs
        share = tbs.sign_share(blinded, sk)
        assert hexed(share) == note["shares"][str(peer)]
        assert tbs.verify_share(blinded, share, pks[peer])
        assert not tbs.verify_share(blinded, share, pks[(peer + 1) % 4])  # not another's
        shares[peer] = share
    picked = {p: shares[p] for p in note["combined_from"]}
    assert hexed(tbs.combine(picked)) == note["blinded_signature"]
    for subset in itertools.combinations(sorted(shares), KEY["threshold"]):
        assert hexed(tbs.combine({p: shares[p] for p in subset})) == note["blinded_signature"]
    sig = tbs.unblind(tbs.combine(picked), r)
    assert hexed(sig) == note["signature"]
    assert tbs.verify(msg, sig, agg)
    assert not tbs.verify(tbs.message_sha256(b"another note"), sig, agg)
    two = {p: shares[p] for p in (0, 1)}  # below the threshold: not a valid signature
    assert not tbs.verify(msg, tbs.unblind(tbs.combine(two), r), agg)


def test_bad_points_and_scalars_are_refused() -> None:
    with pytest.raises(tbs.TbsError):
        tbs.g1(b"\x00" * 48)
    with pytest.raises(tbs.TbsError):
        tbs.g2(b"\x01" * 96)
    with pytest.raises(tbs.TbsError):
        tbs.scalar_from_le(b"\xff" * 32)
    with pytest.raises(tbs.TbsError):
        tbs.combine({})
    r = tbs.new_blinding_key()
    assert tbs.scalar_from_le(tbs.scalar_to_le(r)) == r


def test_the_hash_to_g1_is_made_once_per_exact_input() -> None:
    """A note we issue is hashed when blinded and again when its signature is verified: the
    second is the cached point (unchanged by its use); other bytes are hashed anew."""
    tbs._message_sha256.cache_clear()
    nonce = bytes(range(33))
    first = tbs.message_sha256(nonce)
    want = hexed(first)
    tbs.blind(first, 12345)  # used as the wallet uses it
    tbs.verify(first, first, tbs._G2)
    assert hexed(tbs.message_sha256(bytearray(nonce))) == want
    info = tbs._message_sha256.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    assert hexed(tbs.message_sha256(nonce[:-1] + b"\xff")) != want
    assert hexed(tbs.message_v1(nonce)) != want  # mint v1's hash is its own
    assert hexed(tbs._G2) == tbs.G2_GENERATOR.hex()
