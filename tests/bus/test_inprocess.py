"""Broker, workers and clients on real ipc/tcp sockets inside one event loop."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

import pytest
import zmq

from bus import (
    Broker,
    BusClient,
    Call,
    CurveClientConfig,
    CurveKeyPair,
    CurveServerConfig,
    HeartbeatPolicy,
    ReplyStore,
    Worker,
    ipc_endpoint,
)
from gwcore.constants import BUS_SERVICE, METHOD_BUS_LIVENESS
from gwcore.errors import (
    BusTimeout,
    DeadlineExceeded,
    InternalError,
    InvalidInput,
    ServiceUnavailable,
)
from gwproto.bus_pb2 import LivenessReport, WorkerStatus

from .helpers import RawPeer, wait_for

ALIVE, EXPIRED, DISCONNECTED = (
    WorkerStatus.State.ALIVE,
    WorkerStatus.State.EXPIRED,
    WorkerStatus.State.DISCONNECTED,
)


class Echo:
    """A handler that counts its executions and can be told to fail or dawdle."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    async def __call__(self, call: Call) -> bytes:
        self.calls.append(call)
        if call.method == "fail":
            raise InvalidInput("amount must be positive")
        if call.method == "crash":
            raise RuntimeError("boom")
        if call.method == "not-yet":
            raise InternalError("not finished yet: ask again", retryable=True)
        if call.method == "slow":
            await asyncio.sleep(float(call.payload))
        return b"echo:" + call.payload


@pytest.fixture
def endpoint(run_dir: Path) -> str:
    return ipc_endpoint(run_dir, "router")


@pytest.fixture
async def broker(zctx, endpoint, fast_heartbeat):  # type: ignore[no-untyped-def]
    b = Broker(endpoints=[endpoint], ctx=zctx, heartbeat=fast_heartbeat)
    await b.start()
    yield b
    await b.stop()


@pytest.fixture
async def client(zctx, endpoint):  # type: ignore[no-untyped-def]
    c = BusClient(endpoint, ctx=zctx, identity="api-test")
    yield c
    await c.close()


async def start_worker(zctx, endpoint, hb, service="fedA", identity=None, store=None, handler=None):  # type: ignore[no-untyped-def]
    w = Worker(
        endpoint=endpoint,
        service=service,
        handler=handler or Echo(),
        ctx=zctx,
        identity=identity,
        heartbeat=hb,
        store=store,
    )
    await w.start()
    return w


def states(broker: Broker) -> dict[str, int]:
    return {w.identity: w.state for w in broker.liveness().workers}


async def test_request_reply_through_the_broker(broker, client, zctx, endpoint, fast_heartbeat):  # type: ignore[no-untyped-def]
    handler = Echo()
    w = await start_worker(zctx, endpoint, fast_heartbeat, handler=handler)
    reply = await client.request(
        "fedA", "m", b"hi", timeout=2, request_id="req-1", federation_id="fedA"
    )
    assert reply == b"echo:hi"
    assert handler.calls[0].request_id == "req-1" and handler.calls[0].federation_id == "fedA"
    assert handler.calls[0].sender == "api-test" and handler.calls[0].attempt == 1
    assert await broker.request("fedA", "m", b"direct", timeout=2) == b"echo:direct"
    await w.stop()


async def test_errors_keep_their_code_across_the_bus(
    broker, client, zctx, endpoint, fast_heartbeat
):  # type: ignore[no-untyped-def]
    w = await start_worker(zctx, endpoint, fast_heartbeat)
    with pytest.raises(InvalidInput, match="amount must be positive"):
        await client.request("fedA", "fail", b"", timeout=2)
    with pytest.raises(InternalError, match="RuntimeError: boom") as boom:
        await client.request("fedA", "crash", b"", timeout=2)
    assert not boom.value.retryable
    # "not yet, ask again" outlasting every attempt stays retryable (the router keeps asking
    # rather than cancelling an HTLC whose contract may be funded already)
    for caller in (client, broker):
        with pytest.raises(InternalError, match="not finished yet") as later:
            await caller.request("fedA", "not-yet", b"", timeout=2, retries=2)
        assert later.value.retryable
    await w.stop()


async def test_requests_wait_for_a_worker_that_starts_late(
    broker, client, zctx, endpoint, fast_heartbeat
):  # type: ignore[no-untyped-def]
    pending = asyncio.create_task(client.request("fedA", "m", b"early", timeout=3, retries=0))
    await asyncio.sleep(0.3)
    assert not pending.done()
    w = await start_worker(zctx, endpoint, fast_heartbeat)
    assert await pending == b"echo:early"
    await w.stop()


async def test_no_worker_before_the_deadline_is_service_unavailable(broker, client):  # type: ignore[no-untyped-def]
    start = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        await client.request("nobody", "m", b"", timeout=0.5, retries=0)
    assert time.monotonic() - start < 1.5
    assert broker.stats.get("unavailable") == 1


async def test_two_workers_share_one_service(broker, client, zctx, endpoint, fast_heartbeat):  # type: ignore[no-untyped-def]
    h1, h2 = Echo(), Echo()
    w1 = await start_worker(zctx, endpoint, fast_heartbeat, identity="w1", handler=h1)
    w2 = await start_worker(zctx, endpoint, fast_heartbeat, identity="w2", handler=h2)
    await wait_for(lambda: len(broker.live_services()) == 1 and len(broker.liveness().workers) == 2)
    await asyncio.gather(*(client.request("fedA", "slow", b"0.05", timeout=3) for _ in range(10)))
    assert len(h1.calls) + len(h2.calls) == 10 and h1.calls and h2.calls
    await w1.stop()
    await w2.stop()


async def test_heartbeat_expiry_marks_a_silent_worker_dead_and_it_revives(broker, zctx, endpoint):  # type: ignore[no-untyped-def]
    peer = RawPeer(zctx, endpoint, "silent")
    ready = peer.envelope()
    ready.ready.service = "fedS"
    ready.ready.incarnation = "i1"
    await peer.send(ready)
    await wait_for(lambda: states(broker).get("silent") == ALIVE, what="ready")
    start = time.monotonic()
    await wait_for(lambda: states(broker).get("silent") == EXPIRED, what="expiry")
    # liveness = 3 intervals of 0.1 s: declared dead after ~0.3 s, not before
    assert 0.25 <= time.monotonic() - start < 1.5
    assert "fedS" not in broker.live_services()
    hb = peer.envelope()
    hb.heartbeat.SetInParent()
    await peer.send(hb)
    await wait_for(lambda: states(broker).get("silent") == ALIVE, what="revival")
    peer.close()


async def test_disconnect_and_unknown_heartbeats(broker, zctx, endpoint, fast_heartbeat):  # type: ignore[no-untyped-def]
    w = await start_worker(zctx, endpoint, fast_heartbeat, identity="wd")
    await wait_for(lambda: states(broker).get("wd") == ALIVE)
    await w.stop()
    await wait_for(lambda: states(broker).get("wd") == DISCONNECTED)
    stranger = RawPeer(zctx, endpoint, "stranger")
    hb = stranger.envelope()
    hb.heartbeat.SetInParent()
    await stranger.send(hb)
    reply = await stranger.recv_body("disconnect")
    assert "READY" in reply.disconnect.reason
    stranger.close()


async def test_worker_reconnects_after_the_broker_restarts(zctx, endpoint, client):  # type: ignore[no-untyped-def]
    hb = HeartbeatPolicy(0.1, 3)
    b1 = Broker(endpoints=[endpoint], ctx=zctx, heartbeat=hb)
    await b1.start()
    w = await start_worker(zctx, endpoint, hb)
    assert await client.request("fedA", "m", b"1", timeout=2) == b"echo:1"
    await b1.stop()
    await asyncio.sleep(0.5)  # the worker hears nothing and starts reconnecting
    b2 = Broker(endpoints=[endpoint], ctx=zctx, heartbeat=hb)
    await b2.start()
    assert await client.request("fedA", "m", b"2", timeout=5) == b"echo:2"
    assert states(b2)["fedA"] == ALIVE  # re-introduced itself to the new broker
    await w.stop()
    await b2.stop()


async def test_duplicate_requests_are_replayed_not_rerun(
    broker, client, zctx, endpoint, fast_heartbeat, run_dir
):  # type: ignore[no-untyped-def]
    handler = Echo()
    store = ReplyStore(run_dir / "replies.db")
    w = await start_worker(zctx, endpoint, fast_heartbeat, store=store, handler=handler)
    first = await client.request(
        "fedA", "m", b"pay", timeout=2, idempotent=False, message_id="pay-1"
    )
    again = await client.request(
        "fedA", "m", b"other", timeout=2, idempotent=False, message_id="pay-1"
    )
    assert first == again == b"echo:pay"
    assert len(handler.calls) == 1 and w.stats.get("replayed") == 1
    # definite errors are final too
    for _ in range(2):
        with pytest.raises(InvalidInput):
            await client.request("fedA", "fail", b"", timeout=2, idempotent=False, message_id="f-1")
    assert len(handler.calls) == 2
    # concurrent duplicates of a request in progress join it
    results = await asyncio.gather(
        *(
            client.request("fedA", "slow", b"0.2", timeout=3, idempotent=False, message_id="s-1")
            for _ in range(3)
        )
    )
    assert results == [b"echo:0.2"] * 3 and len(handler.calls) == 3
    # idempotent requests are not stored
    await client.request("fedA", "m", b"x", timeout=2, message_id="idem")
    await client.request("fedA", "m", b"x", timeout=2, message_id="idem")
    assert len(handler.calls) == 5 and store.count() == 3
    await w.stop()
    # the store survives a restart of the worker
    store.close()
    store2 = ReplyStore(run_dir / "replies.db")
    h2 = Echo()
    w2 = await start_worker(zctx, endpoint, fast_heartbeat, store=store2, handler=h2)
    assert (
        await client.request("fedA", "m", b"z", timeout=2, idempotent=False, message_id="pay-1")
        == b"echo:pay"
    )
    assert h2.calls == []
    await w2.stop()
    store2.close()


async def test_a_message_id_in_flight_is_never_taken_over(
    broker, zctx, endpoint, fast_heartbeat, run_dir
):  # type: ignore[no-untyped-def]
    """Two clients (two gunicorn workers) send the same request under one id while it runs:
    the second waits for the first's answer, both get it, the work runs once. A different
    request under that id is refused and takes nothing from the first."""
    handler = Echo()
    store = ReplyStore(run_dir / "replies.db")
    w = await start_worker(zctx, endpoint, fast_heartbeat, store=store, handler=handler)
    clients = [BusClient(endpoint, ctx=zctx, identity=f"api-{i}") for i in range(3)]
    try:

        async def pay(c: BusClient, payload: bytes) -> bytes:
            # one attempt only, shorter than a retry would need: joining must answer it
            return await c.request(
                "fedA", "slow", payload, timeout=1.5, retries=0, idempotent=False, message_id="p-7"
            )

        first = asyncio.ensure_future(pay(clients[0], b"0.4"))
        await asyncio.sleep(0.1)
        second = asyncio.ensure_future(pay(clients[1], b"0.4"))
        await asyncio.sleep(0.05)
        with pytest.raises(InvalidInput, match="already in use"):
            await pay(clients[2], b"0.01")  # another request under the same id
        assert await first == await second == b"echo:0.4"
        assert len(handler.calls) == 1 and broker.stats.get("joined_duplicates") == 1
        assert broker.stats.get("conflicting_ids") == 1
    finally:
        for c in clients:
            await c.close()
        await w.stop()
        store.close()


async def test_joining_and_retrying_keep_every_caller_answered(
    broker, zctx, endpoint, fast_heartbeat, run_dir
):  # type: ignore[no-untyped-def]
    """A conflicting request in the same process is refused without touching the call in
    flight; a joined caller who waits longer than the first still gets the answer; retries of
    a queued request leave no dead copies in the queue."""
    handler = Echo()
    store = ReplyStore(run_dir / "replies.db")
    w = await start_worker(zctx, endpoint, fast_heartbeat, store=store, handler=handler)
    one, two = (BusClient(endpoint, ctx=zctx, identity=f"api-j{i}") for i in range(2))
    try:
        kw = {"idempotent": False, "message_id": "w-1", "retries": 0}
        first = asyncio.ensure_future(one.request("fedA", "slow", b"0.3", timeout=2, **kw))
        await asyncio.sleep(0.05)
        with pytest.raises(InvalidInput, match="already in use"):
            await one.request("fedA", "slow", b"0.01", timeout=2, **kw)  # same process
        assert await first == b"echo:0.3"  # untouched by the refusal
        # the first caller gives up early; the one that joined waits longer and is answered
        kw2 = {"idempotent": False, "message_id": "w-2", "retries": 0}
        short = asyncio.ensure_future(one.request("fedA", "slow", b"0.9", timeout=0.3, **kw2))
        await asyncio.sleep(0.05)
        joined = asyncio.ensure_future(two.request("fedA", "slow", b"0.9", timeout=3, **kw2))
        with pytest.raises(BusTimeout):
            await short
        assert await joined == b"echo:0.9"
    finally:
        await w.stop()
        store.close()

    # a service with no worker: each retry replaces the queued copy, never adds one
    def queued() -> int:
        return sum(len(q) for q in broker._routing.queues.values())

    try:
        for _ in range(4):
            with pytest.raises((BusTimeout, ServiceUnavailable)):
                await one.request(
                    "fedNobody", "m", b"x", timeout=0.4, retries=3, attempt_timeout=0.1,
                    idempotent=False, message_id="q-1",
                )  # fmt: skip
            assert queued() <= 1
        # and the last copy is dropped at its deadline (by the broker's own timer, which a busy
        # loop may run just after the caller's: the caller giving up is not the broker's drop)
        for _ in range(250):  # up to 5 s
            if not queued():
                break
            await asyncio.sleep(0.02)
        assert queued() == 0
    finally:
        for c in (one, two):
            await c.close()


async def test_late_replies_are_dropped_and_counted(broker, client, zctx, endpoint, fast_heartbeat):  # type: ignore[no-untyped-def]
    w = await start_worker(zctx, endpoint, fast_heartbeat)
    with pytest.raises(BusTimeout):
        await client.request("fedA", "slow", b"0.3", timeout=0.1, retries=0)
    await wait_for(lambda: client.stats.get("late_replies") == 1, what="late reply")
    assert await client.request("fedA", "m", b"after", timeout=2) == b"echo:after"
    await w.stop()


async def test_expired_and_malformed_input_is_refused_without_harm(
    broker, client, zctx, endpoint, fast_heartbeat
):  # type: ignore[no-untyped-def]
    w = await start_worker(zctx, endpoint, fast_heartbeat)
    peer = RawPeer(zctx, endpoint, "raw-client")
    await peer.send_raw([b"", b"\x00garbage\xff"])
    await peer.send_raw([b"no-delimiter"])
    await peer.send_raw([b"", b"x" * (2 << 20)])
    req = peer.envelope()
    req.request.service = "fedA"
    req.request.method = "m"
    req.deadline_unix_ms = int(time.time() * 1000) - 1000
    await peer.send(req)
    err = await peer.recv_body("error")
    assert err.error.code == DeadlineExceeded.code and err.correlation_id == req.message_id
    await wait_for(lambda: broker.stats.get("rejected") >= 3, what="rejections")
    assert await client.request("fedA", "m", b"ok", timeout=2) == b"echo:ok"
    peer.close()
    await w.stop()


async def test_liveness_report_is_a_bus_service(broker, client, zctx, endpoint, fast_heartbeat):  # type: ignore[no-untyped-def]
    w = await start_worker(zctx, endpoint, fast_heartbeat, service="fed-x", identity="actor-x")
    await client.request("fed-x", "m", b"", timeout=2)
    report = LivenessReport.FromString(
        await client.request(BUS_SERVICE, METHOD_BUS_LIVENESS, timeout=2)
    )
    (status,) = report.workers
    assert (status.identity, status.service, status.state) == ("actor-x", "fed-x", ALIVE)
    assert status.requests_forwarded == 1 and status.incarnation == w.incarnation
    assert report.counters["requests_forwarded"] >= 1
    await w.stop()


async def test_curve_over_tcp(zctx, fast_heartbeat):  # type: ignore[no-untyped-def]
    server = CurveKeyPair.generate()
    good, bad = CurveKeyPair.generate(), CurveKeyPair.generate()
    b = Broker(
        endpoints=["tcp://127.0.0.1:0"],
        ctx=zctx,
        heartbeat=fast_heartbeat,
        curve=CurveServerConfig(server, frozenset({good.public})),
    )
    await b.start()
    ep = b.bound_endpoints[0]
    assert "secret" not in repr(server) or server.secret not in repr(server)
    w = Worker(
        endpoint=ep, service="fedT", handler=Echo(), ctx=zctx, heartbeat=fast_heartbeat,
        curve=CurveClientConfig(good, server.public),
    )  # fmt: skip
    await w.start()
    ok = BusClient(ep, ctx=zctx, curve=CurveClientConfig(good, server.public))
    assert await ok.request("fedT", "m", b"secret", timeout=3) == b"echo:secret"
    intruder = BusClient(ep, ctx=zctx, curve=CurveClientConfig(bad, server.public))
    with pytest.raises(BusTimeout):
        await intruder.request("fedT", "m", b"", timeout=0.5, retries=0)
    wrong_server = BusClient(ep, ctx=zctx, curve=CurveClientConfig(good, bad.public))
    with pytest.raises(BusTimeout):
        await wrong_server.request("fedT", "m", b"", timeout=0.5, retries=0)
    for c in (ok, intruder, wrong_server):
        await c.close()
    await w.stop()
    await b.stop()


def test_run_dir_is_private_and_ipc_paths_are_checked(tmp_path: Path) -> None:
    loose = tmp_path / "run"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    ep = ipc_endpoint(loose, "router")
    assert ep == f"ipc://{loose.resolve()}/bus/router.sock"
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700
    assert stat.S_IMODE((loose / "bus").stat().st_mode) == 0o700
    with pytest.raises(ValueError, match="longer than"):
        ipc_endpoint(tmp_path / ("d" * 120), "router")
    with pytest.raises(ValueError, match="unsupported bus endpoint"):
        BusClient("http://127.0.0.1:1")
    assert zmq.has("curve")


async def test_a_retry_of_a_local_call_in_progress_is_not_served_twice(broker, client):  # type: ignore[no-untyped-def]
    """A broker-local service (the router's gateway service: a connect) slower than the
    client's attempt: the client's retry, under the same message id, gets the first call's
    answer; the handler runs once."""
    handler = Echo()
    broker.serve_local("gateway", handler)
    got = await client.request(
        "gateway", "slow", b"0.5", timeout=3, retries=6, attempt_timeout=0.15,
        idempotent=False, message_id="connect-1",
    )  # fmt: skip
    assert got == b"echo:0.5" and len(handler.calls) == 1
    assert broker.stats.get("joined_duplicates") >= 1
    # the same id once answered is a new call (a client's next request)
    assert (
        await client.request("gateway", "m", b"x", timeout=2, message_id="connect-1") == b"echo:x"
    )
    assert len(handler.calls) == 2
