"""docs/operating.md's steps that need no Lightning node: the TLS folder for a Core Lightning
plugin on another host (`extension-certs`, and `--check` takes a TCP address only with it), the
`install` step (a package in a virtualenv of its own), and the systemd unit as written.
(Kept apart from test_operating_guide.py, whose tests share the session's lnd nodes on one
worker: these run on any.)"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import bcrypt
import pytest

from tests.guide_steps import GUIDE, guide_steps

from .guide_world import REPO, Guide


def test_the_guides_extension_certs_and_a_tcp_extension(tmp_path: Path) -> None:
    """Core Lightning on another host: the guide's `extension-certs` step makes the TLS folder
    (files 0600, never overwritten); `--check` refuses the plugin's TCP address without it,
    takes it with it."""
    tls = tmp_path / "extension-tls"
    guide = Guide(
        {
            **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
            "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}",
            "EXTENSION_TLS_DIR": str(tls),
        }
    )
    guide.run("extension-certs")
    files = {"ca.crt", "extension.crt", "extension.key", "gateway.crt", "gateway.key"}
    assert {p.name for p in tls.iterdir()} == files
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in tls.iterdir())
    with pytest.raises(AssertionError, match="already has"):
        guide.run("extension-certs")
    base = Path(tempfile.gettempdir(), f"fmgw-opc-{os.urandom(3).hex()}")
    lines = [
        f"GATEWAY_DATA_DIR={base / 'data'}",
        f"GATEWAY_RUN_DIR={base / 'run'}",
        "GATEWAY_ROUTER_PUBLIC_API_URL=https://gateway.example.com",
        f"GATEWAY_API_PASSWORD_HASH={bcrypt.hashpw(b'x', bcrypt.gensalt(4)).decode()}",
        "GATEWAY_RUN_EXTENSION=false",
        "GATEWAY_LNRPC_LISTEN=lightning.example.com:8177",
    ]
    env_file = tmp_path / "gateway.env"
    try:
        env_file.write_text("\n".join(lines) + "\n")
        with pytest.raises(AssertionError, match="needs mutual TLS"):
            guide.run("check", ENV_FILE=str(env_file))
        env_file.write_text("\n".join([*lines, f"GATEWAY_LNRPC_TLS_DIR={tls}"]) + "\n")
        assert "supervisord -n -c" in guide.run("check", ENV_FILE=str(env_file))
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)


def test_the_guides_install(tmp_path: Path) -> None:
    """The guide's `install` step: the gateway as a package (not editable) in a virtualenv of
    its own, without dev tools, linked as <prefix>/venv; never over an existing one. Its
    launcher runs from any folder (`python -P`: not from a checkout) on its own files."""
    prefix = tmp_path / "opt"
    guide = Guide({**os.environ, "PREFIX": str(prefix)})
    venv = Path(guide.run("install", timeout=600).strip().splitlines()[-1])
    assert venv.parent == prefix and venv.name.startswith("venv-")
    assert (prefix / "venv").resolve() == venv
    site = venv / "lib" / "python3.11" / "site-packages"
    assert not (site / "pytest").exists() and not (site / "ruff").exists()
    assert not list(site.glob("__editable__*"))
    (direct,) = site.glob("fmgw-*.dist-info/direct_url.json")
    assert "editable" not in direct.read_text()
    for script in ("gateway-cli", "gateway-router", "gateway-actor", "supervisord"):
        assert (venv / "bin" / script).exists(), script
    env_file = tmp_path / "gateway.env"
    base = Path(tempfile.gettempdir(), f"fmgw-opi-{os.urandom(3).hex()}")
    env_file.write_text(
        f"GATEWAY_DATA_DIR={base / 'data'}\nGATEWAY_RUN_DIR={base / 'run'}\n"
        "GATEWAY_ROUTER_PUBLIC_API_URL=https://gateway.example.com\n"
        f"GATEWAY_API_PASSWORD_HASH={bcrypt.hashpw(b'x', bcrypt.gensalt(4)).decode()}\n"
        "GATEWAY_RUN_EXTENSION=false\n"
    )
    launcher = [str(prefix / "venv" / "bin" / "python"), "-P", "-m", "deploy.gateway", "--env-file"]
    try:
        checked = subprocess.run(
            [*launcher, str(env_file), "--check"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",
            env={k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
        )
        assert checked.returncode == 0, checked.stderr
        supervisord, _, _, conf = checked.stdout.split()
        assert supervisord == str(venv / "bin" / "supervisord")  # the link resolved
        assert conf == str(site / "deploy" / "gateway.conf")
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)
    with pytest.raises(AssertionError, match="exists"):
        guide.run("install", timeout=600)


def test_the_guides_systemd_unit_runs_the_guides_gateway(tmp_path: Path) -> None:
    """The unit as written: its folders are the environment file's (made by systemd for the
    gateway's user), its ExecStart is the guide's `run` step with the file's path, it stops the
    way the gateway expects (SIGTERM to supervisord, in time for every program's own stop);
    `systemd-analyze verify` takes it (its paths pointed at this checkout)."""
    text = GUIDE.read_text()
    unit = re.search(r"/etc/systemd/system/fmgw\.service`.*?```ini\n(.*?)\n```", text, re.S)
    assert unit, "the guide's systemd unit"
    ini = configparser.ConfigParser(strict=False, interpolation=None)
    ini.optionxform = str  # type: ignore[assignment,method-assign]
    ini.read_string(unit[1])
    service = ini["Service"]
    env = dict(line.split("=", 1) for line in guide_steps()["env-file"].splitlines())
    assert env["GATEWAY_DATA_DIR"] == f"/var/lib/{service['StateDirectory']}"
    assert env["GATEWAY_RUN_DIR"] == f"/run/{service['RuntimeDirectory']}"
    assert service["StateDirectoryMode"] == service["RuntimeDirectoryMode"] == "0700"
    python, *args = shlex.split(service["ExecStart"])
    env_file = args[-1]
    run = shlex.split(guide_steps()["run"].replace('"$ENV_FILE"', env_file))
    assert python.endswith("/bin/python") and run == ["python", *args]
    assert (service["User"], service["KillMode"], service["Restart"]) == ("fmgw", "mixed", "always")
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(REPO / "deploy" / "gateway.conf")
    longest = max(int(conf[s].get("stopwaitsecs", "10")) for s in conf if s.startswith("program:"))
    assert int(service["TimeoutStopSec"]) >= longest + 30
    if shutil.which("systemd-analyze"):
        local = unit[1].replace(python, str(REPO / ".venv" / "bin" / "python"))
        local = local.replace(service["WorkingDirectory"] + "\n", f"{REPO}\n")
        (tmp_path / "fmgw.service").write_text(local)
        done = subprocess.run(
            ["systemd-analyze", "verify", str(tmp_path / "fmgw.service")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
