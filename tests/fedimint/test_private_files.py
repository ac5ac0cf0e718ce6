"""Secrets and files stay private, whatever the umask the gateway is started with (here 002:
group-writable, world-readable).

* The tests' tree (deploy/launch.py, on the simulated Lightning network) with a real fedimintd
  federation connected (its actor, conf.d file and databases) and the API front used: every file in its run
  and data folders 0600, every folder 0700, sockets the user's alone; only the API front's
  processes hold its secrets in their environment (supervisord's, the router's, the actor's, the
  extension's and the local world's do not).
* The operator deployment (`python -m deploy.gateway --env-file`, with no extension program:
  lightningd runs it beside Core Lightning): the same for supervisord, the router and the front.

(`make run` itself, with its user wallets, is checked by test_make_run.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest
from supervisor.xmlrpc import SupervisorTransport

from deploy.api_front import API_SECRETS_FILE
from gwcore.constants import PROGRAM_ACTOR_PREFIX
from peers.harness.fedimintd import Federation
from peers.harness.procs import free_port, stop_group
from services.cli.client import ApiError, GatewayApi
from tests.e2e.conftest import wait_until
from tests.guide_steps import guide_steps
from tests.private_files import API_SECRETS, environ, loose_entries
from tests.simworld import add_sim_world

REPO = Path(__file__).resolve().parents[2]
LOOSE_UMASK = 0o002

pytestmark = pytest.mark.timeout(400)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "SUPERVISOR_"))}


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: os.umask(LOOSE_UMASK),  # the point of the test
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    stop_group(proc)  # supervisord (the launcher replaced itself with it)


def _programs(run_dir: Path) -> dict[str, int]:
    """Program name -> pid of every running program."""
    rpc = xmlrpc.client.ServerProxy(
        "http://127.0.0.1",
        transport=SupervisorTransport(None, None, f"unix://{run_dir}/supervisor.sock"),
    )
    return {
        p["name"]: p["pid"]
        for p in rpc.supervisor.getAllProcessInfo()
        if p["statename"] == "RUNNING"
    }


def _check_environments(programs: dict[str, int], supervisord_pid: int, kept: dict) -> None:
    """Only the API front holds its secrets (and holds the ones kept for it)."""
    programs = dict(programs)
    front = environ(programs.pop("gateway-api"))
    for name in API_SECRETS:
        assert front.get(name) and front[name] == kept[name], name
    holders = {
        name: sorted(set(API_SECRETS) & set(environ(pid)))
        for name, pid in {"supervisord": supervisord_pid, **programs}.items()
    }
    assert all(not held for held in holders.values()), holders


@pytest.fixture
def base() -> Iterator[Path]:
    # short: ipc socket paths are bounded
    path = Path(tempfile.gettempdir(), f"fmgw-priv-{os.urandom(3).hex()}")
    try:
        yield path
    finally:
        subprocess.run(["rm", "-rf", str(path), f"{path}.log"], check=False)


def test_the_test_tree_keeps_its_files_and_secrets_private(
    base: Path, federation1: Federation
) -> None:
    run_dir, data_dir = base / "run", base / "data"
    api_bind = f"127.0.0.1:{free_port()}"
    env = {
        **_clean_env(),
        "GATEWAY_RUN_DIR": str(run_dir),
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_API_BIND": api_bind,
        "GATEWAY_ROUTER_PUBLIC_API_URL": f"http://{api_bind}",
    }  # the extension on its default socket in the run dir (whose modes are checked too)
    base.mkdir()  # as a user would have it: not private, and left as it is
    env.update(add_sim_world(run_dir, data_dir))  # the simulated world
    proc = _start(["deploy.launch"], env, Path(f"{base}.log"))
    try:
        api_url = f"http://{api_bind}"
        wait_until(
            lambda: httpx.get(api_url + "/openapi.json", timeout=2).status_code == 200,
            90,
            "the API front",
        )
        password = (run_dir / "admin-password").read_text().strip()
        api = GatewayApi(api_url, password)
        invite = federation1.invite_code

        def connect() -> dict | None:
            try:
                return api.connect_fed(invite)
            except ApiError as exc:
                if exc.kind == "invalid":
                    raise
                return None

        fed = wait_until(connect, 180, "connecting the federation")
        assert api.balance(fed["federation_id"])["balance_msat"] >= 0  # the actor answers
        programs = wait_until(
            lambda: (p := _programs(run_dir)) and len(p) >= 5 and p, 60, "every program running"
        )
        assert any(name.startswith(PROGRAM_ACTOR_PREFIX) for name in programs)
        # the front's own files: its metrics (every request counts) and its sessions' database
        assert httpx.get(api_url + "/metrics", headers={"Authorization": f"Bearer {password}"})
        assert (run_dir / "dashboard-sessions.sqlite").exists()

        names = {p.name for p in base.rglob("*")}
        for made in (
            "supervisord.log",
            "supervisor.sock",
            "router.sock",
            "router.sqlite",
            "actor.sqlite",
            "bus-replies.sqlite",
            "admin-password",
            API_SECRETS_FILE,
            "world.sqlite",  # the local world's
        ):
            assert made in names, made
        assert list((run_dir / "conf.d").glob(f"{PROGRAM_ACTOR_PREFIX}*.conf"))  # its invite
        assert loose_entries(run_dir) == [] and loose_entries(data_dir) == []
        kept = json.loads((run_dir / API_SECRETS_FILE).read_text())
        _check_environments(programs, proc.pid, kept)
    finally:
        _stop(proc)


def test_the_operator_deployment_keeps_its_files_and_secrets_private(base: Path) -> None:
    run_dir, data_dir = base / "run", base / "data"
    api_bind = f"127.0.0.1:{free_port()}"
    password_hash = bcrypt.hashpw(b"operator password", bcrypt.gensalt(rounds=4)).decode()
    base.mkdir()
    env_file = base / "gateway.env"
    # the guide's Core Lightning environment file, our paths and secrets (no plugin there)
    ours = {
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_RUN_DIR": str(run_dir),
        "GATEWAY_API_PASSWORD_HASH": password_hash,
        "GATEWAY_API_METRICS_TOKEN": "scrape-me",
        "GATEWAY_API_BIND": api_bind,
        "GATEWAY_ROUTER_PUBLIC_API_URL": f"http://{api_bind}",
        "GATEWAY_LNRPC_LISTEN": f"unix:{run_dir}/lnrpc/extension.sock",
    }
    lines = []
    for line in guide_steps()["env-file-cln"].splitlines():
        key, _, value = line.partition("=")
        lines.append(f"{key}={ours.pop(key, value)}")
    assert ours == {}, f"the guide's CLN environment file lacks {sorted(ours)}"
    assert not any(line.startswith("GATEWAY_LNRPC_LND_") for line in lines)
    env_file.write_text("\n".join(lines) + "\n")
    shell = {**_clean_env(), "GATEWAY_RPCPASSWORD": "operator password"}  # for gateway-cli
    proc = _start(["deploy.gateway", "--env-file", str(env_file)], shell, base / "log")
    try:
        api_url = f"http://{api_bind}"
        wait_until(
            lambda: httpx.get(api_url + "/health/live", timeout=2).status_code == 200,
            90,
            "the API front",
        )
        scrape = httpx.get(api_url + "/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert scrape.status_code == 200  # the metrics token reached the front
        admin = httpx.post(
            api_url + "/info", headers={"Authorization": "Bearer operator password"}, timeout=30
        )
        assert admin.status_code != 401  # and the password's hash
        programs = wait_until(
            lambda: (p := _programs(run_dir)) and len(p) == 2 and p, 60, "router and API front"
        )
        # the guide's status step: supervisord lists no extension (lightningd runs the plugin),
        # so nothing is STOPPED and supervisorctl exits 0
        status = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", guide_steps()["status"]],
            env={
                **shell,
                "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}",
                "GATEWAY_RUN_DIR": str(run_dir),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0, status.stdout + status.stderr
        listed = {line.split()[0] for line in status.stdout.splitlines() if line.strip()}
        assert listed == {"gateway-router", "gateway-api"}, status.stdout
        wait_until(lambda: (run_dir / "bus" / "router.sock").exists(), 30, "the router's socket")
        wait_until(lambda: (data_dir / "router.sqlite").exists(), 30, "the router's database")
        time.sleep(1)  # the front's first requests have made their files
        assert loose_entries(run_dir) == [] and loose_entries(data_dir) == []
        kept = json.loads((run_dir / API_SECRETS_FILE).read_text())
        assert kept["GATEWAY_API_METRICS_TOKEN"] == "scrape-me"
        _check_environments(programs, proc.pid, kept)
        assert "GATEWAY_API_METRICS_TOKEN" not in environ(proc.pid)
        for pid in (proc.pid, *programs.values()):  # the password itself reaches no program
            assert "GATEWAY_RPCPASSWORD" not in environ(pid)
    finally:
        _stop(proc)
