"""The local world of `make run` in a temporary devnet directory, for benchmarks that measure
the whole running gateway. Not a benchmark itself: `make bench` skips files whose name starts with `_`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from peers.harness.procs import free_port

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def devnet_world(extra_env: dict[str, str] | None = None) -> Iterator[dict]:
    """Start the world (supervisord, regtestd, dev federations, extension, router, API front),
    yield its world.json, stop and remove it. `extra_env`: more settings (a chain source)."""
    devnet = Path(f"/tmp/fmgw-bench-{os.urandom(3).hex()}")
    env = {
        **os.environ,
        **(extra_env or {}),
        "GATEWAY_DEVNET_DIR": str(devnet),
        "GATEWAY_RUN_DIR": str(devnet / "run"),
        "GATEWAY_DATA_DIR": str(devnet / "data"),
        "GATEWAY_API_BIND": f"127.0.0.1:{free_port()}",
    }
    env.pop("GATEWAY_LNRPC_LISTEN", None)  # the extension's socket in this run dir

    def devnet_cmd(cmd: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "deploy.devnet", cmd],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
            timeout=400,
        )

    try:
        devnet_cmd("run")
        yield json.loads((devnet / "world.json").read_text())
    finally:
        try:
            devnet_cmd("stop")
        finally:
            time.sleep(2)
            shutil.rmtree(devnet, ignore_errors=True)
