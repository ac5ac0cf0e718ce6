"""Fixtures for end-to-end tests: the real process tree under supervisord (the simulated regtest
world: tests/simworld.py; the Lightning extension on its unix socket in the run dir, the router,
the API front), a bus helper, and the regtest world's HTTP helper.

A module may set `TREE_ENV` (extra environment: test hooks) or define `tree_env(base)` (the
same, made in the tree's own folder `base`, e.g. a TLS folder), or `tree_env(base, request)` when
it needs the module's other fixtures (`request.getfixturevalue("bitcoind")`: a chain source)."""

from __future__ import annotations

import asyncio
import inspect
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

from bus import BusClient, ipc_endpoint
from deploy.launch import prepare_env
from gwcore.constants import ENV_API_PASSWORD_HASH, ROUTER_ENDPOINT_NAME
from gwcore.extension import ExtensionEndpoint
from gwcore.secretfile import secret_file
from gwproto import gateway_lnrpc_pb2 as lnpb
from gwproto import gateway_lnrpc_pb2_grpc as lnpb_grpc
from peers.harness.procs import free_port, stop_group
from tests.simworld import add_sim_world

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def wait_until(cond, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = cond()
        except Exception:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _module_env(make_env, base: Path, request: pytest.FixtureRequest) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A module's `tree_env(base)` or `tree_env(base, request)`."""
    if len(inspect.signature(make_env).parameters) > 1:
        return dict(make_env(base, request))
    return dict(make_env(base))


def _admin_password(run_dir: Path) -> dict[str, str]:
    """The tree's admin password (where the launcher keeps it), hashed at bcrypt's lowest cost:
    at the launcher's, every tree's start and every API worker's first check cost a quarter
    second of CPU each."""
    run_dir.mkdir(mode=0o700, parents=True)
    password = secret_file(run_dir / "admin-password", 18).encode()
    return {ENV_API_PASSWORD_HASH: bcrypt.hashpw(password, bcrypt.gensalt(4)).decode()}


@pytest.fixture(scope="module")
def tree(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict]:
    """The tree, per test module; a module may set TREE_ENV for extra environment (test hooks).
    Its programs' output is kept after it, with pytest's folders of the run."""
    base = Path(tempfile.gettempdir(), f"fmgw-e2e-{os.urandom(3).hex()}")
    run_dir, data_dir = base / "run", base / "data"
    api_bind = f"127.0.0.1:{free_port()}"
    base.mkdir(mode=0o700)
    make_env = getattr(request.module, "tree_env", None)
    env = prepare_env(
        run_dir,
        data_dir,
        {
            **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_LNRPC_")},
            # a tree lives a minute: what an actor makes ahead of need (a full pool of ground
            # mintv2 tweaks, a peg-in address ground ahead: seconds of CPU) would mostly be waste;
            # nor does a recovery look 4 seeded addresses past the last paid (~5 s each): every
            # address a test asks for is paid (the gap's rule: tests/fmclient/test_recovery_gap.py)
            "GATEWAY_ACTOR_TWEAK_POOL_SIZE": "8",
            "GATEWAY_ACTOR_READY_ADDRESSES": "0",
            "GATEWAY_ACTOR_RECOVERY_GAP": "1",
            **_admin_password(run_dir),
            **add_sim_world(run_dir, data_dir),
            **getattr(request.module, "TREE_ENV", {}),
            **(_module_env(make_env, base, request) if make_env is not None else {}),
            "GATEWAY_API_BIND": api_bind,
            "GATEWAY_ROUTER_PUBLIC_API_URL": f"http://{api_bind}",
        },
    )
    log = tmp_path_factory.mktemp("tree-log") / f"{base.name}.log"
    log_file = open(log, "ab")  # noqa: SIM115 - the tree's logs, open for its whole life
    sup = [_supervisord(env, log_file)]

    def restart(wipe: tuple[str, ...] = ()) -> None:
        """Stop the whole tree, delete `wipe` (paths under the tree's folder, e.g. the
        gateway's parts of the data folder, "run" for a reboot's lost run folder), start it
        again with the same environment and wait until it serves."""
        stop_group(sup[0])
        for rel in wipe:
            subprocess.run(["rm", "-rf", str(base / rel)], check=True)
        add_sim_world(run_dir, data_dir)  # if conf.d was wiped
        sup[0] = _supervisord(env, log_file)
        _wait_served(data_dir, env, api_url)

    api_url = f"http://{api_bind}"
    try:
        info = _wait_served(data_dir, env, api_url)
        yield {
            "run_dir": run_dir,
            "data_dir": data_dir,
            "regtest": info,
            "env": env,
            "extension": ExtensionEndpoint.parse(
                env["GATEWAY_LNRPC_LISTEN"], env["GATEWAY_LNRPC_TLS_DIR"]
            ),
            "api_url": api_url,
            "password": (run_dir / "admin-password").read_text().strip(),
            "log": log,  # every program's output (kept after the tree)
            "base": base,
            "restart": restart,
        }
    finally:
        stop_group(sup[0])
        log_file.close()
        subprocess.run(["rm", "-rf", str(base)], check=False)


def _supervisord(env: dict[str, str], log_file) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    return subprocess.Popen(
        [str(BIN / "supervisord"), "-n", "-c", str(REPO / "supervisord.conf")],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_served(data_dir: Path, env: dict[str, str], api_url: str) -> dict:
    """The tree's regtest world, Lightning extension and API front answering: regtestd.json."""
    info = wait_until(
        lambda: json.loads((data_dir / "regtest" / "regtestd.json").read_text()), 30, "regtestd"
    )
    http = httpx.Client(timeout=2)  # one for the polls below (a new one costs ~27 ms CPU)
    extension = ExtensionEndpoint.parse(env["GATEWAY_LNRPC_LISTEN"], env["GATEWAY_LNRPC_TLS_DIR"])

    def extension_up() -> bool:
        with extension.sync_channel() as ch:
            return (
                lnpb_grpc.GatewayLightningStub(ch)
                .GetNodeInfo(lnpb.GetNodeInfoRequest(), timeout=2)
                .synced
            )

    wait_until(extension_up, 60, "the Lightning extension")
    try:
        wait_until(
            lambda: http.get(api_url + "/openapi.json").status_code == 200,
            60,
            "the API front",
        )
    finally:
        http.close()
    return info


def bus(tree: dict, service: str, method: str, body: dict, timeout: float = 120) -> dict:
    async def go() -> bytes:
        client = BusClient(ipc_endpoint(tree["run_dir"], ROUTER_ENDPOINT_NAME))
        try:
            return await client.request(
                service, method, json.dumps(body).encode(), timeout=timeout, retries=2
            )
        finally:
            await client.close()

    return json.loads(asyncio.run(go()))


class World:
    def __init__(self, info: dict) -> None:
        self.http = httpx.Client(
            base_url=info["api_url"],
            headers={"Authorization": f"Bearer {info['api_token']}"},
            timeout=120,
        )
        self.rpc_auth = (info["rpc_user"], info["rpc_password"])
        self.rpc_url = info["rpc_url"]

    def post(self, path: str, body: dict) -> dict:
        r = self.http.post(path, json=body)
        assert r.status_code < 400, r.text
        return r.json()

    def get(self, path: str) -> dict:
        return self.http.get(path).json()

    def send(self, address: str, btc: str, mine: bool = True) -> str:
        """Pay `address` from the miner wallet (and confirm it); the txid."""
        bal = httpx.post(
            self.rpc_url + "/wallet/miner",
            json={"method": "getbalance", "params": []},
            auth=self.rpc_auth,
        ).json()["result"]
        if bal < float(btc) + 1:  # coinbases mature after 100 blocks
            self.post("/v1/mine", {"blocks": 101})
        r = httpx.post(
            self.rpc_url + "/wallet/miner",
            json={"method": "sendtoaddress", "params": [address, btc]},
            auth=self.rpc_auth,
        )
        assert r.json()["error"] is None, r.text
        if mine:
            self.post("/v1/mine", {"blocks": 1})
        return r.json()["result"]

    def raw_transaction(self, txid: str) -> str:
        r = httpx.post(
            self.rpc_url,
            json={"method": "getrawtransaction", "params": [txid]},
            auth=self.rpc_auth,
        )
        return r.json()["result"]


def supervisor_rpc(tree: dict) -> xmlrpc.client.ServerProxy:
    return xmlrpc.client.ServerProxy(
        "http://127.0.0.1",
        transport=SupervisorTransport(None, None, tree["env"]["SUPERVISOR_SERVER_URL"]),
    )


def ensure_lightning(world: World) -> None:
    """alice -> gateway -> bob in the regtest world (made once per tree)."""
    if world.http.get("/v1/nodes/alice").status_code == 200:
        return
    for n in ("alice", "bob"):
        world.post("/v1/nodes", {"name": n})
    world.post("/v1/nodes/alice/fund", {"amount_sat": 5_000_000})
    world.post("/v1/nodes/gateway/fund", {"amount_sat": 5_000_000})
    world.post("/v1/channels", {"from": "alice", "to": "gateway", "capacity_sat": 2_000_000})
    world.post("/v1/channels", {"from": "gateway", "to": "bob", "capacity_sat": 2_000_000})
