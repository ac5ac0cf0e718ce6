"""Invite codes and client configs against what the real crates and binaries produce: the vector
of fedimint-core's invite_code tests, and a 4-guardian fedimintd 0.13.0's client.json and
invite codes (tests/fmclient/data, captured by the peers harness)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from fmclient import base32
from fmclient.config import ConfigError, parse_client_config
from fmclient.invite import InviteCode, InviteError, parse_invite

DATA = Path(__file__).parent / "data"
REAL = json.loads((DATA / "fedimintd_4_guardians.json").read_text())
# fedimint-core-0.13.0/src/invite_code/tests.rs
VECTOR = (
    "fed11qgqpu8rhwden5te0vejkg6tdd9h8gepwd4cxcumxv4jzuen0duhsqqfqh6nl7sgk72caxfx8khtfnn8y436q"
    "3nhyrkev3qp8ugdhdllnh86qmp42pm"
)
VECTOR_PAYLOAD = (
    "02001e1c7773733a2f2f666564696d696e74642e6d706c736665642e666f6f2f000120"
    "bea7ff4116f2b1d324c7b5d699cce4ac7408cee41db2c88027e21b76fff3b9f4"
)


def test_the_crates_invite_vector() -> None:
    invite = parse_invite(VECTOR)
    assert invite.peers == {0: "wss://fedimintd.mplsfed.foo/"}
    assert invite.federation_id.startswith("bea7ff41") and invite.api_secret is None
    assert invite.to_bytes().hex() == VECTOR_PAYLOAD and str(invite) == VECTOR
    assert parse_invite(VECTOR.upper()) == invite  # QR codes
    # the second form: fedimint + base32 of the same bytes
    assert parse_invite("fedimint" + base32.encode(bytes.fromhex(VECTOR_PAYLOAD))) == invite


def test_unknown_parts_and_secrets_survive_a_round_trip() -> None:
    invite = InviteCode("ab" * 32, {2: "ws://a/", 0: "ws://b/"}, "s3cret", ((9, b"\x01\x02"),))
    assert parse_invite(str(invite)) == invite


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (VECTOR[:40] + ("q" if VECTOR[40] != "q" else "p") + VECTOR[41:], "checksum"),
        ("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "not a Fedimint invite"),
        (VECTOR[:10] + VECTOR[10:].upper(), "mixed"),
        ("", "string"),
        (None, "string"),
        ("fed11", "separator"),
        ("fed11" + "q" * 20, "checksum"),
        ("fed11" + "b" * 20, "not a bech32 character"),
        (str(InviteCode("ab" * 32, {})), "at least one guardian"),
    ],
)
def test_bad_invites_say_why(text: object, why: str) -> None:
    with pytest.raises(InviteError, match=why):
        parse_invite(text)


def test_a_real_federations_invites_and_config_agree() -> None:
    cfg = parse_client_config(REAL["client_config"])
    assert {i: m.kind for i, m in cfg.modules.items()} == {
        0: "lnv2",
        1: "meta",
        2: "mintv2",
        3: "walletv2",
    }
    assert cfg.module_id("mintv2") == 2 and cfg.threshold == 3 and len(cfg.api_endpoints) == 4
    for name, code in REAL["invite_codes"].items():
        invite = parse_invite(code)
        # the federation id fedimintd put in its invite is the one recomputed from the config
        assert invite.federation_id == cfg.federation_id
        ((peer, url),) = invite.peers.items()  # each guardian's invite names itself
        assert cfg.api_endpoints[peer] == (url, name)
        assert str(invite) == code  # and we write it byte for byte as fedimintd does


def test_a_config_that_is_not_the_federations_is_caught() -> None:
    cfg = parse_client_config(REAL["client_config"])
    doc = copy.deepcopy(REAL["client_config"])
    doc["api_endpoints"]["1"]["url"] = "ws://127.0.0.1:1/"  # a guardian swapped for another
    assert parse_client_config(doc).federation_id != cfg.federation_id
    doc = copy.deepcopy(REAL["client_config"])
    doc["modules"]["2"]["config"] = "03" + doc["modules"]["2"]["config"][2:]  # framed as 3
    with pytest.raises(ConfigError, match="framed as module 3"):
        parse_client_config(doc)
    with pytest.raises(ConfigError, match="malformed"):
        parse_client_config({"api_endpoints": {}})


def test_the_federation_network_and_the_nodes_names_for_it() -> None:
    """gatewayd's rule, ours too: a federation on another network than the node is refused at
    connect (services/router/gateway.py); the names lnd and CLN give the networks."""
    from fmclient.config import federation_network, same_network

    for name in ("fedimintd_4_guardians.json", "fedimintd_v1_1_guardian.json"):
        doc = json.loads((Path(__file__).parent / "data" / name).read_text())
        assert federation_network(parse_client_config(doc.get("client_config", doc))) == "regtest"
    assert same_network("mainnet", "bitcoin") and same_network("mainnet", "mainnet")  # CLN, lnd
    assert same_network("regtest", "regtest") and same_network("testnet", "testnet4")
    assert not same_network("regtest", "mainnet") and not same_network("mainnet", "signet")
