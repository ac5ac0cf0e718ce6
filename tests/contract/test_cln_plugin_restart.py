"""The CLN plugin restarted with HTLCs held, through lightningd's plugin protocol
(`cln_harness.FakeLightningd` over a real regtestd), as docs/operating.md says to do it and as
it must not be done:

* `lightning-cli plugin stop` is refused: the plugin says it is not dynamic (stopping it would
  make lightningd answer every held HTLC `continue`: failed, never replayed);
* restarted with lightningd (its hook calls abandoned at shutdown, replayed at start), a held
  forward to a virtual scid and a held hold-invoice HTLC are each offered again once and
  settled once; the payer paid the amounts once, the node got them once;
* a plugin that dies holding an HTLC (kill -9): lightningd fails it at once, definitively; the
  payer keeps its money, the next plugin is not offered it, and completing it is NOT_FOUND.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

import grpc
import httpx
import pytest

from gwproto import gateway_lnrpc_pb2 as pb
from gwproto import gateway_lnrpc_pb2_grpc as pb_grpc
from tests.contract.cln_harness import RpcFailure
from tests.contract.test_cln_hold_invoices import _start, _stop, net  # noqa: F401 - fixture
from tests.regtest.helpers import federation_invoice


async def _balance(http: httpx.AsyncClient, node: str) -> int:
    return int((await http.get(f"/v1/nodes/{node}")).json()["lightning_balance_msat"])


def _pay(http: httpx.AsyncClient, payer: str, bolt11: str) -> asyncio.Task:
    body = {"bolt11": bolt11, "timeout_s": 90}
    return asyncio.create_task(http.post(f"/v1/nodes/{payer}/pay", json=body, timeout=100))


async def _settle(stub: pb_grpc.GatewayLightningStub, htlc: pb.InterceptedHtlc, pre: bytes) -> None:
    req = pb.CompleteHtlcRequest(incoming_chan_id=htlc.incoming_chan_id, htlc_id=htlc.htlc_id)
    req.settle.preimage = pre
    await stub.CompleteHtlc(req, timeout=10)


async def test_restarted_with_lightningd_settles_each_held_htlc_once(regtestd, net) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    http, node, workdir = net
    payer = f"alice{node}"
    harness, channel = await _start(regtestd, node, workdir)
    assert harness.manifest["dynamic"] is False
    with pytest.raises(RpcFailure, match="cannot be managed when lightningd is up"):
        harness.plugin_stop()
    stub = pb_grpc.GatewayLightningStub(channel)
    hold_pre, fwd_pre = os.urandom(32), os.urandom(32)
    inv = await stub.CreateInvoice(
        pb.CreateInvoiceRequest(
            payment_hash=hashlib.sha256(hold_pre).digest(), amount_msat=33_000, expiry_secs=600
        ),
        timeout=10,
    )
    paid_before, got_before = await _balance(http, payer), await _balance(http, node)
    gw_key = (await stub.GetNodeInfo(pb.GetNodeInfoRequest(), timeout=10)).pub_key.hex()
    pays = [
        _pay(http, payer, inv.invoice),
        _pay(http, payer, federation_invoice(gw_key, 44_000, fwd_pre, scid=9)),
    ]
    stream = stub.RouteHtlcs(pb.RouteHtlcsRequest())
    first = {(await asyncio.wait_for(stream.read(), 20)).payment_hash for _ in range(2)}
    assert first == {hashlib.sha256(p).digest() for p in (hold_pre, fwd_pre)}
    stream.cancel()
    await _stop(harness, channel)  # lightningd stops holding both: nothing answered

    harness, channel = await _start(regtestd, node, workdir)  # and starts: replayed
    try:
        stub = pb_grpc.GatewayLightningStub(channel)
        stream = stub.RouteHtlcs(pb.RouteHtlcsRequest())
        again = [await asyncio.wait_for(stream.read(), 20) for _ in range(2)]
        by_hash = {h.payment_hash: h for h in again}
        assert set(by_hash) == first
        for pre in (hold_pre, fwd_pre):
            await _settle(stub, by_hash[hashlib.sha256(pre).digest()], pre)
        results = [(await asyncio.wait_for(p, 30)).json() for p in pays]
        assert [r["status"] for r in results] == ["succeeded", "succeeded"], results
        assert {r["preimage"] for r in results} == {hold_pre.hex(), fwd_pre.hex()}
        for h in again:  # exactly once
            with pytest.raises(grpc.aio.AioRpcError) as twice:
                await _settle(stub, h, hold_pre if h.hold_invoice else fwd_pre)
            assert twice.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(TimeoutError):  # nothing more is offered
            await asyncio.wait_for(stream.read(), 1.5)
        stream.cancel()
        assert paid_before - await _balance(http, payer) == 33_000 + 44_000
        assert await _balance(http, node) - got_before == 33_000 + 44_000
    finally:
        await _stop(harness, channel)


async def test_a_plugin_dying_with_an_htlc_held_fails_it_once(regtestd, net) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    http, node, workdir = net
    payer = f"alice{node}"
    harness, channel = await _start(regtestd, node, workdir)
    stub = pb_grpc.GatewayLightningStub(channel)
    gw_key = (await stub.GetNodeInfo(pb.GetNodeInfoRequest(), timeout=10)).pub_key.hex()
    paid_before, got_before = await _balance(http, payer), await _balance(http, node)
    pre = os.urandom(32)
    pay = _pay(http, payer, federation_invoice(gw_key, 25_000, pre, scid=9))
    stream = stub.RouteHtlcs(pb.RouteHtlcsRequest())
    held = await asyncio.wait_for(stream.read(), 20)
    assert held.payment_hash == hashlib.sha256(pre).digest()
    stream.cancel()
    await channel.close()
    await asyncio.to_thread(harness.kill_plugin)  # lightningd: "continue" -> unknown scid
    result = (await asyncio.wait_for(pay, 30)).json()
    assert result["status"] == "failed" and result["failure"] == "unknown_next_peer", result
    assert await _balance(http, payer) == paid_before and await _balance(http, node) == got_before

    harness, channel = await _start(regtestd, node, workdir)
    try:
        stub = pb_grpc.GatewayLightningStub(channel)
        stream = stub.RouteHtlcs(pb.RouteHtlcsRequest())
        with pytest.raises(TimeoutError):  # not replayed: lightningd failed it
            await asyncio.wait_for(stream.read(), 1.5)
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await _settle(stub, held, pre)
        assert late.value.code() == grpc.StatusCode.NOT_FOUND
        stream.cancel()
    finally:
        await _stop(harness, channel)
