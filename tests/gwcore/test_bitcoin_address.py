"""Addresses against Bitcoin Core's own vectors (tests/data/bitcoin_core_key_io.json) and the
mistakes people make: a typo, the wrong network, the wrong checksum kind, odd program lengths."""

from __future__ import annotations

import json
from pathlib import Path

import coincurve
import pytest
from embit.bech32 import Encoding, bech32_encode, convertbits

from gwcore import bitcoin_address as ba

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "bitcoin_core_key_io.json").read_text())
CHAINS = {"main": "mainnet", "testnet4": "testnet", "signet": "signet", "regtest": "regtest"}


@pytest.mark.parametrize(("text", "script", "chain"), VECTORS["valid"])
def test_bitcoin_cores_valid_addresses(text: str, script: str, chain: str) -> None:
    net = CHAINS[chain]
    spk = bytes.fromhex(script)
    if ba.script_type(spk) == "witness_unknown":  # valid, but anyone could spend it: refused
        with pytest.raises(ba.AddressError, match="not a standard address type"):
            ba.parse_address(text, net)
        return
    for spelling in {text, text.upper() if ba.parse_address(text, None).kind[1] == "w" else text}:
        addr = ba.parse_address(spelling, net)
        assert addr.script == spk and addr.text == text
        assert ba.address_from_script(spk, net) == text
    other = "regtest" if net == "mainnet" else "mainnet"
    with pytest.raises(ba.AddressError, match="wrong network"):
        ba.parse_address(text, other)


@pytest.mark.parametrize("text", VECTORS["invalid"])
def test_bitcoin_cores_invalid_addresses(text: str) -> None:
    for net in (*ba.NETWORKS, None):
        with pytest.raises(ba.AddressError):
            ba.parse_address(text, net)


def _segwit(hrp: str, version: int, program: bytes, encoding: int) -> str:
    return bech32_encode(encoding, hrp, [version, *convertbits(program, 8, 5)])


def test_each_mistake_is_named() -> None:
    good = "bcrt1qdavt4j2sd7dlhqsavtnfxvzppw6k7qy97tmnu9"
    typo = good[:-3] + ("x" if good[-3] != "x" else "y") + good[-2:]
    cases = {
        typo: "checksum",
        "bcrt1qzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz": "checksum",
        "mfhE6jAUwjUDNZhaX1PAsDTKfneQF2Nshd": "base58 checksum",
        "1FsSia9rv4NeEwvJ2GvXrX7LyxYspbN2mo": "mainnet address, not a regtest one",
        "bc1qvyq0cc6rahyvsazfdje0twl7ez82ndmuac2lhv": "wrong network",
        good[:10] + good[10:].upper(): "mixed upper and lower case",
        " " + good: "whitespace",
        good + "\n": "whitespace",
        "": "empty",
        "0" * 91: "too long",
        "lnbcrt1pjunk": "Lightning invoice",
        _segwit("fed", 0, b"\x11" * 20, Encoding.BECH32): "unknown address prefix",
        "hello": "neither base58 nor bech32",
        _segwit("bcrt", 0, b"\x11" * 20, Encoding.BECH32M): "bech32, not bech32m",
        _segwit("bcrt", 1, b"\x11" * 32, Encoding.BECH32): "bech32m, not bech32",
        _segwit("bcrt", 0, b"\x11" * 25, Encoding.BECH32): "20 or 32 bytes, not 25",
        _segwit("bcrt", 1, b"\x11" * 20, Encoding.BECH32M): "not a standard address type",
        _segwit("bcrt", 2, b"\x11" * 32, Encoding.BECH32M): "not a standard address type",
        _segwit("bcrt", 1, b"\x11" * 41, Encoding.BECH32M): "2 to 40 bytes",
    }
    for text, reason in cases.items():
        with pytest.raises(ba.AddressError, match=reason):
            ba.parse_address(text, "regtest")
    with pytest.raises(ba.AddressError, match="string"):
        ba.parse_address(12345, "regtest")


def test_addresses_the_regtest_wallets_make_are_parsed_back() -> None:
    pub = coincurve.PrivateKey().public_key.format()
    xonly = pub[1:]
    made = {
        "p2pkh": ba.p2pkh(pub),
        "p2sh": ba.p2sh_p2wpkh(pub),
        "p2wpkh": ba.p2wpkh(pub),
        "p2wsh": ba.p2wsh(b"\x51"),
        "p2tr": ba.p2tr(xonly),
    }
    for kind, text in made.items():
        addr = ba.parse_address(text)
        assert addr.kind == kind and ba.address_from_script(addr.script) == text
        assert ba.script_type(addr.script) == addr.script_type
        assert addr.dust_sat == ba.DUST_SAT[kind]
    assert made["p2pkh"][0] in "mn" and made["p2sh"][0] == "2"
    assert ba.script_asm(ba.parse_address(made["p2pkh"]).script).startswith("OP_DUP OP_HASH160")
    assert ba.script_type(b"\x6a\x01\x00") == "nulldata"
    assert ba.address_from_script(b"\x6a\x01\x00") is None
