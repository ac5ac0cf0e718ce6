"""lnd's HtlcInterceptor rules, checked the same way against the real lnd and the stand-in (so
the stand-in answers as lnd does), with a bare routerrpc client:

* no interceptor attached (requireinterceptor): a new HTLC is failed at once,
  temporary_channel_failure;
* one interceptor at a time: a second stream ends with UNKNOWN "interceptor already exists";
* FAIL with a code lnd does not support ends the stream (INVALID_ARGUMENT "unsupported failure
  code"), the HTLC stays held and is offered again on the next stream;
* FAIL with TEMPORARY_CHANNEL_FAILURE fails it back: the payer sees temporary_channel_failure.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import grpc
import pytest

from gwproto import lnd_lightning_pb2 as ln
from gwproto import lnd_router_pb2 as router
from gwproto import lnd_router_pb2_grpc as router_grpc
from services.lnrpc.lnd_connection import Macaroon
from tests.contract.lnd_standin import LndStandIn
from tests.contract.nets import LndNet, RegtestNet
from tests.regtest.helpers import federation_invoice


def _channel(host: str, cert: bytes, macaroon: bytes) -> grpc.aio.Channel:
    creds = grpc.composite_channel_credentials(
        grpc.ssl_channel_credentials(root_certificates=cert),
        grpc.metadata_call_credentials(Macaroon(macaroon.hex())),
    )
    return grpc.aio.secure_channel(host.replace("127.0.0.1", "localhost"), creds)


@pytest.fixture(params=["lnd-standin", "lnd"])
async def lnd(request) -> AsyncIterator[tuple[router_grpc.RouterStub, RegtestNet | LndNet]]:  # type: ignore[no-untyped-def]
    standin = None
    net: RegtestNet | LndNet
    if request.param == "lnd":
        world = request.getfixturevalue("lnd_world")
        gw = world.node("gateway")
        net = LndNet(world)
        channel = _channel(gw.rpc_host, gw.tls_cert.read_bytes(), gw.macaroon.read_bytes())
    else:
        regtestd = request.getfixturevalue("regtestd")
        node = f"gw{os.urandom(3).hex()}"
        net = RegtestNet(regtestd.info, node)
        await net.setup()
        standin = LndStandIn(regtestd.info, node)
        host = await standin.start()
        channel = _channel(host, standin.cert, standin.macaroon)
    try:
        yield router_grpc.RouterStub(channel), net
    finally:
        await channel.close()
        await net.close()
        if standin is not None:
            await standin.stop()


async def test_interceptor_rules(lnd) -> None:  # type: ignore[no-untyped-def]
    stub, net = lnd
    gw_key = await net.gateway_pubkey()
    # nobody attached: failed at once
    refused = await asyncio.wait_for(
        net.pay(federation_invoice(gw_key, 15_000, os.urandom(32), scid=11)), 60
    )
    assert refused["status"] == "failed" and refused["failure"] == "temporary_channel_failure"

    out: asyncio.Queue[router.ForwardHtlcInterceptResponse] = asyncio.Queue()

    async def responses() -> AsyncIterator[router.ForwardHtlcInterceptResponse]:
        while True:
            yield await out.get()

    first = stub.HtlcInterceptor(responses())
    await asyncio.sleep(1.0)  # attached (lnd says nothing until an HTLC comes)
    second = stub.HtlcInterceptor()
    with pytest.raises(grpc.aio.AioRpcError) as dup:
        await asyncio.wait_for(second.read(), 10)
    assert dup.value.code() == grpc.StatusCode.UNKNOWN
    assert "interceptor already exists" in (dup.value.details() or "")

    pay = asyncio.create_task(net.pay(federation_invoice(gw_key, 16_000, os.urandom(32), scid=11)))
    req = await asyncio.wait_for(first.read(), 60)
    assert req.outgoing_requested_chan_id == 11 and req.outgoing_amount_msat == 16_000
    out.put_nowait(
        router.ForwardHtlcInterceptResponse(
            incoming_circuit_key=req.incoming_circuit_key,
            action=router.FAIL,
            failure_code=ln.Failure.INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS,
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await asyncio.wait_for(first.read(), 10)
    assert ended.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unsupported failure code" in (ended.value.details() or "")
    assert not pay.done()  # still held

    again = stub.HtlcInterceptor()
    replay = await asyncio.wait_for(again.read(), 30)
    assert replay.incoming_circuit_key == req.incoming_circuit_key
    await again.write(
        router.ForwardHtlcInterceptResponse(
            incoming_circuit_key=req.incoming_circuit_key,
            action=router.FAIL,
            failure_code=ln.Failure.TEMPORARY_CHANNEL_FAILURE,
        )
    )
    failed = await asyncio.wait_for(pay, 60)
    assert failed["status"] == "failed" and failed["failure"] == "temporary_channel_failure"
    again.cancel()
