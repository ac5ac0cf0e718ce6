"""mintv2 e-cash made by a real fedimint-cli user of a real 1-guardian federation (peg-in
through walletv2 on a real bitcoind, then `module mintv2 send`), read by fmclient: the string
decodes and re-encodes byte for byte, the notes add up, and every note's blind signature
verifies against the federation's keys as fmclient reads them from its client config."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest

from fmclient.config import parse_client_config
from fmclient.mintv2 import MintConfig, parse_ecash
from peers.cache import fedimint_bin
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation


class User:
    """A fedimint-cli 0.13.0 user: one data dir, one command per process, JSON out."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def __call__(self, *args: str, timeout: float = 120) -> object:
        out = subprocess.run(
            [str(fedimint_bin("fedimint-cli")), "--data-dir", str(self.data_dir), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "FM_IN_DEVIMINT": "1"},
        )
        assert out.returncode == 0, f"fedimint-cli {args}: {out.stdout} {out.stderr[-1500:]}"
        return json.loads(out.stdout)


@pytest.fixture(scope="module")
def user(federation1: Federation, bitcoind: Bitcoind, tmp_path_factory) -> User:  # type: ignore[no-untyped-def]
    """A user with e-cash from a 100,000 sat peg-in."""
    u = User(tmp_path_factory.mktemp("fedimint-cli"))
    u("join", federation1.invite_code)
    pos = str(u("dev", "next-event-log-id"))
    address = str(u("module", "walletv2", "receive"))
    bitcoind.send(address, 100_000)
    bitcoind.mine(21)  # walletv2 sees an output once the tip is 7 blocks past it
    assert u("module", "walletv2", "await-receive", pos)[0] == "Success"  # type: ignore[index]
    return u


def test_real_ecash_decodes_and_verifies(federation1: Federation, user: User) -> None:
    cfg = parse_client_config(federation1.guardians[0].call("client_config"))
    mint = MintConfig.from_bytes(cfg.modules[cfg.module_id("mintv2")].body)
    assert (mint.fee_base_msat, mint.fee_ppm) == (100, 0)  # base fees on, as by default
    text = str(user("module", "mintv2", "send", "64000"))
    ecash = parse_ecash(text)
    assert str(ecash) == text  # byte for byte as fedimint-cli writes it
    assert ecash.federation_id == federation1.federation_id
    # mintv2 rounds a send up to a multiple of 512 msat
    assert 64_000 <= ecash.amount_msat < 64_000 + 512 and ecash.amount_msat % 512 == 0
    assert ecash.notes and all(n.valid(mint) for n in ecash.notes)
    note = ecash.notes[0]
    forged = dataclasses.replace(note, denomination=note.denomination + 1)
    assert not forged.valid(mint)  # a signature is for one denomination
    other = dataclasses.replace(note, secret=bytes(31) + b"\x07")
    assert not other.valid(mint)  # and for one nonce
    with_invite = parse_ecash(str(user("module", "mintv2", "send", "1024", "--include-invite")))
    assert with_invite.invite_federation_id == federation1.federation_id
    assert with_invite.invite_peers == ((0, federation1.guardians[0].api_url),)
