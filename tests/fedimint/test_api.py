"""fmclient's API against a real 4-guardian fedimintd federation: the config by threshold
agreement over websockets, a lying guardian (a proxy corrupting its answers) outvoted, and with
two guardians killed a request that waits and completes when one of them returns."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from fmclient.api import FederationApi, NoConsensus
from fmclient.config import parse_client_config
from peers.harness.fedimintd import Federation
from tests.fmclient.guardians import lying_proxy, serving


def _corrupt(method: str, result: object) -> object:
    if method == "federation_id":
        return "00" * 32
    if method == "client_config" and isinstance(result, dict):
        return {**result, "meta": {"federation_name": "a lie"}}
    return result


async def test_config_by_consensus_and_a_liar_is_outvoted(federation4: Federation) -> None:
    endpoints = dict(enumerate(federation4.api_urls))
    api = FederationApi(endpoints)
    try:
        cfg = parse_client_config(await api.current_consensus("client_config"))
        assert cfg.federation_id == federation4.federation_id
    finally:
        await api.close()
    async with contextlib.AsyncExitStack() as stack:
        liars = {
            p: await stack.enter_async_context(serving(lying_proxy(endpoints[p], _corrupt)))
            for p in (1, 2)
        }
        one_liar = FederationApi({**endpoints, 1: liars[1]})
        two_liars = FederationApi({**endpoints, **liars})
        try:
            assert await one_liar.request_peer(1, "federation_id") == "00" * 32  # it lies
            assert await one_liar.current_consensus("federation_id") == federation4.federation_id
            doc = await one_liar.current_consensus("client_config")
            assert parse_client_config(doc).meta["federation_name"] != "a lie"
            with pytest.raises(NoConsensus):  # two of four lying: no threshold
                await two_liars.current_consensus("federation_id", timeout=3)
        finally:
            await one_liar.close()
            await two_liars.close()


async def test_below_the_threshold_a_request_waits_for_a_guardian(
    federation4: Federation,
) -> None:
    api = FederationApi(dict(enumerate(federation4.api_urls)), retry_delay=(0.1, 1.0))
    g2, g3 = federation4.guardians[2], federation4.guardians[3]
    g2.kill()
    g3.kill()
    try:
        started = time.monotonic()
        ask = asyncio.create_task(api.current_consensus("federation_id", timeout=90))
        await asyncio.sleep(2)
        assert not ask.done()  # two of four: waiting
        g3.start()  # one returns (straight into consensus on its data dir)
        assert await ask == federation4.federation_id
        assert time.monotonic() - started > 2
    finally:
        if g2.proc is None or not g2.proc.alive():
            g2.start()
        await api.close()
