"""mintv2 e-cash made by a real fedimint-cli user of a real 1-guardian federation (peg-in
through walletv2 on a real bitcoind, then `module mintv2 send`), read by fmclient: the string
decodes and re-encodes byte for byte, the notes add up, and every note's blind signature
verifies against the federation's keys as fmclient reads them from its client config."""

from __future__ import annotations

import dataclasses

from fmclient.config import parse_client_config
from fmclient.mintv2 import MintConfig, parse_ecash
from peers.harness.fedimintd import Federation

from .conftest import User


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
