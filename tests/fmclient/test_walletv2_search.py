"""walletv2's address search (fmclient/walletv2.py) against the plain computation it speeds up:
the script of every tweak key is `witness_script`'s (coincurve's key objects), and a seeded
address found is the first index whose script passes the federation's filter."""

from __future__ import annotations

import hashlib
import os

import pytest
from coincurve import PrivateKey

from fmclient import walletv2
from fmclient.derive import DerivableSecret, wallet_v2_tweak_secret
from fmclient.walletv2 import (
    WalletConfig,
    _multisig,
    derived_peg_in_address,
    script_pubkey,
    witness_script,
)


def _config(guardians: int) -> WalletConfig:
    pks = {i: PrivateKey(os.urandom(32)).public_key.format() for i in range(guardians)}
    return WalletConfig(pks, 1, 1, 1, 546, 0, 0, "regtest")


@pytest.mark.parametrize("guardians", [1, 4, 7])
def test_the_fast_script_is_the_plain_one(guardians: int) -> None:
    config = _config(guardians)
    secp, script_of = _multisig(config)
    for _ in range(200):
        secret = os.urandom(32)
        tweak_pubkey = PrivateKey(secret).public_key.format(compressed=True)
        assert secp.public_key(secret) == tweak_pubkey
        assert script_of(tweak_pubkey) == witness_script(config, tweak_pubkey)


def test_invalid_keys_are_refused() -> None:
    secp, _ = _multisig(_config(1))
    with pytest.raises(ValueError):
        secp.public_key(bytes(32))  # zero is no secret key
    with pytest.raises(ValueError):
        secp.public_key(b"\xff" * 32)  # above the group order
    bad = WalletConfig({0: b"\x02" + b"\xff" * 32}, 1, 1, 1, 546, 0, 0, "regtest")
    with pytest.raises(ValueError):
        _multisig(bad)


def test_a_seeded_address_is_the_first_index_passing_the_filter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a filter that passes one script in 16 (the federation's passes one in 65,536: a
    search of seconds), the search stops at the first index whose plain script passes."""

    def one_in_16(spk: bytes, pks_hash: bytes) -> bool:
        return hashlib.sha256(bytes([len(spk)]) + spk + pks_hash).digest()[0] < 16

    monkeypatch.setattr(walletv2, "is_potential_receive", one_in_16)
    config = _config(4)
    module = DerivableSecret(hashlib.sha512(b"walletv2 search").digest(), 2)
    start = 0
    for _ in range(5):
        found = derived_peg_in_address(config, lambda i: wallet_v2_tweak_secret(module, i), start)
        assert found.index is not None and found.index >= start
        assert found.tweak_secret == wallet_v2_tweak_secret(module, found.index)
        for index in range(start, found.index + 1):
            pub = PrivateKey(wallet_v2_tweak_secret(module, index)).public_key.format()
            spk = script_pubkey(witness_script(config, pub))
            assert one_in_16(spk, config.pks_hash) == (index == found.index)
        assert found.script_pubkey == spk
        start = found.index + 1


def test_the_walk_steps_by_g_and_a_random_address_is_the_first_key_passing() -> None:
    """`_Secp.walk` gives k·G, (k+1)·G, … as coincurve computes them (its two buffers
    alternate: libsecp256k1's combine clears its output before it reads its inputs); the
    random-key search stops at the first key of its walk whose plain script passes."""
    secp, _ = _multisig(_config(1))
    k = int.from_bytes(os.urandom(31), "big")
    step = secp.walk(k.to_bytes(32, "big"))
    for i in range(50):
        assert step() == PrivateKey((k + i).to_bytes(32, "big")).public_key.format()

    def one_in_16(spk: bytes, pks_hash: bytes) -> bool:
        return hashlib.sha256(bytes([len(spk)]) + spk + pks_hash).digest()[0] < 16

    config = _config(4)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(walletv2, "is_potential_receive", one_in_16)
        found = walletv2.new_peg_in_address(config, start=k.to_bytes(32, "big"))
    index = int.from_bytes(found.tweak_secret, "big") - k
    for i in range(index + 1):
        pub = PrivateKey((k + i).to_bytes(32, "big")).public_key.format()
        spk = script_pubkey(witness_script(config, pub))
        assert one_in_16(spk, config.pks_hash) == (i == index)
    assert found.script_pubkey == spk


def test_a_search_stopped_midway_goes_on_from_where_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    """`reached(i)` says no index below i is valid: a search begun again from there (after a
    crash or a kill: the wallet commits it, fmclient/onchain.py) finds the same address."""

    def one_in_4096(spk: bytes, pks_hash: bytes) -> bool:
        return hashlib.sha256(spk + pks_hash).digest()[:2] < b"\x00\x10"

    monkeypatch.setattr(walletv2, "is_potential_receive", one_in_4096)
    config = _config(1)
    module = DerivableSecret(hashlib.sha512(b"walletv2 resumed").digest(), 2)
    key = lambda i: wallet_v2_tweak_secret(module, i)  # noqa: E731
    told: list[int] = []
    whole = derived_peg_in_address(config, key, 0, reached=told.append)
    assert whole.index is not None and told and told == sorted(told)
    assert all(i % walletv2.CHECK_EVERY == 0 and i <= whole.index for i in told)
    for midway in told:
        assert derived_peg_in_address(config, key, midway).index == whole.index
