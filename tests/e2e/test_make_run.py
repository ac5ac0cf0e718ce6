"""`make run` on a fresh clone of the repository starts the real local world (bitcoind,
fedimintd federations alpha and beta, lnd alice -> gateway -> bob, the gateway connected and
funded, a funded fedimint-cli user per federation), and the README's quick start runs in it as
written: each command succeeds and each line marked `# →` prints what the README shows. A second
`make run` reports the running world; everything the world makes is private (files 0600,
folders 0700) though make ran under umask 002; `make status` lists the gateway's programs and
the world's; `make stop` stops every process of it before it returns (`make status` then says
"not running" and exits 0), and `make run` brings the same world back, balances to the msat.
A stranger on the machine gets nothing from the world's Lightning extension.

The clone shares this test run's virtualenv (`.venv` is a link to it, and make is told the venv
is set up) and the peer cache, so the test measures the world's setup, not pip or cargo."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from pathlib import Path

import pytest
from supervisor.xmlrpc import SupervisorTransport

from gwcore.constants import PROGRAM_LNRPC, PROGRAM_PREFIX
from peers.harness.procs import free_port
from tests.private_files import loose_entries
from tests.strangers import assert_strangers_get_nothing

pytestmark = pytest.mark.timeout(900)
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def _alive(marker: str) -> list[str]:
    out = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if "pgrep" not in line]


def quick_start(readme: str) -> list[tuple[str, str | None]]:
    """The README's quick-start block: (command, what its `# →` comment says it prints)."""
    block = re.search(r"<!-- quick-start -->\n```sh\n(.*?)\n```", readme, re.S)
    assert block, "the README has no <!-- quick-start --> block"
    steps = []
    for line in block[1].splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        expected = line.split("# →", 1)[1].strip() if "# →" in line else None
        steps.append((line, expected))
    return steps


def _matches(expected: str, out: str) -> bool:
    """`<…>` in the README stands for a value that differs each time."""
    pattern = "".join(
        ".+" if part.startswith("<") else re.escape(part)
        for part in re.split(r"(<[^>]*>)", expected)
        if part
    )
    return re.fullmatch(pattern, out.strip()) is not None


def test_quick_start_parser() -> None:
    steps = quick_start((REPO / "README.md").read_text())
    assert steps[0] == ("make run", None)
    assert any(e == "Claimed" for _, e in steps) and any(e == "SUCCEEDED" for _, e in steps)
    assert _matches("<the preimage>", "ab" * 32) and not _matches("Claimed", "Refunded")


def test_a_federation_of_two_or_three_guardians_is_refused_before_anything(tmp_path: Path) -> None:
    devnet = tmp_path / "devnet"
    out = subprocess.run(
        [sys.executable, "-m", "deploy.devnet", "run", "--guardians", "2"],
        cwd=REPO,
        env={**os.environ, "GATEWAY_DEVNET_DIR": str(devnet)},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and "1 guardian or at least 4" in out.stderr
    assert not devnet.exists()


def test_make_run_starts_the_real_world_and_the_quick_start_works_as_written() -> None:
    # short: ipc socket paths are bounded
    clone = Path(tempfile.gettempdir(), f"fmgw-clone-{os.urandom(3).hex()}")
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    (clone / ".venv").symlink_to(Path(sys.prefix))
    # the venv counts as set up (it is this test run's own): older than its stamp
    os.utime(clone / "pyproject.toml", (0, 0))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_", "SUPERVISOR_", "PYTEST_", "MAKE", "MFLAGS"))
        and k != "VIRTUAL_ENV"
    }  # as a developer's shell has it (the world's ports away from the test workers' blocks)
    # another port than a developer's own `make run` on this machine
    env["GATEWAY_API_BIND"] = f"127.0.0.1:{free_port()}"

    def make(target: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["make", target],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            preexec_fn=lambda: os.umask(0o002),  # a loose umask: the world's files stay private
        )

    def gateway_cli(*args: str) -> dict:
        out = subprocess.run(
            [str(BIN / "gateway-cli"), *args], cwd=clone, env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, (args, out.stderr)
        return json.loads(out.stdout)

    try:
        first = make("run")
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        assert "the local world is running" in first.stdout
        assert "admin password:" in first.stdout and "/ui/" in first.stdout
        # every file of the world (the peers' data, logs, sockets, the gateway's databases,
        # the user wallets, world.json with the admin password) 0600, every folder 0700
        devnet = clone / ".devnet"
        assert loose_entries(devnet, scripts=devnet / "bin") == []
        world = json.loads((devnet / "world.json").read_text())
        assert [f["name"] for f in world["federations"]] == ["alpha", "beta"]
        assert all(f["invite_code"].startswith("fed1") for f in world["federations"])
        assert world["gateway"]["api_url"].endswith(env["GATEWAY_API_BIND"])
        # only the gateway may call the Lightning extension: a stranger gets nothing from it
        run_dir = devnet / "run"
        rpc = xmlrpc.client.ServerProxy(
            "http://127.0.0.1",
            transport=SupervisorTransport(None, None, f"unix://{run_dir}/supervisor.sock"),
        )
        ext_pid = int(rpc.supervisor.getProcessInfo(PROGRAM_LNRPC)["pid"])
        assert_strangers_get_nothing(ext_pid, run_dir)
        # the gateway's supervisord runs the gateway's programs alone
        assert all(p["name"].startswith(PROGRAM_PREFIX) for p in rpc.supervisor.getAllProcessInfo())

        # the README's quick start, as written, in one shell
        steps = quick_start((clone / "README.md").read_text())
        script = "".join(f"echo '@@step {i}'\n{cmd}\n" for i, (cmd, _) in enumerate(steps))
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        outputs = re.split(r"^@@step \d+\n", done.stdout, flags=re.M)[1:]
        assert len(outputs) == len(steps), done.stdout[-3000:]
        for (cmd, expected), out in zip(steps, outputs, strict=True):
            if expected is not None:
                assert _matches(expected, out), f"{cmd!r} printed {out!r}, the README {expected!r}"
        # gateway-cli takes a federation by name, id or unique id prefix; else one line, exit 2
        alpha_id = world["federations"][0]["federation_id"]
        by_id = gateway_cli("balance", "--federation-id", alpha_id)
        assert gateway_cli("balance", "--federation", alpha_id[:6]) == by_id
        assert gateway_cli("balance", "--federation", "alpha") == by_id
        for unknown in ("gamma", ""):
            out = subprocess.run(
                [str(BIN / "gateway-cli"), "balance", "--federation", unknown],
                cwd=clone,
                env=env,
                capture_output=True,
                text=True,
            )
            assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
            assert "unknown_federation" in out.stderr
        summary = gateway_cli("payment-summary")["directions"]
        assert summary["incoming"]["settled"] >= 1 and summary["outgoing"]["settled"] >= 1

        again = make("run")
        assert again.returncode == 0 and "already running" in again.stdout, again.stderr
        status = make("status")
        for program in ("gateway-api", "gateway-router", "world-bitcoind", "world-alpha-g0"):
            assert program in status.stdout
        assert status.stdout.count("RUNNING") == 11  # 3 + 2 actors; bitcoind, 2 guardians, 3 lnd
        assert (
            loose_entries(devnet, scripts=devnet / "bin") == []
        )  # after the clients' payments too

        # stop, then run again: the same world comes back (make stop waits until it is down)
        user = [str(devnet / "bin" / "user"), "info"]
        # the change of the quick start's last spend in the wallet first
        subprocess.check_output([str(devnet / "bin" / "user"), "dev", "wait-complete"], env=env)
        balance = json.loads(subprocess.check_output(user, env=env))["total_amount_msat"]
        gateway_total = gateway_cli("balances")["total_msat"]
        stopped_once = make("stop")
        assert stopped_once.returncode == 0 and "stopped" in stopped_once.stdout
        assert not _alive(str(clone))
        status = make("status")
        assert status.returncode == 0 and "not running" in status.stdout
        again = make("run")
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
        assert json.loads(subprocess.check_output(user, env=env))["total_amount_msat"] == balance
        assert gateway_cli("balances")["total_msat"] == gateway_total
        assert [f["name"] for f in gateway_cli("info")["federations"]] == ["alpha", "beta"]
    finally:
        stopped = make("stop")
        deadline = time.monotonic() + 60
        while _alive(str(clone)) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = _alive(str(clone))
        shutil.rmtree(clone, ignore_errors=True)
    assert stopped.returncode == 0, stopped.stderr
    assert not left, left  # make stop stopped every process of the world
