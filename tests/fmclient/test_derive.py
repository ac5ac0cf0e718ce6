"""fmclient.derive against vectors printed by the real fedimint 0.13.0 crates (make vectors:
fedimint-derive-secret, fedimint-bip39, fedimint-client-module, the mint / mintv2 clients):
the secret tree, gatewayd's per-federation client root secret, module secrets, and the keys
and note secrets each client module derives from them."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from random import Random

import pytest
from coincurve import PrivateKey

from fmclient import derive, tbs
from fmclient.derive import DerivableSecret, FederationSecrets

DATA = Path(__file__).parent / "data"
V = json.loads((DATA / "derive_vectors.json").read_text())
CASES = V["cases"]


def check_outputs(secret: DerivableSecret, want: dict) -> None:
    assert secret.level == want["level"]
    assert secret.prk.hex() == want["prk"]
    assert secret.to_secp_secret().hex() == want["secp"]["secret"]
    pub = PrivateKey(secret.to_secp_secret()).public_key.format(compressed=True)
    assert pub.hex() == want["secp"]["public"]
    assert tbs.scalar_to_le(secret.to_bls12_381_scalar()).hex() == want["bls12_381_le"]
    assert secret.to_chacha20_poly1305_key().hex() == want["chacha20_poly1305"]
    assert secret.to_random_bytes(32).hex() == want["random_bytes_32"]
    assert secret.to_random_bytes(100).hex() == want["random_bytes_100"]


def pub(secret: bytes) -> str:
    return PrivateKey(secret).public_key.format(compressed=True).hex()


@pytest.mark.parametrize("case", CASES, ids=[c["words"].split()[0] for c in CASES])
def test_bip39_root_and_tree_are_the_crates(case: dict) -> None:
    root = derive.bip39_root_secret(case["words"])
    check_outputs(root, case["root"])
    check_outputs(root.child_key(0), case["root_child_0"])
    check_outputs(root.child_key(2**64 - 1), case["root_child_max"])
    check_outputs(root.tweak(b"abc"), case["root_tweak_abc"])


@pytest.mark.parametrize("case", CASES, ids=[c["words"].split()[0] for c in CASES])
def test_gatewayd_federation_and_module_secrets_are_the_crates(case: dict) -> None:
    root = derive.bip39_root_secret(case["words"])
    for fed in case["federations"]:
        fid = bytes.fromhex(fed["federation_id"])
        client = derive.default_client_secret(root, fid)
        check_outputs(client, fed["client_secret"])
        assert client.child_key(0).to_random_bytes(8).hex() == fed["pre_root_secret_hash"]
        federation = derive.federation_root_secret(root, fid)
        check_outputs(federation, fed["federation_root_secret"])
        assert federation.child_key(derive.TYPE_BACKUP).prk.hex() == fed["backup_secret_prk"]
        secrets = FederationSecrets.from_root(root, fed["federation_id"])
        for m in fed["modules"]:
            module = secrets.module(m["module_instance_id"])
            assert module.level == 2
            assert module.prk.hex() == m["prk"]
            assert derive.module_root_secret(root, fid, m["module_instance_id"]).prk == module.prk
            assert derive.lnv2_gateway_secret(module).hex() == m["lnv2_gateway_key"]["secret"]
            assert pub(derive.lnv2_gateway_secret(module)) == m["lnv2_gateway_key"]["public"]
            assert derive.lnv1_redeem_secret(module).hex() == m["lnv1_redeem_key"]["secret"]
            for w in m["wallet_v1"]:
                assert derive.wallet_v1_tweak_secret(module, w["index"]).hex() == w["key"]["secret"]
            for w in m["wallet_v2"]:
                assert derive.wallet_v2_tweak_secret(module, w["index"]).hex() == w["key"]["secret"]


def module_vectors() -> Iterator[tuple[DerivableSecret, dict]]:
    """Every module of every case: (its secret as derived here, the crates' vectors)."""
    for case in CASES:
        root = derive.bip39_root_secret(case["words"])
        for fed in case["federations"]:
            secrets = FederationSecrets.from_root(root, fed["federation_id"])
            for m in fed["modules"]:
                yield secrets.module(m["module_instance_id"]), m


def check_note(spend: bytes, r: int, message: Callable, want: dict, blinded_key: str) -> None:
    assert spend.hex() == want["spend_secret"]
    assert pub(spend) == want["nonce"]
    assert tbs.scalar_to_le(r).hex() == want["blinding_key_le"]
    blinded = tbs.blind(message(bytes.fromhex(want["nonce"])), r)
    assert tbs.to_bytes(blinded).hex() == want[blinded_key]


def test_mint_v1_note_secrets_are_the_crates() -> None:
    for module, m in module_vectors():
        for n in m["mint_v1"]:
            note = derive.mint_v1_note_secret(module, n["amount_msat"], n["index"])
            assert note.prk.hex() == n["note_secret_prk"]
            spend, r = derive.mint_v1_note_keys(note)
            check_note(spend, r, tbs.message_v1, n, "blind_nonce")


def test_mintv2_note_secrets_and_tweak_filter_are_the_crates() -> None:
    for module, m in module_vectors():
        flt = derive.mintv2_tweak_filter(module)
        assert flt.hex() == m["mintv2_tweak_filter"]
        for n in m["mint_v2"]:
            tweak = bytes.fromhex(n["tweak"])
            assert derive.mintv2_tweak_passes(tweak, flt) is n["tweak_passes_filter"]
            spend, r = derive.mintv2_note_keys(module, n["denomination"], tweak)
            check_note(spend, r, tbs.message_sha256, n, "blinded_message")


def test_a_ground_mintv2_tweak_passes_the_filter() -> None:
    module = FederationSecrets.from_root(derive.bip39_root_secret(CASES[0]["words"]), "11" * 32)
    flt = derive.mintv2_tweak_filter(module.module(1))
    tweak = derive.mintv2_grind_tweak(flt, os.urandom)
    assert len(tweak) == 16 and derive.mintv2_tweak_passes(tweak, flt)
    # the filter bites: of 4096 random tweaks, about 1/16 would pass by chance
    assert sum(derive.mintv2_tweak_passes(os.urandom(16), flt) for _ in range(4096)) <= 3


def test_words_are_checked_before_anything_is_derived() -> None:
    with pytest.raises(ValueError, match="checksum"):
        derive.bip39_root_secret("abandon " * 12)
    with pytest.raises(ValueError, match="level-0"):
        derive.bip39_root_secret(CASES[0]["words"]).child_key(0).derive_module_secret(1)


def test_the_grind_finds_the_tweak_hashlib_would() -> None:
    """The grind's built-in SHA-256 is hashlib's SHA-256, and its `digest < 00 01` test is
    "starts with two zero bytes": over the same random bytes, the same first passing tweak."""
    for n in (0, 1, 48, 64, 200):
        data = os.urandom(n)
        assert derive._GRIND_SHA256(data).digest() == hashlib.sha256(data).digest()
    flt = bytes(range(32))

    def reference(random: Callable[[int], bytes]) -> bytes:
        while True:
            block = random(16 * 4096)
            for i in range(0, len(block), 16):
                if hashlib.sha256(block[i : i + 16] + flt).digest()[:2] == b"\x00\x00":
                    return block[i : i + 16]

    for seed in range(3):
        ours, theirs = Random(seed), Random(seed)
        tweak = derive.mintv2_grind_tweak(flt, ours.randbytes)
        assert tweak == reference(theirs.randbytes)
        assert derive.mintv2_tweak_passes(tweak, flt)
