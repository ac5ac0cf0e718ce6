"""Connecting a federation reaches out to the hosts an invite names: the router bounds it (a time
limit per invite, a few connects at once) and answers every failure on the way with one fixed
message, so that connect-fed cannot be used to learn which hosts and ports answer."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fmclient.invite import InviteCode
from gwcore.errors import GatewayError, RateLimited
from gwcore.extension import ExtensionEndpoint
from services.router.connections import UNREACHABLE
from services.router.gateway import GatewayCore
from services.router.registry import FederationRegistry

FED = "ef" * 32


class _NoBroker:
    on_worker_event = None

    def live_services(self) -> set[str]:
        return set()


def _core(tmp_path: Path, **bounds: float) -> GatewayCore:
    registry = FederationRegistry(tmp_path / "router.sqlite")
    return GatewayCore(
        _NoBroker(),  # type: ignore[arg-type]
        registry,
        None,
        extension=ExtensionEndpoint.parse("unix:/tmp/fmgw-none/extension.sock"),
        actor_env={},
        **bounds,  # type: ignore[arg-type]
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections and never says a word (a filtered or stuck service)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except TimeoutError:
                continue

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    yield int(srv.getsockname()[1])
    stop.set()
    t.join(2)
    for s in held:
        s.close()
    srv.close()


@pytest.fixture
def chatty_port() -> Iterator[int]:
    """A port with some other service behind it: answers every connection with junk."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stop = threading.Event()

    def answer() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn = srv.accept()[0]
            except TimeoutError:
                continue
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
            conn.close()

    t = threading.Thread(target=answer, daemon=True)
    t.start()
    yield int(srv.getsockname()[1])
    stop.set()
    t.join(2)
    srv.close()


def _invites(port: int) -> list[str]:
    return [
        str(InviteCode(FED, {0: f"ws://127.0.0.1:{port}/"})),  # one guardian
        # two, the second on the same host's ssh port: neither answers as a guardian does
        str(InviteCode(FED, {0: f"wss://127.0.0.1:{port}/", 1: "ws://127.0.0.1:22/"})),
    ]


async def _refusal(core: GatewayCore, invite: str) -> GatewayError:
    with pytest.raises(GatewayError) as refused:
        await core.federations.connect(invite)
    return refused.value


async def test_every_failure_is_one_message_without_host_or_port(
    tmp_path: Path, silent_port: int, chatty_port: int
) -> None:
    """Refused, silent or some other service: the caller learns the same, and nothing of
    the host, the port or the OS's error (the router's log has them)."""
    core = _core(tmp_path, config_timeout_s=1.5)
    messages = set()
    for port in (_closed_port(), silent_port, chatty_port):
        for invite in _invites(port):
            refused = await _refusal(core, invite)
            assert refused.code == "not_ready" and refused.message == UNREACHABLE, refused
            status = core.federations.connect_status(FED)  # what the dashboard shows
            assert status["step"] == "failed" and status["error"] == UNREACHABLE
            messages.add(refused.message)
    assert messages == {UNREACHABLE}


async def test_the_default_answer_names_no_port(tmp_path: Path) -> None:
    """With the router's defaults: a refused port is not echoed (it was: "[Errno 111] Connect
    call failed ('127.0.0.1', <port>)")."""
    port = _closed_port()
    for invite in _invites(port):
        refused = await _refusal(_core(tmp_path), invite)
        assert str(port) not in refused.message and "Errno" not in refused.message
        assert refused.message == UNREACHABLE


async def test_an_invite_gets_its_time_and_no_more(tmp_path: Path, silent_port: int) -> None:
    core = _core(tmp_path, config_timeout_s=1.0)
    for invite in _invites(silent_port):
        start = time.monotonic()
        await _refusal(core, invite)
        assert time.monotonic() - start < 2.0


async def test_a_few_connects_at_once_and_no_more(tmp_path: Path, silent_port: int) -> None:
    core = _core(tmp_path, config_timeout_s=1.5, max_connects=2)
    fed11, two = _invites(silent_port)
    running = [asyncio.create_task(core.federations.connect(i)) for i in (fed11, two)]
    await asyncio.sleep(0.2)
    start = time.monotonic()
    with pytest.raises(RateLimited) as busy:
        await core.federations.connect(fed11)
    assert time.monotonic() - start < 0.2 and busy.value.retry_after_s >= 1
    assert "2 federation connects are running" in busy.value.message
    for task in running:
        with pytest.raises(GatewayError):
            await task
    assert (await _refusal(core, two)).message == UNREACHABLE  # a slot is free again


async def test_a_federation_on_another_network_than_the_node_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gatewayd's rule: the federation's network (from its modules' configs) must be the node's;
    refused with one line naming both, nothing registered, no actor started."""
    core = _core(tmp_path)

    async def config(invite_code: str, overrides: dict) -> dict:
        return {"federation_id": FED, "name": "f", "network": "regtest"}

    async def lightning() -> dict:
        return {"node": {"network": "mainnet"}}

    monkeypatch.setattr(core.federations, "_fedimint_config", config)
    monkeypatch.setattr(core.federations, "lightning", lightning)
    invite = str(InviteCode(FED, {0: "ws://127.0.0.1:1/"}))
    with pytest.raises(GatewayError) as refused:
        await core.federations.connect(invite)
    assert refused.value.message == (
        "the federation is on regtest and the Lightning node on mainnet: refused"
    )
    assert refused.value.spec().http_status == 400
    assert core.registry.get(FED) is None
