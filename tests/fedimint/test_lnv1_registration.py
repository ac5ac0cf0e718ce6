"""LNv1 registration against real fedimintd 0.13 federations of the mainnet shape (ln, lnv2,
meta, mint, wallet), 1 and 4 guardians: the actor's `Lnv1Registration` announces our node, our
module key, route hints, fees and TTL, signed by our key; a real fedimint-cli user lists us
(top-level `list-gateways` and `module ln list-gateways`) with exactly those; a fee change is
seen at once after re-registration (the nonce increases); a forged or stale announcement is
refused by the guardians and changes nothing."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from coincurve import PrivateKey

from fmclient.api import FederationApi, NoConsensus
from fmclient.config import parse_client_config
from fmclient.lnv1_gateway import Announcement
from peers.harness.fedimintd import Federation
from services.actor.lnv1_role import Lnv1Registration

from .conftest import User

NODE = PrivateKey(bytes([7] * 32)).public_key.format()
PEER = PrivateKey(bytes([12] * 32)).public_key.format()


class FakeNode:
    """The extension's answers registration needs: our node and one route hint into it."""

    async def GetNodeInfo(self, req, timeout=None):  # type: ignore[no-untyped-def]
        return SimpleNamespace(pub_key=NODE, alias="fmgw-test")

    async def GetRouteHints(self, req, timeout=None):  # type: ignore[no-untyped-def]
        hop = SimpleNamespace(
            src_node_id=PEER, short_channel_id=(103 << 40) | (1 << 16), base_msat=1000,
            proportional_millionths=1, cltv_expiry_delta=40,
            htlc_minimum_msat=1, htlc_maximum_msat=5_000_000_000,
        )  # fmt: skip
        return SimpleNamespace(route_hints=[SimpleNamespace(hops=[hop])])


def _registration(fed: Federation, key: PrivateKey, fees: dict) -> Lnv1Registration:
    config = parse_client_config(fed.guardians[0].call("client_config"))
    api = FederationApi({i: g.api_url for i, g in enumerate(fed.guardians)})
    return Lnv1Registration(api, config, key, FakeNode(), fees, 7, "http://127.0.0.1:8175", 600)


def _ours(gateways: object, key: PrivateKey) -> dict:
    assert isinstance(gateways, list)
    found = [g for g in gateways if g["info"]["gateway_id"] == key.public_key.format().hex()]
    assert len(found) == 1, gateways
    return found[0]


def _check_listing(user: User, key: PrivateKey, fees: dict) -> None:
    for listing in (user("list-gateways"), user("module", "ln", "list-gateways")):
        g = _ours(listing, key)
        info = g["info"]
        assert info["fees"] == fees
        assert info["mint_channel_id"] == 7
        assert info["gateway_redeem_key"] == key.public_key.format().hex()
        assert info["node_pub_key"] == NODE.hex()
        assert info["api"] == "http://127.0.0.1:8175/"
        assert info["lightning_alias"] == "fmgw-test"
        assert info["route_hints"] == [
            [
                {
                    "src_node_id": PEER.hex(),
                    "short_channel_id": (103 << 40) | (1 << 16),
                    "base_msat": 1000,
                    "proportional_millionths": 1,
                    "cltv_expiry_delta": 40,
                    "htlc_minimum_msat": 1,
                    "htlc_maximum_msat": 5_000_000_000,
                }
            ]
        ]
        assert 0 < g["ttl"]["secs"] <= 600 and g["vetted"] is False
        assert g["auth"]["nonce"] > 1_700_000_000_000  # unix milliseconds


def _run(fed: Federation, tmp_path: Path) -> None:
    key = PrivateKey()
    fees = {"base_msat": 1000, "proportional_millionths": 2500}
    reg = _registration(fed, key, fees)
    user = User(tmp_path / "user")
    user("join", fed.invite_code)

    async def flow() -> None:
        first = await reg.register()
        assert first["fees"] == fees and first["scid"] == 7
        listed = await reg.listed()
        assert {a.info.gateway_id for a in listed} == {key.public_key.format()}
        assert all(a.verify(reg.config.threshold_pub_key) for a in listed)
        assert len(listed) >= reg.api.threshold  # the guardians that agreed keep it
        await asyncio.to_thread(_check_listing, user, key, fees)
        assert reg.last is not None
        old = reg.last

        # a fee change: signed again with a higher nonce, listed at once
        fees.update(base_msat=0, proportional_millionths=5000)
        await reg.register()
        assert reg.last.nonce > old.nonce
        await asyncio.to_thread(_check_listing, user, key, dict(fees))

        # a replay of the older announcement (lower nonce, other settings) is refused, and so
        # is one not signed by the gateway id's key: the listing stays as it is
        forged = Announcement.signed(
            replace(reg.last.info, base_msat=1), 600, PrivateKey().secret,
            reg.config.threshold_pub_key,
        )  # fmt: skip
        for refused in (old, forged):
            with pytest.raises(NoConsensus):
                await reg.api.current_consensus(
                    f"module_{reg.module}_register_gateway", refused.json(), timeout=5
                )
        await asyncio.to_thread(_check_listing, user, key, dict(fees))
        await reg.api.close()

    asyncio.run(flow())


def test_registration_one_guardian(federation1_v1: Federation, tmp_path: Path) -> None:
    _run(federation1_v1, tmp_path)
