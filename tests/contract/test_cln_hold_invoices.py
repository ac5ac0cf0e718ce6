"""The CLN plugin's hold invoices beyond the shared contract: they outlive the plugin (records in
lightningd's datastore, held HTLCs replayed to the hook at start), and the plugin's own checks of
a final-hop HTLC (payment secret, amount) before it holds one.

lightningd is `cln_harness.FakeLightningd` over a real regtestd; the gateway's side is the
extension's gRPC service, as in test_gateway_lightning.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest

from gwcore.extension import ExtensionEndpoint
from gwproto import gateway_lnrpc_pb2 as pb
from gwproto import gateway_lnrpc_pb2_grpc as pb_grpc
from tests.contract.cln_harness import FakeLightningd, final_payload, scid_str


@pytest.fixture
async def net(regtestd) -> AsyncIterator[tuple[httpx.AsyncClient, str, Path]]:  # type: ignore[no-untyped-def]
    """The gateway's node `gw…` with a channel from `alice…` to it; its lightning dir."""
    info = regtestd.info
    http = httpx.AsyncClient(
        base_url=info["api_url"], headers={"Authorization": f"Bearer {info['api_token']}"}
    )
    node = f"gw{os.urandom(3).hex()}"
    for body in ({"name": node, "hold_unknown_scids": True}, {"name": f"alice{node}"}):
        assert (await http.post("/v1/nodes", json=body)).status_code == 201
    await http.post(f"/v1/nodes/alice{node}/fund", json={"amount_sat": 3_000_000})
    r = await http.post(
        "/v1/channels", json={"from": f"alice{node}", "to": node, "capacity_sat": 1_000_000}
    )
    assert r.status_code == 201
    workdir = Path(tempfile.gettempdir(), f"fmgw-cln-{node}")
    yield http, node, workdir
    await http.aclose()
    shutil.rmtree(workdir, ignore_errors=True)


async def _start(regtestd, node: str, workdir: Path) -> tuple[FakeLightningd, grpc.aio.Channel]:  # type: ignore[no-untyped-def]
    listen = f"unix:{workdir}/lnrpc/extension.sock"
    harness = FakeLightningd(regtestd.info, node, workdir, listen)
    await asyncio.to_thread(harness.start)
    return harness, ExtensionEndpoint.parse(listen).channel()


async def _stop(harness: FakeLightningd, channel: grpc.aio.Channel) -> None:
    await channel.close()
    assert await asyncio.to_thread(harness.shutdown) == 0
    assert harness.stdout_garbage == []


async def test_hold_invoice_outlives_the_plugin(regtestd, net) -> None:  # type: ignore[no-untyped-def]
    """An HTLC held when lightningd (and the plugin) stop is offered again at the next start and
    can be settled then; the invoice is still known (idempotent, and conflicting requests are
    refused) because its record is in lightningd's datastore."""
    http, node, workdir = net
    harness, channel = await _start(regtestd, node, workdir)
    s = pb_grpc.GatewayLightningStub(channel)
    pre = os.urandom(32)
    req = pb.CreateInvoiceRequest(
        payment_hash=hashlib.sha256(pre).digest(), amount_msat=30_000, expiry_secs=600, memo="r"
    )
    inv = (await s.CreateInvoice(req, timeout=10)).invoice
    pay = asyncio.create_task(
        http.post(f"/v1/nodes/alice{node}/pay", json={"bolt11": inv, "timeout_s": 60}, timeout=70)
    )
    stream = s.RouteHtlcs(pb.RouteHtlcsRequest())
    first = await asyncio.wait_for(stream.read(), 10)
    assert first.hold_invoice and first.payment_hash == req.payment_hash
    stream.cancel()
    await _stop(harness, channel)  # not completed: lightningd goes down holding it

    harness, channel = await _start(regtestd, node, workdir)
    try:
        s = pb_grpc.GatewayLightningStub(channel)
        assert (await s.CreateInvoice(req, timeout=10)).invoice == inv
        with pytest.raises(grpc.aio.AioRpcError) as exists:
            other = pb.CreateInvoiceRequest(
                payment_hash=req.payment_hash, amount_msat=31_000, expiry_secs=600
            )
            await s.CreateInvoice(other, timeout=10)
        assert exists.value.code() == grpc.StatusCode.ALREADY_EXISTS
        stream = s.RouteHtlcs(pb.RouteHtlcsRequest())
        again = await asyncio.wait_for(stream.read(), 10)  # replayed to the hook at start
        assert again.hold_invoice and (again.incoming_chan_id, again.htlc_id) == (
            first.incoming_chan_id,
            first.htlc_id,
        )
        done = pb.CompleteHtlcRequest(
            incoming_chan_id=again.incoming_chan_id, htlc_id=again.htlc_id
        )
        done.settle.preimage = pre
        await s.CompleteHtlc(done, timeout=10)
        paid = (await asyncio.wait_for(pay, 15)).json()
        assert paid["status"] == "succeeded" and paid["preimage"] == pre.hex()
        stream.cancel()
    finally:
        await _stop(harness, channel)


async def test_final_hop_checks_of_the_plugin(regtestd, net) -> None:  # type: ignore[no-untyped-def]
    """HTLCs lightningd hands to the hook for one of the plugin's hold invoices: a wrong payment
    secret or too small an amount is failed at once with incorrect_or_unknown_payment_details
    (htlc_msat and height in the message); a hash the plugin has no hold invoice for goes on to
    lightningd (continue)."""
    http, node, workdir = net
    harness, channel = await _start(regtestd, node, workdir)
    try:
        s = pb_grpc.GatewayLightningStub(channel)
        ph = os.urandom(32)
        req = pb.CreateInvoiceRequest(payment_hash=ph, amount_msat=20_000, expiry_secs=600)
        await s.CreateInvoice(req, timeout=10)
        height = (await http.get("/v1/info")).json()["block_height"]
        root = (await asyncio.to_thread(harness.datastore.listdatastore, {}))["datastore"]
        assert root == [{"key": ["fm-gateway"]}]  # the plugin's records live under its name

        def htlc_call(payment_hash: bytes, amount: int, secret: str) -> dict:
            expiry = height + 40
            onion = {
                "payload": final_payload(amount, expiry, secret, amount),
                "type": "tlv",
                "forward_msat": amount,
                "outgoing_cltv_value": expiry,
                "total_msat": amount,
                "payment_secret": secret,
                "next_onion": "00" * 1366,
                "shared_secret": "00" * 32,
            }
            htlc = {
                "short_channel_id": scid_str((height << 40) | 1),
                "id": 7,
                "amount_msat": amount,
                "cltv_expiry": expiry,
                "cltv_expiry_relative": 40,
                "payment_hash": payment_hash.hex(),
            }
            return harness.request("htlc_accepted", {"onion": onion, "htlc": htlc})

        wrong_secret = await asyncio.to_thread(htlc_call, ph, 20_000, os.urandom(32).hex())
        assert wrong_secret == {
            "result": "fail",
            "failure_message": f"400f{20_000:016x}{height:08x}",
        }
        record = await asyncio.to_thread(
            harness.datastore.listdatastore, {"key": ["fm-gateway", "holdinvoices", ph.hex()]}
        )
        own_secret = json.loads(record["datastore"][0]["string"])["payment_secret"]
        short = await asyncio.to_thread(htlc_call, ph, 19_999, own_secret)
        assert short["result"] == "fail" and short["failure_message"].startswith("400f")
        unknown = await asyncio.to_thread(htlc_call, os.urandom(32), 20_000, own_secret)
        assert unknown == {"result": "continue"}
    finally:
        await _stop(harness, channel)
