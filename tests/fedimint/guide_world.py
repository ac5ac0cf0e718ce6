"""The operator's deployment as docs/operating.md makes it, for the tests that follow the guide:
`Guide` runs its `<!-- guide-step -->` blocks with bash as written; `deployment()` deploys the
gateway of a release (this checkout, or an older one: an upgrade) beside the session's real lnd,
up to the `run` step, and stops it after."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import xmlrpc.client
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from supervisor.xmlrpc import SupervisorTransport

from peers.cache import fedimint_bin, lnd_bin
from peers.harness.lnd import LndWorld
from peers.harness.procs import free_ports
from tests.guide_steps import guide_steps

from .test_gateway_fedimint import _until

pytestmark = pytest.mark.timeout(900)
REPO = Path(__file__).resolve().parents[2]


class Guide:
    """Runs the guide's steps with bash, in an environment holding the test's values; those of
    the release in `src` (default: this checkout), run in it."""

    def __init__(self, env: dict[str, str], src: Path = REPO) -> None:
        self.steps, self.src = guide_steps(src), src
        # as an operator runs them: not inside the test command's make
        self.env = {k: v for k, v in env.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}

    def run(self, step: str, timeout: float = 120, stdin: str | None = None, **values: str) -> str:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", self.steps[step]],
            env={**self.env, **values},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.src,
        )
        assert done.returncode == 0, f"guide step {step}: {done.stdout} {done.stderr[-2000:]}"
        return done.stdout

    def start(self, step: str, log: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", f"exec {self.steps[step]}"],
            env=self.env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=self.src,
            start_new_session=True,
            preexec_fn=lambda: os.umask(0o002),  # a loose umask: the gateway's files stay private
        )


class FreshRpc:
    """supervisord's XML-RPC, a new connection per call (supervisord is restarted here)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        proxy = xmlrpc.client.ServerProxy(
            "http://127.0.0.1", transport=SupervisorTransport(None, None, self.url)
        )
        return getattr(proxy, name)


def _wrapper(folder: Path, name: str, argv: list[str], env: str = "") -> None:
    path = folder / name
    path.write_text(f'#!/bin/sh\n{env}exec {" ".join(argv)} "$@"\n')
    path.chmod(0o755)


@contextmanager
def deployment(lnd: LndWorld, tmp_path: Path, src: Path = REPO) -> Iterator[dict]:
    """The gateway of `src` (a release's source: its code and its guide) deployed by its
    guide's steps, up to `run`; `start(guide)` runs it again (another release's guide: an
    upgrade), `stop()` stops it (SIGTERM)."""
    gw_node = lnd.node("gateway")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    lncli = [str(lnd_bin("lncli")), f"--lnddir={gw_node.folder}", "--network=regtest"]
    _wrapper(bindir, "lncli", [*lncli, f"--rpcserver={gw_node.rpc_host}"])
    _wrapper(bindir, "fedimint-cli", [str(fedimint_bin("fedimint-cli"))], "FM_IN_DEVIMINT=1 ")
    (api_port,) = free_ports(1)
    base = Path(tempfile.gettempdir(), f"fmgw-op-{os.urandom(3).hex()}")  # ipc paths stay short
    password, metrics_token = os.urandom(12).hex(), "metrics-" + os.urandom(8).hex()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
        "PATH": f"{bindir}:{REPO / '.venv' / 'bin'}:{os.environ['PATH']}",
        "ENV_FILE": str(tmp_path / "gateway.env"),
        "MACAROON": str(tmp_path / "gateway.macaroon"),
        "ADMIN_PASSWORD": password,
        "GATEWAY_RPCPASSWORD": password,
        "GATEWAY": f"http://127.0.0.1:{api_port}",
    }
    if src != REPO:  # another release's code, on this checkout's virtualenv
        env["PYTHONPATH"] = f"{src}:{src / 'proto'}"
    guide = Guide(env, src)
    guide.run("macaroon")
    password_hash = json.loads(guide.run("password-hash"))["password_hash"]
    assert password_hash.startswith("$2")
    ours = {
        "GATEWAY_DATA_DIR": str(base / "data"),
        "GATEWAY_RUN_DIR": str(base / "run"),
        "GATEWAY_API_BIND": f"127.0.0.1:{api_port}",
        "GATEWAY_ROUTER_PUBLIC_API_URL": f"http://127.0.0.1:{api_port}",
        "GATEWAY_API_PASSWORD_HASH": password_hash,
        "GATEWAY_API_METRICS_TOKEN": metrics_token,
        "GATEWAY_LNRPC_LND_HOST": gw_node.rpc_host,
        "GATEWAY_LNRPC_LND_TLS_CERT": str(gw_node.tls_cert),
        "GATEWAY_LNRPC_LND_MACAROON": env["MACAROON"],
    }
    lines = []
    for line in guide.steps["env-file"].splitlines():  # the guide's file, our paths and secrets
        key, _, value = line.partition("=")
        lines.append(f"{key}={ours.pop(key, value)}")
    assert ours == {}, f"the guide's environment file lacks {sorted(ours)}"
    Path(env["ENV_FILE"]).write_text("\n".join(lines) + "\n")
    Path(env["ENV_FILE"]).chmod(0o600)
    assert "supervisord -n -c" in guide.run("check")
    log = tmp_path / "gateway.log"
    url = env["GATEWAY"]
    procs = []

    def start(by: Guide = guide) -> subprocess.Popen[bytes]:
        """The guide's `run` (`by`: another release's guide: an upgrade), as systemd's ExecStart;
        ready when /health says so."""
        proc = by.start("run", log)
        procs.append(proc)
        _until(
            "/health ready",
            90,
            lambda: health_ready(url) or (proc.poll() is not None and gateway_died(log)),
        )
        return proc

    try:
        start()
        yield {
            "start": start,
            "procs": procs,
            "guide": guide,
            "url": url,
            "password": password,
            "metrics_token": metrics_token,
            "rpc": FreshRpc(f"unix://{base / 'run'}/supervisor.sock"),
            "data_dir": base / "data",
            "run_dir": base / "run",
            "stop": lambda: stop_gateway(procs[-1]),
        }
    finally:
        try:
            for proc in procs:
                if proc.poll() is None:
                    stop_gateway(proc)
        finally:
            subprocess.run(["rm", "-rf", str(base)], check=False)


def stop_gateway(proc: subprocess.Popen[bytes]) -> None:
    """As systemd stops the unit: SIGTERM, and it must end within 90 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        raise AssertionError("the gateway did not stop within 90 s of SIGTERM") from None


def health_ready(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def gateway_died(log: Path) -> bool:
    raise AssertionError(f"the gateway exited: {log.read_text()[-3000:]}")
