"""`make run`'s job (deploy/devnet.py) on a fresh directory reaches a paid invoice in both
directions with nothing but the CLIs and .devnet/world.json; a second run reports the running
world; stop stops everything."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_make_run_reaches_paid_invoices(tmp_path: Path) -> None:
    devnet = Path(f"/tmp/fmgw-devnet-{os.urandom(3).hex()}")
    env = {
        **os.environ,
        "GATEWAY_DEVNET_DIR": str(devnet),
        "GATEWAY_RUN_DIR": str(devnet / "run"),
        "GATEWAY_DATA_DIR": str(devnet / "data"),
        "GATEWAY_API_BIND": f"127.0.0.1:{_port()}",
        "GATEWAY_LNRPC_LISTEN": f"127.0.0.1:{_port()}",
    }

    def devnet_cmd(cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "deploy.devnet", cmd],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
        )

    try:
        first = devnet_cmd("run")
        assert first.returncode == 0, first.stderr[-2000:]
        assert "the local world is running" in first.stdout
        world = json.loads((devnet / "world.json").read_text())
        assert {f["name"] for f in world["federations"]} == {"alpha", "beta"}

        def run(*args: str) -> dict:
            out = subprocess.run(list(args), capture_output=True, text=True, timeout=150, env=env)
            assert out.returncode == 0, out.stderr
            return json.loads(out.stdout)

        # every CLI finds the world by itself: no --wallet, --data-dir, address or password
        fed_cli, regtest_cli, gateway_cli = (
            str(BIN / n) for n in ("fed-cli", "regtest-cli", "gateway-cli")
        )
        inv = run(fed_cli, "ln-invoice", "--amount-msat", "50000")
        assert run(regtest_cli, "pay", "alice", inv["invoice"])["status"] == "succeeded"
        assert run(fed_cli, "await-invoice", inv["operation_id"])["received_msat"] == 50_000
        bob = run(regtest_cli, "invoice", "bob", "20000")
        paid = run(fed_cli, "ln-pay", bob["bolt11"])
        assert paid["preimage"] == bob["preimage"]
        assert run(fed_cli, "--federation", "beta", "balance")["balance_msat"] > 0
        info = run(gateway_cli, "info")
        assert {f["name"] for f in info["federations"]} == {"alpha", "beta"}
        assert info["node"]["alias"] and run(gateway_cli, "balances")["total_msat"] > 0
        summary = run(gateway_cli, "payment-summary")["directions"]
        assert summary["incoming"]["settled"] >= 1 and summary["outgoing"]["settled"] >= 1

        again = devnet_cmd("run")
        assert again.returncode == 0 and "already running" in again.stdout
        status = devnet_cmd("status")
        assert "gateway-api" in status.stdout and "RUNNING" in status.stdout
    finally:
        devnet_cmd("stop")
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline
            and subprocess.run(["pgrep", "-f", str(devnet)], capture_output=True).returncode == 0
        ):
            time.sleep(0.5)
        subprocess.run(["rm", "-rf", str(devnet)], check=False)
