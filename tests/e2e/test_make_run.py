"""`make run` on a fresh clone of the repository reaches a paid invoice in both directions with
nothing but the CLIs, run inside the clone without flags (they find `.devnet/world.json`); a
second `make run` reports the running world; everything the world makes is private (files
0600, folders 0700) though make ran under umask 002; `make status` lists every program; `make
stop` stops every process of it before it returns, and `make run` then brings the same world back.
A stranger on the machine gets nothing from the world's Lightning extension.

The clone shares this test run's virtualenv (`.venv` is a link to it, and make is told the venv
is set up), so the test measures the world's setup, not pip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

from supervisor.xmlrpc import SupervisorTransport

from gwcore.constants import PROGRAM_LNRPC
from peers.harness.procs import free_port
from tests.private_files import loose_entries
from tests.strangers import assert_strangers_get_nothing

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def _alive(marker: str) -> list[str]:
    out = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if "pgrep" not in line]


def test_make_run_on_a_fresh_clone_reaches_paid_invoices() -> None:
    clone = Path(f"/tmp/fmgw-clone-{os.urandom(3).hex()}")  # short: ipc socket paths are bounded
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    (clone / ".venv").symlink_to(Path(sys.prefix))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_", "SUPERVISOR_")) and k != "VIRTUAL_ENV"
    }
    # another port than a developer's own `make run` on this machine (the extension's socket is
    # in the clone's own run dir)
    env["GATEWAY_API_BIND"] = f"127.0.0.1:{free_port()}"

    def make(target: str) -> subprocess.CompletedProcess[str]:
        # -o: the venv counts as set up (it is this test run's own)
        return subprocess.run(
            ["make", "-o", ".venv/.installed", target],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
            preexec_fn=lambda: os.umask(0o002),  # a loose umask: the world's files stay private
        )

    def cli(*args: str) -> dict:
        out = subprocess.run(
            [str(BIN / args[0]), *args[1:]],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=150,
        )
        assert out.returncode == 0, (args, out.stderr)
        return json.loads(out.stdout)

    try:
        first = make("run")
        assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
        assert "the local world is running" in first.stdout
        assert "admin password:" in first.stdout and "/ui/" in first.stdout
        # every file of the world (databases, logs, sockets, conf.d files with invite codes, the
        # user wallets, world.json with the admin password) 0600, every folder 0700
        assert loose_entries(clone / ".devnet") == []
        world_file = clone / ".devnet" / "world.json"
        assert {"run", "data", "users"} <= {p.name for p in world_file.parent.iterdir()}
        world = json.loads(world_file.read_text())
        assert {f["name"] for f in world["federations"]} == {"alpha", "beta"}
        assert world["gateway"]["api_url"].endswith(env["GATEWAY_API_BIND"])
        # only the gateway may call the Lightning extension: a stranger gets nothing from it
        run_dir = clone / ".devnet" / "run"
        rpc = xmlrpc.client.ServerProxy(
            "http://127.0.0.1",
            transport=SupervisorTransport(None, None, f"unix://{run_dir}/supervisor.sock"),
        )
        ext_pid = int(rpc.supervisor.getProcessInfo(PROGRAM_LNRPC)["pid"])
        assert_strangers_get_nothing(ext_pid, run_dir)

        # into the federation: alice pays the alpha user's invoice over Lightning
        inv = cli("fed-cli", "ln-invoice", "--amount-msat", "50000")
        assert cli("regtest-cli", "pay", "alice", inv["invoice"])["status"] == "succeeded"
        assert cli("fed-cli", "await-invoice", inv["operation_id"])["received_msat"] == 50_000
        # out of the federation: the user pays bob's invoice through the gateway
        bob = cli("regtest-cli", "invoice", "bob", "20000")
        paid = cli("fed-cli", "ln-pay", bob["bolt11"])
        assert paid["preimage"] == bob["preimage"]
        assert cli("fed-cli", "--federation", "beta", "balance")["balance_msat"] > 0
        info = cli("gateway-cli", "info")
        assert {f["name"] for f in info["federations"]} == {"alpha", "beta"}
        assert info["node"]["alias"] and cli("gateway-cli", "balances")["total_msat"] > 0
        summary = cli("gateway-cli", "payment-summary")["directions"]
        assert summary["incoming"]["settled"] >= 1 and summary["outgoing"]["settled"] >= 1

        again = make("run")
        assert again.returncode == 0 and "already running" in again.stdout
        status = make("status")
        for program in ("gateway-api", "gateway-router", "regtestd", "devfed-alpha"):
            assert program in status.stdout
        assert status.stdout.count("RUNNING") >= 8  # 6 programs and one actor per federation

        assert loose_entries(clone / ".devnet") == []  # after the CLIs' payments too

        # stop, then run again: the same world comes back (make stop waits until it is down)
        balance = cli("fed-cli", "balance")["balance_msat"]
        gateway_total = cli("gateway-cli", "balances")["total_msat"]
        stopped_once = make("stop")
        assert stopped_once.returncode == 0 and "stopped" in stopped_once.stdout
        assert not _alive(str(clone))
        again = make("run")
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
        assert cli("fed-cli", "balance")["balance_msat"] == balance
        assert cli("gateway-cli", "balances")["total_msat"] == gateway_total
        assert {f["name"] for f in cli("gateway-cli", "info")["federations"]} == {"alpha", "beta"}
    finally:
        stopped = make("stop")
        deadline = time.monotonic() + 60
        while _alive(str(clone)) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = _alive(str(clone))
        shutil.rmtree(clone, ignore_errors=True)
    assert stopped.returncode == 0, stopped.stderr
    assert not left, left  # make stop stopped every process of the world
