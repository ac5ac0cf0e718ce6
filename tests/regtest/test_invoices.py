"""Real BOLT11 invoices: signed by the node key, decodable by any BOLT11 decoder."""

from __future__ import annotations

import hashlib

import pytest
from bolt11 import decode

from devworld.regtest.app import World
from devworld.regtest.errors import LnError
from devworld.regtest.lightning import scid_str

from .conftest import node


async def test_invoice_round_trip(world: World) -> None:
    node(world, "carol", fund_sat=0)
    carol = world.net.nodes["carol"]
    gw_key = "02" + "11" * 32
    virtual_scid = 7
    inv = world.net.create_invoice(
        "carol", 123_456, description="coffee", expiry_s=900, min_final_cltv=40,
        route_hints=[[{"pubkey": gw_key, "scid": virtual_scid, "base_msat": 0, "ppm": 10_000, "cltv_delta": 30}]],
    )  # fmt: skip
    d = decode(inv["bolt11"])
    assert d.currency == "bcrt" and d.amount_msat == 123_456 and d.description == "coffee"
    assert d.payee == carol.pubkey  # the signature recovers the node's key
    assert (
        d.payment_hash
        == inv["payment_hash"]
        == hashlib.sha256(bytes.fromhex(inv["preimage"])).hexdigest()
    )
    assert d.payment_secret and d.payment_secret != inv["preimage"]
    assert d.expiry == 900 and d.min_final_cltv_expiry == 40
    (hint,) = d.route_hints
    (route,) = hint.routes
    assert (route.public_key, route.short_channel_id, route.ppm_fee, route.cltv_expiry_delta) == (
        gw_key,
        scid_str(7),
        10_000,
        30,
    )
    tampered = (
        inv["bolt11"][:-20] + ("q" if inv["bolt11"][-20] != "q" else "p") + inv["bolt11"][-19:]
    )
    with pytest.raises(Exception):  # noqa: B017 - any decoding failure: checksum or signature
        assert decode(tampered).payee == carol.pubkey and False


async def test_hold_invoices_and_bad_input(world: World) -> None:
    node(world, "carol", fund_sat=0)
    h = hashlib.sha256(b"x" * 32).hexdigest()
    inv = world.net.create_invoice("carol", 1000, payment_hash=h)
    assert inv["hold"] and inv["preimage"] is None and decode(inv["bolt11"]).payment_hash == h
    with pytest.raises(LnError, match="exists"):
        world.net.create_invoice("carol", 1000, payment_hash=h)
    for kwargs in ({"amount_msat": 0}, {"amount_msat": -5}, {"amount_msat": 10, "expiry_s": 0},
                   {"amount_msat": 10, "payment_hash": "zz"}, {"amount_msat": 10, "preimage": b"short"}):  # fmt: skip
        with pytest.raises(LnError):
            world.net.create_invoice("carol", **kwargs)
    with pytest.raises(LnError, match="no node"):
        world.net.create_invoice("nobody", 1000)
