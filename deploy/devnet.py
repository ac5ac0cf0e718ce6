"""The local world in one command (`make run`): start the tree under supervisord if it is not
running, then make it useful, idempotently:

* the regtest world: alice and bob, channels alice -> gateway and gateway -> bob;
* the gateway connected to both development federations and funded by a peg-in in each;
* a user wallet joined to each federation and funded (`fed-cli --wallet .devnet/users/<fed>`);
* everything under `.devnet/` private to the user (files 0600, folders 0700: gwcore.files);
* `.devnet/world.json` for the CLIs: {"gateway": {"api_url", "password"}, "federations": [{"name",
  "federation_id", "invite_code", "user_wallet"}], "regtest": {"data_dir"}}.

`make stop` stops it all (`python -m deploy.devnet stop`); `make status` lists every program.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

import httpx
from supervisor.xmlrpc import SupervisorTransport

from deploy.launch import prepare_env
from devworld.fedlib.client import FederationClient
from gwcore.constants import ENV_DATA_DIR, ENV_DEVNET_DIR, ENV_RUN_DIR, REGTESTD_INFO_FILE
from gwcore.devworld import DEVNET_DIR_NAME, WORLD_FILE
from gwcore.extension import ExtensionConfigError
from gwcore.files import keep_private, private_dir, write_private
from services.cli.client import ApiError, GatewayApi

REPO = Path(__file__).resolve().parent.parent
DEVNET = Path(os.environ.get(ENV_DEVNET_DIR) or REPO / DEVNET_DIR_NAME)
FEDERATIONS = ("alpha", "beta")


def _wait(cond, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = cond()
        except Exception:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.3)


def _env() -> dict[str, str]:
    private_dir(DEVNET, tighten=True)  # the world's own folder: its run, data and user wallets
    env = dict(os.environ)
    env.setdefault(ENV_RUN_DIR, str(DEVNET / "run"))
    env.setdefault(ENV_DATA_DIR, str(DEVNET / "data"))
    try:
        return prepare_env(Path(env[ENV_RUN_DIR]), Path(env[ENV_DATA_DIR]), env)
    except ExtensionConfigError as exc:  # e.g. GATEWAY_LNRPC_LISTEN on TCP without TLS
        raise SystemExit(f"make run: {exc}") from None


def _supervisor(env: dict[str, str]) -> xmlrpc.client.ServerProxy:
    return xmlrpc.client.ServerProxy(
        "http://127.0.0.1", transport=SupervisorTransport(None, None, env["SUPERVISOR_SERVER_URL"])
    )


def running(env: dict[str, str]) -> bool:
    try:
        return _supervisor(env).supervisor.getState()["statename"] == "RUNNING"
    except (OSError, xmlrpc.client.Fault):
        return False


def _supervisord_pid(env: dict[str, str]) -> int | None:
    try:
        pid = int((Path(env[ENV_RUN_DIR]) / "supervisord.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, KeyError):
        return None
    # a stale pid file after an unclean exit may name another process by now: not ours
    return pid if b"supervisord" in cmdline else None


def _wait_gone(pid: int | None, timeout_s: float = 120) -> None:
    """Until process `pid` has exited (supervisord stops every program first)."""
    deadline = time.monotonic() + timeout_s
    while pid is not None and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.2)
    if pid is not None:
        raise SystemExit(f"supervisord (pid {pid}) is still running after {timeout_s:.0f} s")


def start(env: dict[str, str]) -> None:
    if running(env):
        return
    _wait_gone(_supervisord_pid(env))  # a world still shutting down: let it finish first
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "supervisord"), "-c", str(REPO / "supervisord.conf")], env=env, check=True
    )  # daemonizes
    _wait(lambda: running(env), 30, "supervisord")


class Regtest:
    def __init__(self, data_dir: Path) -> None:
        info = _wait(
            lambda: json.loads((data_dir / REGTESTD_INFO_FILE).read_text()), 60, "regtestd"
        )
        self.info = info
        self.http = httpx.Client(
            base_url=info["api_url"],
            headers={"Authorization": f"Bearer {info['api_token']}"},
            timeout=120,
        )
        _wait(lambda: self.http.get("/v1/info").status_code == 200, 30, "the regtest API")

    def post(self, path: str, body: dict) -> dict:
        r = self.http.post(path, json=body)
        if r.status_code >= 400:
            raise SystemExit(f"regtest {path}: {r.text}")
        return r.json()

    def rpc(self, method: str, *params: object, wallet: str = "miner") -> object:
        r = httpx.post(
            self.info["rpc_url"] + f"/wallet/{wallet}",
            json={"method": method, "params": list(params)},
            auth=(self.info["rpc_user"], self.info["rpc_password"]),
            timeout=60,
        )
        data = r.json()
        if data.get("error"):
            raise SystemExit(f"regtest rpc {method}: {data['error']}")
        return data["result"]

    def send(self, address: str, btc: str) -> None:
        if float(self.rpc("getbalance")) < float(btc) + 1:  # type: ignore[arg-type]
            self.post("/v1/mine", {"blocks": 101})
        self.rpc("sendtoaddress", address, btc)
        self.post("/v1/mine", {"blocks": 1})

    def lightning(self) -> None:
        if self.http.get("/v1/nodes/alice").status_code == 200:
            return
        _wait(
            lambda: self.http.get("/v1/nodes/gateway").status_code == 200,
            60,
            "the gateway's node (the extension makes it)",
        )
        for n in ("alice", "bob"):
            self.post("/v1/nodes", {"name": n, "alias": n})
        self.post("/v1/nodes/alice/fund", {"amount_sat": 10_000_000})
        self.post("/v1/nodes/gateway/fund", {"amount_sat": 10_000_000})
        self.post("/v1/channels", {"from": "alice", "to": "gateway", "capacity_sat": 5_000_000})
        self.post("/v1/channels", {"from": "gateway", "to": "bob", "capacity_sat": 5_000_000})


def setup(env: dict[str, str]) -> dict:
    data, run = Path(env[ENV_DATA_DIR]), Path(env[ENV_RUN_DIR])
    world = Regtest(data / "regtest")
    world.lightning()
    password = (run / "admin-password").read_text().strip()
    api_url = f"http://{env['GATEWAY_API_BIND']}"
    api = GatewayApi(api_url, password)
    _wait(
        lambda: httpx.get(api_url + "/openapi.json", timeout=2).status_code == 200,
        60,
        "the gateway API",
    )
    feds = []
    for name in FEDERATIONS:
        info = _wait(
            lambda name=name: json.loads(
                (data / "federations" / name / "federation.json").read_text()
            ),
            90,
            name,
        )
        _wait(
            lambda info=info: httpx.get(info["api_url"] + "/health", timeout=2).status_code == 200,
            60,
            f"federation {name}",
        )
        entry = _wait(
            lambda info=info: _try(api.connect_fed, info["invite_code"]), 120, f"connecting {name}"
        )
        if api.balance(entry["federation_id"])["balance_msat"] < 100_000_000:
            dep = api.address_for(entry["federation_id"])
            world.send(dep["address"], "0.02")
            api.deposit(entry["federation_id"], dep["operation_id"])
        wallet_dir = DEVNET / "users" / name
        user = FederationClient.join(wallet_dir / "wallet.sqlite", info["invite_code"])
        if user.balance() < 10_000_000:
            op, address = user.deposit_address()
            world.send(address, "0.001")
            user.await_deposit(op, timeout=60)
        feds.append(
            {
                "name": name,
                "federation_id": info["federation_id"],
                "invite_code": info["invite_code"],
                "user_wallet": str(wallet_dir),
            }
        )
    out = {
        "gateway": {"api_url": api_url, "password": password},
        "federations": feds,
        "regtest": {"data_dir": str(data / "regtest")},
    }
    write_private(DEVNET / WORLD_FILE, json.dumps(out, indent=2))  # holds the admin password
    return out


def _try(func, *args):  # type: ignore[no-untyped-def]
    try:
        return func(*args)
    except ApiError as exc:
        if exc.kind == "invalid":
            raise SystemExit(f"{exc.code}: {exc.message}") from None
        return None


def main() -> None:
    keep_private()  # the world's files, its user wallets and supervisord's: 0600, folders 0700
    env = _env()
    cmd = sys.argv[1] if len(sys.argv) > 1 else "run"
    if cmd == "stop":
        if running(env):
            pid = _supervisord_pid(env)
            _supervisor(env).supervisor.shutdown()
            print("stopping the local world …", flush=True)
            _wait_gone(pid)
            print("the local world is stopped")
        else:
            _wait_gone(_supervisord_pid(env))  # one still shutting down
            print("the local world is not running")
        return
    if cmd == "status":
        if not running(env):
            raise SystemExit("the local world is not running: make run")
        for p in _supervisor(env).supervisor.getAllProcessInfo():
            print(f"{p['name']:<40}{p['statename']:<10}{p['description']}")
        return
    was_running = running(env)
    start(env)
    world = setup(env)
    print(
        "\nthe local world is "
        + ("already running" if was_running else "running")
        + " (make stop stops it, make status lists it)"
    )
    print(
        f"  dashboard       : {world['gateway']['api_url']}/ui/   admin password: {world['gateway']['password']}"
    )
    print(f"  HTTP API        : {world['gateway']['api_url']}   (OpenAPI at /openapi.json)")
    print(f"  world details   : {DEVNET / WORLD_FILE}")
    print("  try (inside the repository the CLIs find this world by themselves):")
    print("    .venv/bin/gateway-cli info")
    print("    .venv/bin/fed-cli ln-invoice --amount-msat 50000        # alpha's user wallet")
    print("    .venv/bin/regtest-cli pay alice <invoice>               # alice pays it")


if __name__ == "__main__":
    main()
