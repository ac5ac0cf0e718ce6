"""The gateway's process tree on the simulated Lightning network (regtestd), in a temporary
folder, for the benchmarks that connect real fedimintd federations to it and pay through it
(bench/fedimint_gateway.py, bench/fedimint_lnv1.py): the end-to-end tests' tree (the repo's
supervisord.conf and tests/simworld.py), with alice -> gateway -> bob. Not a benchmark itself:
`make bench` skips files whose name starts with `_`."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.launch import prepare_env
from peers.harness.procs import free_port, stop_group
from tests.e2e.conftest import World, _supervisord, _wait_served, ensure_lightning
from tests.simworld import add_sim_world


@contextmanager
def devnet_world(extra_env: dict[str, str] | None = None) -> Iterator[dict]:
    """Start the tree, yield {gateway: {api_url, password}, regtest: {data_dir}}, stop and
    remove it. `extra_env`: more settings (a chain source)."""
    # short: ipc socket paths are bounded
    base = Path(tempfile.gettempdir(), f"fmgw-bench-{os.urandom(3).hex()}")
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
            info = _wait_served(data_dir, env, api_url)
            ensure_lightning(World(info))
            password = (run_dir / "admin-password").read_text().strip()
            yield {
                "gateway": {"api_url": api_url, "password": password},
                "regtest": {"data_dir": str(data_dir / "regtest")},
            }
        finally:
            stop_group(sup)
            shutil.rmtree(base, ignore_errors=True)
            base.with_suffix(".log").unlink(missing_ok=True)
