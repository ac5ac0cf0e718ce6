"""The gateway on the simulated world (regtestd, the two development federations), in a temporary
folder, for the benchmarks that measure the whole running gateway and still run there (their move
to the real world of `make run` is issue 25's). The tree is the end-to-end tests' (the repo's
supervisord.conf and tests/simworld.py); this readies it as the old `make run` did: alice ->
gateway -> bob, each development federation connected and funded, a funded user wallet per
federation. Not a benchmark itself: `make bench` skips files whose name starts with `_`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.launch import prepare_env
from devworld.fedlib.client import FederationClient
from peers.harness.procs import free_port, stop_group
from services.cli.client import GatewayApi
from tests.e2e.conftest import World, _supervisord, _wait_served, ensure_lightning
from tests.simworld import add_sim_world


@contextmanager
def devnet_world(extra_env: dict[str, str] | None = None) -> Iterator[dict]:
    """Start the tree, yield {gateway: {api_url, password}, regtest: {data_dir}, federations:
    [{name, federation_id, invite_code, user_wallet}]}, stop and remove it. `extra_env`: more
    settings (a chain source)."""
    base = Path(f"/tmp/fmgw-bench-{os.urandom(3).hex()}")  # short: ipc socket paths are bounded
    run_dir, data_dir = base / "run", base / "data"
    base.mkdir(mode=0o700)
    api_url = f"http://127.0.0.1:{free_port()}"
    env = prepare_env(
        run_dir,
        data_dir,
        {
            **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_LNRPC_")},
            **add_sim_world(run_dir, data_dir),
            **(extra_env or {}),
            "GATEWAY_API_BIND": api_url.removeprefix("http://"),
            "GATEWAY_ROUTER_PUBLIC_API_URL": api_url,
        },
    )
    with base.with_suffix(".log").open("ab") as log:
        sup = _supervisord(env, log)
        try:
            info, feds = _wait_served(data_dir, env, api_url, dev_federations=True)
            world = World(info)
            ensure_lightning(world)
            password = (run_dir / "admin-password").read_text().strip()
            api = GatewayApi(api_url, password)
            out = []
            for name, fed in feds.items():
                api.connect_fed(fed["invite_code"])
                dep = api.address_for(fed["federation_id"])
                world.send(dep["address"], "0.02")
                api.deposit(fed["federation_id"], dep["operation_id"])
                wallet = base / "users" / name
                user = FederationClient.join(wallet / "wallet.sqlite", fed["invite_code"])
                op, address = user.deposit_address()
                world.send(address, "0.001")
                user.await_deposit(op, timeout=60)
                out.append({**fed, "name": name, "user_wallet": str(wallet)})
            yield {
                "gateway": {"api_url": api_url, "password": password},
                "regtest": {"data_dir": str(data_dir / "regtest")},
                "federations": out,
            }
        finally:
            stop_group(sup)
            shutil.rmtree(base, ignore_errors=True)
            base.with_suffix(".log").unlink(missing_ok=True)
