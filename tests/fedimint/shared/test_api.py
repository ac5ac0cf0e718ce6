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
from fmclient.invite import InviteCode, parse_invite
from fmclient.join import JoinError, download_config
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


async def test_join_by_invite_checks_the_config(federation4: Federation) -> None:
    """The config is taken from the invite's guardian only if its id is the invite's, then
    agreed by all guardians; a guardian of the invite that lies is passed over."""
    cfg = await download_config(federation4.invite_code)
    assert cfg.federation_id == federation4.federation_id and cfg.module_id("mintv2") == 2
    invite = parse_invite(federation4.invite_code)

    def other_guardians(method: str, result: object) -> object:
        if method == "client_config" and isinstance(result, dict):  # a config of its own making
            ends = {**result["api_endpoints"], "3": {"url": "ws://127.0.0.1:9/", "name": "evil"}}
            return {**result, "api_endpoints": ends}
        return result

    async with contextlib.AsyncExitStack() as stack:
        liar = await stack.enter_async_context(
            serving(lying_proxy(federation4.api_urls[1], other_guardians))
        )
        meta_liar = await stack.enter_async_context(
            serving(lying_proxy(federation4.api_urls[1], _corrupt))
        )
        # an invite whose first guardian serves another federation's config, then an honest one
        mixed = InviteCode(invite.federation_id, {1: liar, 0: federation4.api_urls[0]})
        assert (await download_config(mixed)).federation_id == federation4.federation_id
        with pytest.raises(JoinError, match="no guardian of the invite"):
            await download_config(InviteCode(invite.federation_id, {1: liar}))
        # a guardian lying about the rest of the config is outvoted by all of them
        agreed = await download_config(InviteCode(invite.federation_id, {1: meta_liar}))
        assert agreed.meta["federation_name"] != "a lie"
    wrong = InviteCode("ab" * 32, invite.peers)  # an invite naming another federation
    with pytest.raises(JoinError):
        await download_config(wrong)
