"""The router for real: supervisord (with the repo's supervisord.conf) runs it, a worker process
connects to its ipc socket, `gateway-bus` talks to it, and a killed router is restarted. And the
router's stop of a program (`stop_and_wait`, never a call supervisord waits on) against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path

import pytest
from supervisor.xmlrpc import SupervisorTransport

from bus import ipc_endpoint
from deploy.launch import prepare_env
from gwcore.constants import PROGRAM_ROUTER, ROUTER_ENDPOINT_NAME
from peers.harness.procs import free_port, pid_alive, stop_group
from services.router.supervisor import stop_and_wait
from tests.simworld import add_sim_world

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKER = REPO / "tests" / "bus" / "worker_proc.py"


def wait_until(cond, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = cond()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def world(run_dir: Path) -> Iterator[dict[str, str]]:
    env = prepare_env(
        run_dir,
        run_dir / "data",
        {
            **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_LNRPC_")},
            **add_sim_world(run_dir, run_dir / "data"),
            "GATEWAY_API_BIND": f"127.0.0.1:{free_port()}",
        },
    )
    sup = subprocess.Popen(
        [str(BIN / "supervisord"), "-n", "-c", str(REPO / "supervisord.conf")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield env
    finally:
        stop_group(sup)


def bus_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "gateway-bus"), "--run-dir", env["GATEWAY_RUN_DIR"], "--timeout", "2", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_router_under_supervisord(world: dict[str, str], run_dir: Path) -> None:
    wait_until(lambda: bus_cli(world, "ping").returncode == 0, 30, "router to answer")
    assert oct(run_dir.stat().st_mode & 0o777) == "0o700"

    endpoint = ipc_endpoint(run_dir, ROUTER_ENDPOINT_NAME)
    worker = subprocess.Popen([sys.executable, str(WORKER), endpoint, "fed-e2e", str(run_dir)])
    try:

        def worker_alive() -> bool:
            out = bus_cli(world, "status")
            if out.returncode != 0:
                return False
            workers = json.loads(out.stdout)["workers"]
            return any(w["service"] == "fed-e2e" and w["state"] == "alive" for w in workers)

        wait_until(worker_alive, 20, "worker in the liveness table")
        ping = bus_cli(world, "ping", "fed-e2e")
        assert ping.returncode == 0, ping.stderr
        assert json.loads(ping.stdout)["service"] == "fed-e2e"

        # kill the router: supervisord restarts it and the worker finds the new one
        rpc = xmlrpc.client.ServerProxy(
            "http://127.0.0.1",
            transport=SupervisorTransport(None, None, world["SUPERVISOR_SERVER_URL"]),
        )
        old_pid = rpc.supervisor.getProcessInfo(PROGRAM_ROUTER)["pid"]
        os.kill(old_pid, signal.SIGKILL)

        def restarted() -> bool:
            info = rpc.supervisor.getProcessInfo(PROGRAM_ROUTER)
            return info["statename"] == "RUNNING" and info["pid"] != old_pid

        wait_until(restarted, 30, "supervisord to restart the router")
        wait_until(worker_alive, 30, "worker to re-register with the new router")
        assert bus_cli(world, "ping", "fed-e2e").returncode == 0
    finally:
        worker.terminate()
        worker.wait(10)

    # the regtest world runs beside it
    cli = [
        str(BIN / "regtest-cli"),
        "--data-dir",
        str(run_dir / "data" / "regtest"),
        "getblockcount",
    ]
    wait_until(lambda: subprocess.run(cli, capture_output=True).returncode == 0, 30, "regtestd")
    assert subprocess.run(cli, capture_output=True, text=True).stdout.strip() == "0"

    # a stop asked without waiting in supervisord: the program is down when it returns
    pid = rpc.supervisor.getProcessInfo("gateway-api")["pid"]
    assert stop_and_wait(rpc, "gateway-api") == "STOPPED" and not pid_alive(pid)
    assert stop_and_wait(rpc, "gateway-api") == "STOPPED"  # not running: left as it is
    assert stop_and_wait(rpc, "gateway-no-such-program") == "ABSENT"
