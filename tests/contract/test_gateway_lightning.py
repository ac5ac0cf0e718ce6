"""The GatewayLightning contract, one suite for every backend (parametrized by `backend`).

The regtest world runs for real (regtestd process): alice pays through the gateway's node and
bob is paid by it. The extension's gRPC server runs in the test's loop on a unix socket of its
own (the default: tests/contract/test_extension_access.py covers TCP with mutual TLS) and is
reached through the gateway's own channel (`gwcore.extension`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from bolt11 import decode as bolt11_decode
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gwcore.extension import ExtensionEndpoint
from gwproto import gateway_lnrpc_pb2 as pb
from gwproto import gateway_lnrpc_pb2_grpc as pb_grpc
from services.lnrpc.lnd import LndBackend
from services.lnrpc.server import SERVICE_NAME, ExtensionServer
from services.lnrpc.sim import SimBackend
from tests.contract.cln_harness import FakeLightningd
from tests.contract.lnd_standin import LndStandIn
from tests.contract.nets import LndNet, RegtestNet
from tests.regtest.helpers import federation_invoice

# sim, cln (harness) and lnd-standin answer from the simulated world; lnd is a real lnd
BACKENDS = ["sim", "cln", "lnd-standin", "lnd"]
# what the payer sees when the gateway cancels an intercepted HTLC: lnd's interceptor fails
# forwards with temporary_channel_failure only (any other code ends its stream)
CANCEL_FAILURE = {
    "sim": "incorrect_or_unknown_payment_details",
    "cln": "incorrect_or_unknown_payment_details",
    "lnd-standin": "temporary_channel_failure",
    "lnd": "temporary_channel_failure",
}


@pytest.fixture
def socket_address() -> Iterator[str]:
    """`unix:` address of a socket in a fresh folder (short: unix socket paths are bounded)."""
    base = tempfile.mkdtemp(prefix="fmgw-x-")
    yield f"unix:{base}/lnrpc/extension.sock"
    shutil.rmtree(base, ignore_errors=True)


Stub = tuple[pb_grpc.GatewayLightningStub, RegtestNet | LndNet, str]


async def _until_serving(channel: grpc.aio.Channel, timeout: float = 30) -> None:
    """The extension's health SERVING: ready for HTLCs (for LND: its interceptor attached; an
    HTLC sent before that is failed by a node that requires an interceptor, as lnd does)."""
    health = health_pb2_grpc.HealthStub(channel)
    req = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            if (
                await health.Check(req, timeout=2)
            ).status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        assert asyncio.get_running_loop().time() < deadline, "the extension never said SERVING"
        await asyncio.sleep(0.1)


@pytest.fixture(params=BACKENDS)
async def stub(request, socket_address: str) -> AsyncIterator[Stub]:  # type: ignore[no-untyped-def]
    server = harness = standin = None
    listen = socket_address
    net: RegtestNet | LndNet
    if request.param == "lnd":  # the real LND backend on a real lnd
        world = request.getfixturevalue("lnd_world")
        net = LndNet(world)
        gw = world.node("gateway")
        backend = LndBackend.from_files(
            gw.rpc_host.replace("127.0.0.1", "localhost"), gw.tls_cert, gw.macaroon
        )
        server = ExtensionServer(backend, listen, health_interval_s=0.2)
        await server.start()
    else:
        regtestd = request.getfixturevalue("regtestd")
        node = f"gw{os.urandom(3).hex()}"
        net = RegtestNet(regtestd.info, node)
        await net.setup()
        if request.param == "lnd-standin":  # the LND backend against LND's gRPC (stand-in)
            standin = LndStandIn(regtestd.info, node)
            host = await standin.start()
            backend = LndBackend(
                host.replace("127.0.0.1", "localhost"), standin.cert, standin.macaroon
            )
            server = ExtensionServer(backend, listen, health_interval_s=0.2)
            await server.start()
        elif request.param == "sim":
            server = ExtensionServer(
                SimBackend.from_data_dir(regtestd.data_dir, node), listen, health_interval_s=0.2
            )
            await server.start()
        else:  # cln: the real plugin process, driven by lightningd's side of the protocol
            harness = FakeLightningd(
                regtestd.info, node, Path(tempfile.gettempdir(), f"fmgw-cln-{node}"), listen
            )
            await asyncio.to_thread(harness.start)
    channel = ExtensionEndpoint.parse(listen).channel()
    try:
        await _until_serving(channel)
        yield pb_grpc.GatewayLightningStub(channel), net, request.param
    finally:
        await channel.close()
        await net.close()
        if server is not None:
            await server.stop(0.5)
        if standin is not None:
            await standin.stop()
        if harness is not None:
            assert await asyncio.to_thread(harness.shutdown) == 0  # exits cleanly on `shutdown`
            assert harness.stdout_garbage == []  # never wrote anything but JSON-RPC to stdout
            shutil.rmtree(harness.dir, ignore_errors=True)


async def test_node_info_health_and_route_hints(stub: Stub) -> None:
    s, net, _ = stub
    info = await s.GetNodeInfo(pb.GetNodeInfoRequest())
    assert (
        info.pub_key.hex() == await net.gateway_pubkey()
        and info.network == "regtest"
        and info.synced
        and info.block_height > 100
    )
    hints = (await s.GetRouteHints(pb.GetRouteHintsRequest(num_route_hints=5))).route_hints
    want = await net.hint()
    (hint,) = [h for h in hints if h.hops[0].src_node_id.hex() == want.alice_pubkey]
    hop = hint.hops[0]
    assert (hop.base_msat, hop.proportional_millionths, hop.cltv_expiry_delta) == want.policy
    assert hop.short_channel_id == want.scid and hop.htlc_maximum_msat == want.htlc_maximum_msat


async def test_balances_follow_the_node(stub: Stub) -> None:
    """GetBalances: on-chain funds and each channel's local/remote side, before and after a
    payment (LND reports channels in sat: compared at that precision)."""
    s, net, _ = stub

    async def compare() -> pb.GetBalancesResponse:
        b = await s.GetBalances(pb.GetBalancesRequest())
        onchain, chans = await net.gateway_funds()
        assert b.onchain_balance_sat == onchain > 0
        assert len(b.channels) == len(chans) >= 2
        for c in chans:
            (got,) = [x for x in b.channels if x.short_channel_id == c.scid]
            assert got.peer_id.hex() == c.peer_pubkey and got.active
            assert got.capacity_sat == c.capacity_sat
            assert got.local_msat // 1000 == c.local_msat // 1000
            assert got.remote_msat // 1000 == c.remote_msat // 1000
        assert b.lightning_balance_msat == sum(c.local_msat for c in b.channels)
        assert b.inbound_lightning_liquidity_msat == sum(c.remote_msat for c in b.channels)
        return b

    async def check() -> pb.GetBalancesResponse:
        """A real node's channels settle a moment after a payment (the commitment fee moves
        too): compared again until two reads agree, for at most 10 s."""
        for _ in range(50):
            try:
                return await compare()
            except AssertionError:
                await asyncio.sleep(0.2)
        return await compare()

    before = await check()
    inv = await net.invoice(3_000_000)
    paid = await s.PayInvoice(
        pb.PayInvoiceRequest(
            invoice=inv["bolt11"],
            max_delay=200,
            max_fee_msat=10_000,
            payment_hash=bytes.fromhex(inv["payment_hash"]),
        )
    )
    assert paid.status == pb.SETTLED
    after = await check()
    spent = before.lightning_balance_msat - after.lightning_balance_msat
    assert 3_000_000 <= spent <= 3_000_000 + paid.fee_msat + 1000


async def test_pay_invoice_success_is_idempotent(stub: Stub) -> None:
    s, net, kind = stub
    inv = await net.invoice(1_234_000)
    req = pb.PayInvoiceRequest(
        invoice=inv["bolt11"],
        max_delay=200,
        max_fee_msat=10_000,
        payment_hash=bytes.fromhex(inv["payment_hash"]),
    )
    first, second = await asyncio.gather(
        s.PayInvoice(req, timeout=30), s.PayInvoice(req, timeout=30)
    )
    third = await s.PayInvoice(req, timeout=30)
    for r in (first, second, third):
        assert r.status == pb.SETTLED and r.preimage.hex() == inv["preimage"]
    assert await net.received_msat(inv["payment_hash"]) == 1_234_000  # paid once
    # what became of it, asked without an invoice (recovery from the seed): nothing paid again
    looked = await s.LookupPayment(
        pb.LookupPaymentRequest(payment_hash=req.payment_hash), timeout=30
    )
    assert looked.status == pb.SETTLED and looked.preimage.hex() == inv["preimage"]
    assert looked.fee_msat == third.fee_msat
    # a real lnd keeps the invoice it paid; the simulated world's nodes keep none
    assert looked.invoice == (inv["bolt11"] if kind == "lnd" else "")
    assert await net.received_msat(inv["payment_hash"]) == 1_234_000
    with pytest.raises(grpc.aio.AioRpcError) as never:
        await s.LookupPayment(pb.LookupPaymentRequest(payment_hash=b"\x07" * 32), timeout=30)
    assert never.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as short:
        await s.LookupPayment(pb.LookupPaymentRequest(payment_hash=b"\x07"), timeout=30)
    assert short.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_pay_invoice_failures(stub: Stub) -> None:
    s, net, _ = stub
    inv = await net.invoice(1000)
    await net.cancel_invoice(inv["payment_hash"])
    r = await s.PayInvoice(
        pb.PayInvoiceRequest(
            invoice=inv["bolt11"],
            max_delay=200,
            max_fee_msat=1000,
            payment_hash=bytes.fromhex(inv["payment_hash"]),
        ),
        timeout=30,
    )
    assert (
        r.status == pb.FAILED
        and r.failure_reason == "incorrect_or_unknown_payment_details"
        and r.failure_code == 0x400F
    )
    looked = await s.LookupPayment(
        pb.LookupPaymentRequest(payment_hash=bytes.fromhex(inv["payment_hash"])), timeout=30
    )
    assert looked.status == pb.FAILED and not looked.preimage
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await s.PayInvoice(
            pb.PayInvoiceRequest(invoice="lnbcrt1nope", payment_hash=b"x" * 32), timeout=10
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    other = await net.invoice(1000)
    with pytest.raises(grpc.aio.AioRpcError) as mismatch:
        await s.PayInvoice(
            pb.PayInvoiceRequest(invoice=other["bolt11"], payment_hash=b"\x01" * 32), timeout=10
        )
    assert mismatch.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def _pay_in_background(
    net: RegtestNet | LndNet, amount: int, preimage: bytes
) -> tuple[asyncio.Task, bytes]:  # type: ignore[type-arg]
    bolt11 = federation_invoice(await net.gateway_pubkey(), amount, preimage, scid=7)
    task = asyncio.create_task(net.pay(bolt11))
    return task, hashlib.sha256(preimage).digest()


async def test_intercept_settle_cancel_forward_and_exactly_once(stub: Stub) -> None:
    s, net, kind = stub
    stream = s.RouteHtlcs(pb.RouteHtlcsRequest())
    outcomes, preimages = {}, {}
    for action in ("settle", "cancel", "forward"):
        pre = preimages[action] = os.urandom(32)
        pay, ph = await _pay_in_background(net, 40_000, pre)
        htlc = await asyncio.wait_for(stream.read(), 30)
        assert (
            htlc.payment_hash == ph
            and htlc.short_channel_id == 7
            and htlc.outgoing_amount_msat == 40_000
        )
        assert htlc.incoming_amount_msat >= 40_000 and htlc.incoming_expiry > htlc.outgoing_expiry
        if action == "settle":  # the first stream is surely subscribed now: a second is refused
            second = s.RouteHtlcs(pb.RouteHtlcsRequest())
            with pytest.raises(grpc.aio.AioRpcError) as dup:
                await asyncio.wait_for(second.read(), 10)
            assert dup.value.code() == grpc.StatusCode.ALREADY_EXISTS
        req = pb.CompleteHtlcRequest(incoming_chan_id=htlc.incoming_chan_id, htlc_id=htlc.htlc_id)
        if action == "settle":
            bad = pb.CompleteHtlcRequest(
                incoming_chan_id=htlc.incoming_chan_id, htlc_id=htlc.htlc_id
            )
            bad.settle.preimage = os.urandom(32)
            with pytest.raises(grpc.aio.AioRpcError) as wrong:
                await s.CompleteHtlc(bad, timeout=10)
            assert wrong.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            req.settle.preimage = pre
        elif action == "cancel":
            req.cancel.reason = "no such offer"
        else:
            req.forward.SetInParent()
        await s.CompleteHtlc(req, timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as again:
            await s.CompleteHtlc(req, timeout=10)
        assert again.value.code() == grpc.StatusCode.NOT_FOUND
        outcomes[action] = await asyncio.wait_for(pay, 60)
    assert outcomes["settle"]["status"] == "succeeded"
    assert outcomes["settle"]["preimage"] == preimages["settle"].hex()
    assert outcomes["cancel"]["status"] == "failed"
    assert outcomes["cancel"]["failure"] == CANCEL_FAILURE[kind]
    assert outcomes["forward"]["failure"] == "unknown_next_peer"
    stream.cancel()


async def test_held_while_nobody_listens_and_timeout(stub: Stub) -> None:
    s, net, _ = stub
    pre = os.urandom(32)
    pay, ph = await _pay_in_background(net, 10_000, pre)
    await asyncio.sleep(0.5)  # intercepted before anyone subscribed
    stream = s.RouteHtlcs(pb.RouteHtlcsRequest())
    htlc = await asyncio.wait_for(stream.read(), 30)
    assert htlc.payment_hash == ph
    stream.cancel()
    await asyncio.sleep(0.2)
    stream2 = s.RouteHtlcs(
        pb.RouteHtlcsRequest()
    )  # not completed: offered again to the next subscriber
    again = await asyncio.wait_for(stream2.read(), 10)
    assert again.htlc_id == htlc.htlc_id
    # nobody answers: the node fails it back before it expires (a few blocks at a time, as a
    # real node must see each block to fail it back in time)
    while not pay.done() and await net.height() < htlc.incoming_expiry:
        await net.mine(min(5, htlc.incoming_expiry - await net.height()))
        await asyncio.sleep(0.3)
    result = await asyncio.wait_for(pay, 30)
    assert result["status"] == "failed"
    req = pb.CompleteHtlcRequest(incoming_chan_id=htlc.incoming_chan_id, htlc_id=htlc.htlc_id)
    req.settle.preimage = pre
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await s.CompleteHtlc(req, timeout=10)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    stream2.cancel()


async def test_health_and_reflection(regtestd, socket_address: str) -> None:  # type: ignore[no-untyped-def]
    """SERVING only while the node answers; NOT_SERVING after shutdown begins."""
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    server = ExtensionServer(
        SimBackend.from_data_dir(regtestd.data_dir, f"gw{os.urandom(3).hex()}"),
        socket_address,
        reflection_enabled=True,
        health_interval_s=0.1,
    )
    await server.start()
    async with ExtensionEndpoint.parse(server.listen).channel() as channel:
        health = health_pb2_grpc.HealthStub(channel)
        req = health_pb2.HealthCheckRequest(service="fmgw.lnrpc.v1.GatewayLightning")
        for _ in range(50):
            if (await health.Check(req)).status == health_pb2.HealthCheckResponse.SERVING:
                break
            await asyncio.sleep(0.05)
        assert (await health.Check(req)).status == health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        names = []
        async for r in refl.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        ):
            names = [x.name for x in r.list_services_response.service]
        assert "fmgw.lnrpc.v1.GatewayLightning" in names
        server._watch.cancel()  # as stop() does first
        await server._set_health(False)
        assert (await health.Check(req)).status == health_pb2.HealthCheckResponse.NOT_SERVING
    await server.stop(0.1)


def test_cln_plugin_manifest(regtestd, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """What lightningd learns at getmanifest: the hook, the options, the shutdown subscription."""
    workdir = Path(tempfile.gettempdir(), f"fmgw-cln-m{os.urandom(3).hex()}")
    harness = FakeLightningd(
        regtestd.info, "nobody", workdir, f"unix:{workdir}/lnrpc/extension.sock"
    )
    harness.start()
    try:
        m = harness.manifest
        assert any(h["name"] == "htlc_accepted" for h in m["hooks"])
        assert {"fm-gateway-listen", "fm-gateway-tls-dir"} <= {o["name"] for o in m["options"]}
        assert "shutdown" in m["subscriptions"]
    finally:
        assert harness.shutdown() == 0
        assert harness.stdout_garbage == []
        shutil.rmtree(harness.dir, ignore_errors=True)


async def test_lnd_refuses_a_wrong_macaroon(regtestd) -> None:  # type: ignore[no-untyped-def]
    standin = LndStandIn(regtestd.info, "nobody")
    host = await standin.start()
    backend = LndBackend(host.replace("127.0.0.1", "localhost"), standin.cert, os.urandom(32))
    await backend.start()
    from services.lnrpc.backend import BackendError

    with pytest.raises(BackendError, match="UNAUTHENTICATED"):
        await backend.node_info()
    await backend.close()
    await standin.stop()


async def test_hold_invoice_settle_cancel_and_redelivery(stub: Stub) -> None:
    """CreateInvoice makes a hold invoice signed by the node for a hash it does not know the
    preimage of; its HTLC waits on RouteHtlcs (hold_invoice set) until CompleteHtlc settles or
    cancels it, exactly once; one that arrived while nobody listened is delivered on subscribe."""
    s, net, _ = stub
    pubkey, height = await net.gateway_pubkey(), await net.height()
    outcomes, streams = {}, []
    for action in ("settle", "cancel", "forward"):
        pre = os.urandom(32)
        ph = hashlib.sha256(pre).digest()
        req = pb.CreateInvoiceRequest(
            payment_hash=ph, amount_msat=50_000, expiry_secs=600, memo=f"lnv2 {action}"
        )
        inv = (await s.CreateInvoice(req, timeout=10)).invoice
        assert (await s.CreateInvoice(req, timeout=10)).invoice == inv  # idempotent per hash
        with pytest.raises(grpc.aio.AioRpcError) as exists:
            await s.CreateInvoice(
                pb.CreateInvoiceRequest(payment_hash=ph, amount_msat=60_000, expiry_secs=600),
                timeout=10,
            )
        assert exists.value.code() == grpc.StatusCode.ALREADY_EXISTS
        decoded = bolt11_decode(inv)
        assert decoded.payment_hash == ph.hex() and decoded.amount_msat == 50_000
        assert decoded.payee == pubkey and decoded.description == f"lnv2 {action}"
        pay = asyncio.create_task(net.pay(inv))
        if action == "settle":  # arrives before anyone listens: held, then delivered
            await asyncio.sleep(0.5)
        if not streams:
            streams.append(s.RouteHtlcs(pb.RouteHtlcsRequest()))
        htlc = await asyncio.wait_for(streams[0].read(), 30)
        assert htlc.hold_invoice and htlc.payment_hash == ph and htlc.short_channel_id == 0
        assert htlc.incoming_amount_msat == 50_000 and htlc.incoming_expiry > height
        assert not pay.done()  # the node did not settle it by itself
        req2 = pb.CompleteHtlcRequest(incoming_chan_id=htlc.incoming_chan_id, htlc_id=htlc.htlc_id)
        if action == "settle":
            bad = pb.CompleteHtlcRequest(
                incoming_chan_id=htlc.incoming_chan_id, htlc_id=htlc.htlc_id
            )
            bad.settle.preimage = os.urandom(32)
            with pytest.raises(grpc.aio.AioRpcError) as wrong:
                await s.CompleteHtlc(bad, timeout=10)
            assert wrong.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            req2.settle.preimage = settled_preimage = pre
        elif action == "cancel":
            req2.cancel.reason = "the contract did not decrypt"
        else:
            req2.forward.SetInParent()  # nowhere to forward a hold-invoice HTLC: cancelled
        await s.CompleteHtlc(req2, timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as again:
            await s.CompleteHtlc(req2, timeout=10)
        assert again.value.code() == grpc.StatusCode.NOT_FOUND
        outcomes[action] = await asyncio.wait_for(pay, 60)
    assert outcomes["settle"]["status"] == "succeeded"
    assert outcomes["settle"]["preimage"] == settled_preimage.hex()
    for action in ("cancel", "forward"):
        assert outcomes[action]["status"] == "failed"
        assert outcomes[action]["failure"] == "incorrect_or_unknown_payment_details"
    hashed = pb.CreateInvoiceRequest(
        payment_hash=os.urandom(32),
        amount_msat=1_000,
        expiry_secs=60,
        description_hash=hashlib.sha256(b"a long description").digest(),
    )
    got = bolt11_decode((await s.CreateInvoice(hashed, timeout=10)).invoice)
    assert got.description_hash == hashlib.sha256(b"a long description").hexdigest()
    for bad_req in (
        pb.CreateInvoiceRequest(payment_hash=b"short", amount_msat=1_000, expiry_secs=60),
        pb.CreateInvoiceRequest(payment_hash=os.urandom(32), amount_msat=0, expiry_secs=60),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await s.CreateInvoice(bad_req, timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    streams[0].cancel()
