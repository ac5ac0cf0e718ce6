"""The LND backend's interceptor on a real lnd (`--requireinterceptor`), where the stand-in
once differed from it:

* ordinary forwards over the node's own channels pass at once, before anyone asked for route
  hints (the node's channels are learned when the interceptor attaches);
* while no interceptor is attached, lnd fails a *new* HTLC at once with
  temporary_channel_failure, and keeps one it had already offered, offering it again to the
  next interceptor;
* the extension's health is SERVING only while its interceptor is attached (a second
  extension on the same node is refused by lnd and stays NOT_SERVING);
* reconnecting leaves no failed task behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gwcore.extension import ExtensionEndpoint
from gwproto import gateway_lnrpc_pb2 as pb
from gwproto import gateway_lnrpc_pb2_grpc as pb_grpc
from peers.harness.lnd import Lnd, LndWorld
from services.lnrpc.lnd import LndBackend
from services.lnrpc.server import SERVICE_NAME, ExtensionServer
from tests.contract.nets import LndNet
from tests.regtest.helpers import federation_invoice

SERVING = health_pb2.HealthCheckResponse.SERVING


@asynccontextmanager
async def extension(gw: Lnd) -> AsyncIterator[tuple[ExtensionServer, grpc.aio.Channel]]:
    backend = LndBackend.from_files(
        gw.rpc_host.replace("127.0.0.1", "localhost"), gw.tls_cert, gw.macaroon
    )
    base = tempfile.mkdtemp(prefix="fmgw-x-")
    server = ExtensionServer(backend, f"unix:{base}/lnrpc/extension.sock", health_interval_s=0.1)
    await server.start()
    channel = ExtensionEndpoint.parse(server.listen).channel()
    try:
        yield server, channel
    finally:
        await channel.close()
        await server.stop(0.2)
        shutil.rmtree(base, ignore_errors=True)


async def health(channel: grpc.aio.Channel) -> int:
    req = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
    return int((await health_pb2_grpc.HealthStub(channel).Check(req, timeout=5)).status)


async def wait_health(channel: grpc.aio.Channel, want: int, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.1)):
        if await health(channel) == want:
            return
        await asyncio.sleep(0.1)
    assert await health(channel) == want


async def test_forwards_and_the_interceptor_away(
    lnd_world: LndWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    net, gw = LndNet(lnd_world), lnd_world.node("gateway")
    gw_key = gw.pubkey
    async with extension(gw) as (server, channel):
        await wait_health(channel, SERVING)
        # an ordinary payment alice -> gateway -> bob: resumed by the extension at once
        inv = await net.invoice(5_000_000)
        paid = await asyncio.wait_for(net.pay(inv["bolt11"]), 90)
        assert paid["status"] == "succeeded" and paid["preimage"] == inv["preimage"]
        assert server.hub.held() == []
        # an HTLC for a virtual channel, offered to the gateway and left unanswered
        stream = pb_grpc.GatewayLightningStub(channel).RouteHtlcs(pb.RouteHtlcsRequest())
        pre = os.urandom(32)
        held_pay = asyncio.create_task(
            net.pay(federation_invoice(gw_key, 20_000, pre, scid=9), timeout_s=120)
        )
        htlc = await asyncio.wait_for(stream.read(), 60)
        assert htlc.payment_hash == hashlib.sha256(pre).digest()
        stream.cancel()
    # the extension is gone: lnd fails a new HTLC at once, keeps the one it had offered
    refused = await asyncio.wait_for(
        net.pay(federation_invoice(gw_key, 20_000, os.urandom(32), scid=9)), 60
    )
    assert refused["status"] == "failed"
    assert refused["failure"] == "temporary_channel_failure"
    assert not held_pay.done()
    async with extension(gw) as (server, channel):
        await wait_health(channel, SERVING)
        stream = pb_grpc.GatewayLightningStub(channel).RouteHtlcs(pb.RouteHtlcsRequest())
        again = await asyncio.wait_for(stream.read(), 30)
        assert (again.incoming_chan_id, again.htlc_id) == (htlc.incoming_chan_id, htlc.htlc_id)
        req = pb.CompleteHtlcRequest(incoming_chan_id=again.incoming_chan_id, htlc_id=again.htlc_id)
        req.settle.preimage = pre
        await pb_grpc.GatewayLightningStub(channel).CompleteHtlc(req, timeout=10)
        settled = await asyncio.wait_for(held_pay, 60)
        assert settled["status"] == "succeeded" and settled["preimage"] == pre.hex()
        # a second extension on the same node: lnd refuses its interceptor
        async with extension(gw) as (_, second):
            await asyncio.sleep(1.5)
            assert await health(second) != SERVING
            assert await health(channel) == SERVING
        stream.cancel()
    troubles = [
        r.getMessage()
        for r in caplog.records
        if "never retrieved" in r.getMessage() or "asynchronous generator" in r.getMessage()
    ]
    assert troubles == []


async def attached_elsewhere(gw: Lnd) -> bool:
    """Is an HtlcInterceptor attached to `gw`? lnd refuses a second one at once, so a probe
    stream of our own is refused (attached) or stays open (nobody): then it is closed."""
    probe = LndBackend.from_files(gw.rpc_host, gw.tls_cert, gw.macaroon)
    await probe.start()
    call = probe.router.HtlcInterceptor()
    try:
        await asyncio.wait_for(call.read(), 1.5)
    except grpc.aio.AioRpcError:
        return True
    except TimeoutError:
        return False
    finally:
        call.cancel()
        await probe.close()
    return True  # lnd sent something: it was not refused, but not idle either


@asynccontextmanager
async def without_requireinterceptor(world: LndWorld) -> AsyncIterator[Lnd]:
    """The gateway's lnd restarted without `--requireinterceptor` (an LNv2-only operator's),
    and restarted with it again afterwards, its channels active again each time."""
    gw = world.node("gateway")
    await asyncio.to_thread(gw.reconfigure, drop=("--requireinterceptor",))
    try:
        await asyncio.to_thread(world.wait_graph, 2)
        yield gw
    finally:
        await asyncio.to_thread(gw.reconfigure, add=("--requireinterceptor",))
        await asyncio.to_thread(world.wait_graph, 2)


async def test_the_interceptor_only_while_wanted(lnd_world: LndWorld) -> None:
    """lnd without requireinterceptor: the extension attaches no interceptor until the gateway
    wants forwards (InterceptForwards), is SERVING all along, and lnd fails an HTLC for a virtual
    channel itself (unknown_next_peer) while nobody wants it; wanted, the interceptor is
    attached at once and such an HTLC is held and settled through the gateway; unwanted, it is
    released. With requireinterceptor (the other tests here) it stays attached throughout."""
    net = LndNet(lnd_world)
    async with without_requireinterceptor(lnd_world) as gw, extension(gw) as (server, channel):
        stub = pb_grpc.GatewayLightningStub(channel)
        await wait_health(channel, SERVING)
        assert not await attached_elsewhere(gw)
        idle = await stub.InterceptForwards(pb.InterceptForwardsRequest(), timeout=10)
        assert (idle.intercepting, idle.node_requires) == (True, False)
        inv = await net.invoice(4_000_000)  # ordinary forwards pass without us
        paid = await asyncio.wait_for(net.pay(inv["bolt11"]), 90)
        assert paid["status"] == "succeeded" and paid["preimage"] == inv["preimage"]
        refused = await asyncio.wait_for(
            net.pay(federation_invoice(gw.pubkey, 20_000, os.urandom(32), scid=9)), 60
        )
        assert refused["status"] == "failed"
        assert refused["failure"] == "unknown_next_peer", refused
        assert server.hub.held() == []

        wanted = await stub.InterceptForwards(pb.InterceptForwardsRequest(enabled=True), timeout=10)
        assert (wanted.intercepting, wanted.node_requires) == (True, False)
        assert await health(channel) == SERVING
        assert await attached_elsewhere(gw)
        stream = stub.RouteHtlcs(pb.RouteHtlcsRequest())
        pre = os.urandom(32)
        held_pay = asyncio.create_task(
            net.pay(federation_invoice(gw.pubkey, 21_000, pre, scid=9), timeout_s=120)
        )
        htlc = await asyncio.wait_for(stream.read(), 60)
        # the hint's hop from us costs nothing: in = out = the invoice's amount
        assert (htlc.payment_hash, htlc.short_channel_id) == (hashlib.sha256(pre).digest(), 9)
        assert (htlc.incoming_amount_msat, htlc.outgoing_amount_msat) == (21_000, 21_000)
        req = pb.CompleteHtlcRequest(incoming_chan_id=htlc.incoming_chan_id, htlc_id=htlc.htlc_id)
        req.settle.preimage = pre
        await stub.CompleteHtlc(req, timeout=10)
        settled = await asyncio.wait_for(held_pay, 60)
        assert settled["status"] == "succeeded" and settled["preimage"] == pre.hex()
        stream.cancel()

        released = await stub.InterceptForwards(pb.InterceptForwardsRequest(), timeout=10)
        assert released.intercepting
        await asyncio.sleep(0.5)
        assert not await attached_elsewhere(gw)
        assert await health(channel) == SERVING
