"""The bus across real OS processes: a broker here, workers as child processes."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus import Broker, BusClient, HeartbeatPolicy, ipc_endpoint
from gwproto.bus_pb2 import WorkerStatus

from .helpers import wait_for

WORKER = Path(__file__).with_name("worker_proc.py")


class Procs:
    def __init__(self, endpoint: str, data_dir: Path) -> None:
        self.endpoint, self.data_dir = endpoint, data_dir
        self.all: list[subprocess.Popen[bytes]] = []

    def start(self, service: str, *extra: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(
            [sys.executable, str(WORKER), self.endpoint, service, str(self.data_dir), *extra]
        )
        self.all.append(p)
        return p

    def effects(self, message_id: str) -> int:
        db = sqlite3.connect(self.data_dir / "effects.db")
        try:
            return db.execute(
                "SELECT COUNT(*) FROM effects WHERE message_id = ?", (message_id,)
            ).fetchone()[0]
        finally:
            db.close()


@pytest.fixture
def procs(run_dir: Path) -> Iterator[Procs]:
    p = Procs(ipc_endpoint(run_dir, "router"), run_dir)
    yield p
    for proc in p.all:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)


@pytest.fixture
async def broker(zctx, procs):  # type: ignore[no-untyped-def]
    b = Broker(endpoints=[procs.endpoint], ctx=zctx, heartbeat=HeartbeatPolicy(0.1, 3))
    await b.start()
    yield b
    await b.stop()


@pytest.fixture
async def client(zctx, procs):  # type: ignore[no-untyped-def]
    c = BusClient(procs.endpoint, ctx=zctx)
    yield c
    await c.close()


async def exited(proc: subprocess.Popen[bytes], timeout: float = 5) -> int:
    """Wait for a child without blocking the event loop (the broker lives on it)."""
    return await asyncio.to_thread(proc.wait, timeout)


def alive(broker: Broker, service: str) -> bool:
    return service in broker.live_services()


async def test_two_workers_in_their_own_processes(broker, client, procs):  # type: ignore[no-untyped-def]
    a, b = procs.start("fedA"), procs.start("fedB")
    await wait_for(lambda: alive(broker, "fedA") and alive(broker, "fedB"), 15, "workers ready")
    assert await client.request("fedA", "pid", timeout=5) == str(a.pid).encode()
    assert await client.request("fedB", "pid", timeout=5) == str(b.pid).encode()
    assert await broker.request("fedB", "pid", timeout=5) == str(b.pid).encode()


async def test_worker_killed_mid_request_runs_the_retry_exactly_once(broker, client, procs):  # type: ignore[no-untyped-def]
    first = procs.start("fedA")
    await wait_for(lambda: alive(broker, "fedA"), 15, "worker ready")
    call = asyncio.create_task(
        client.request("fedA", "work", b"1.0", timeout=20, retries=6, attempt_timeout=3,
                       idempotent=False, message_id="pay-kill")
    )  # fmt: skip
    await wait_for(lambda: any(w.in_flight for w in broker.liveness().workers), 5, "in flight")
    first.send_signal(signal.SIGKILL)  # mid-request: before the work is recorded
    await exited(first)
    second = procs.start("fedA")  # as supervisord would
    reply = await call
    assert reply == f"done:{second.pid}".encode()
    assert procs.effects("pay-kill") == 1
    assert broker.stats.get("requests_lost") >= 1 or broker.stats.get("queued") >= 1


async def test_crash_between_persist_and_send_is_replayed(broker, client, procs):  # type: ignore[no-untyped-def]
    first = procs.start("fedA", "--crash-after-persist")
    await wait_for(lambda: alive(broker, "fedA"), 15, "worker ready")
    call = asyncio.create_task(
        client.request("fedA", "work", b"0", timeout=20, retries=6, attempt_timeout=3,
                       idempotent=False, message_id="pay-crash")
    )  # fmt: skip
    assert await exited(first, 10) == 17  # died right after committing its reply
    second = procs.start("fedA", "--crash-after-persist")  # the marker stops a second crash
    reply = await call
    assert reply == f"done:{first.pid}".encode()  # the stored reply of the first run
    assert procs.effects("pay-crash") == 1
    assert second.poll() is None


async def test_killed_worker_expires_and_its_requests_fail_fast(broker, client, procs):  # type: ignore[no-untyped-def]
    w = procs.start("fedA")
    await wait_for(lambda: alive(broker, "fedA"), 15, "worker ready")
    call = asyncio.create_task(client.request("fedA", "work", b"5", timeout=30, retries=0))
    await wait_for(lambda: any(s.in_flight for s in broker.liveness().workers), 5, "in flight")
    w.send_signal(signal.SIGKILL)
    await exited(w)
    states = lambda: {s.identity: s.state for s in broker.liveness().workers}  # noqa: E731
    await wait_for(lambda: states()["actor-fedA"] != WorkerStatus.State.ALIVE, 5, "expiry")
    # the caller is told at once that the worker was lost, not after its 30 s timeout
    with pytest.raises(Exception) as info:
        await asyncio.wait_for(call, 5)
    assert getattr(info.value, "code", "") == "worker_lost"
