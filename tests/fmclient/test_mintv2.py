"""mintv2 wire types: the client config of a real 4-guardian fedimintd (captured), fees, the
e-cash string's fields both ways, and bad e-cash refused with a reason. (Real fedimint-cli
e-cash, verified: tests/fedimint/test_mintv2.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmclient import base32
from fmclient.config import parse_client_config
from fmclient.mintv2 import ECash, EcashError, MintConfig, SpendableNote, parse_ecash

REAL = json.loads((Path(__file__).parent / "data" / "fedimintd_4_guardians.json").read_text())


def test_a_real_mint_config() -> None:
    cfg = parse_client_config(REAL["client_config"])
    body = cfg.modules[cfg.module_id("mintv2")].body
    mint = MintConfig.from_bytes(body)
    assert sorted(mint.agg_pks) == list(range(42))  # consensus denominations 2^0..2^41
    assert all(sorted(by_peer) == [0, 1, 2, 3] for by_peer in mint.pks.values())
    assert (mint.fee_base_msat, mint.fee_ppm, mint.amount_unit) == (100, 0, 0)
    assert mint.to_bytes() == body
    assert mint.fee(9) == 100
    mint.aggregate_key(41)  # every key is a valid G2 point


def test_ecash_fields_round_trip() -> None:
    note = SpendableNote(10, b"\x01" * 32, bytes.fromhex(REAL_SIG))
    e = ECash(
        "ab" * 32, (note, note), ((0, "ws://127.0.0.1:1/"),), "ab" * 32, "secret", 5, ((9, b"x"),)
    )
    back = parse_ecash(str(e))
    assert back == e and back.amount_msat == 2048
    assert str(e).startswith("fedimint")


# a G1 point (the compressed generator): the decoder takes any 48 bytes, validity is checked apart
REAL_SIG = "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "string"),
        (None, "string"),
        ("fedimint" + base32.encode(b"\x00"), "no notes"),
        ("fedimintzz!", "not mintv2"),
        ("lnbcrt1xyz", "not mintv2"),
        (str(ECash("ab" * 32, (SpendableNote(3, b"\x01" * 32, b"\x00" * 48),))), "outside"),
        (str(ECash(None, (SpendableNote(9, b"\x01" * 32, b"\x00" * 48),))), "which federation"),
    ],
)
def test_bad_ecash_says_why(text: object, why: str) -> None:
    with pytest.raises(EcashError, match=why):
        parse_ecash(text)


def test_a_real_wallet_config_and_the_address_filter() -> None:
    from fmclient.walletv2 import WalletConfig, is_potential_receive, new_peg_in_address

    cfg = parse_client_config(REAL["client_config"])
    wallet = WalletConfig.from_bytes(cfg.modules[cfg.module_id("walletv2")].body)
    assert (wallet.network, wallet.threshold, wallet.dust_limit_sat) == ("regtest", 3, 10_000)
    assert (wallet.fee_base_msat, wallet.fee_ppm) == (100_000, 0)  # 100 sat per in/out
    # a key whose address passes this federation's filter, found once by the search (about
    # 65,536 tries, 2 s of CPU); the search from three keys before it steps onto it
    found = 0xC558D731F60B339B855C0ED28E6F4260754D730757990D071413147AEC6B2AAE
    address = new_peg_in_address(wallet, start=(found - 3).to_bytes(32, "big"))
    assert address.tweak_secret == found.to_bytes(32, "big")
    assert address.address == "bcrt1qnezsfmk67gvfvzjgajuht62rz24q5jjm8qhjvmevsplz3p8sd79s26rc6r"
    assert len(address.script_pubkey) == 34
    assert is_potential_receive(address.script_pubkey, wallet.pks_hash)
    with pytest.raises(RuntimeError, match="no address passed"):  # none of the three before
        new_peg_in_address(wallet, max_tries=3, start=(found - 3).to_bytes(32, "big"))
