"""The CLIs find `make run`'s world without flags, and flags still win."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gwcore.devworld import find_world, world_path

BIN = Path(sys.executable).parent


def _world(root: Path, api_url: str) -> dict:
    world = {
        "gateway": {"api_url": api_url, "password": "world-pw"},
        "federations": [
            {
                "name": "alpha",
                "federation_id": "aa",
                "invite_code": "x",
                "user_wallet": str(root / "ua"),
            },
            {
                "name": "beta",
                "federation_id": "bb",
                "invite_code": "y",
                "user_wallet": str(root / "ub"),
            },
        ],
        "regtest": {"data_dir": str(root / "regtest")},
    }
    (root / ".devnet").mkdir(parents=True)
    (root / ".devnet" / "world.json").write_text(json.dumps(world))
    return world


def test_found_from_below_or_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEWAY_DEVNET_DIR", raising=False)
    world = _world(tmp_path / "repo", "http://127.0.0.1:1")
    deep = tmp_path / "repo" / "a" / "b"
    deep.mkdir(parents=True)
    assert find_world(deep) == world
    assert find_world(tmp_path) is None
    monkeypatch.setenv("GATEWAY_DEVNET_DIR", str(tmp_path / "repo" / ".devnet"))
    assert world_path(tmp_path) == tmp_path / "repo" / ".devnet" / "world.json"
    monkeypatch.setenv("GATEWAY_DEVNET_DIR", str(tmp_path / "nowhere"))
    assert find_world(deep) is None  # the environment names the world: no guessing


def _cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "FED_CLI"))}
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **env},
        stdin=subprocess.DEVNULL,
    )


def test_the_clis_use_the_world_unless_told_otherwise(tmp_path: Path) -> None:
    _world(tmp_path, "http://127.0.0.1:9")  # nothing listens there: exit 3, with the world's URL
    r = _cli(tmp_path, "gateway-cli", "info")
    assert r.returncode == 3 and "127.0.0.1:9" in r.stderr
    other = _cli(tmp_path, "gateway-cli", "-a", "http://127.0.0.1:7", "info")
    assert other.returncode == 4 and "no_password" in other.stderr  # never the world's password
    r = _cli(tmp_path, "fed-cli", "--federation", "beta", "balance")
    assert r.returncode == 1 and str(tmp_path / "ub") in r.stderr
    assert _cli(tmp_path, "fed-cli", "--federation", "gamma", "balance").returncode == 2
    r = _cli(tmp_path, "fed-cli", "--wallet", str(tmp_path / "mine"), "balance")
    assert str(tmp_path / "mine") in r.stderr  # the flag wins


def test_a_planted_world_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_DEVNET_DIR", raising=False)
    _world(tmp_path, "http://127.0.0.1:1")
    assert find_world(tmp_path) is not None
    (tmp_path / ".devnet" / "world.json").chmod(0o666)  # anyone could have written it
    assert find_world(tmp_path) is None


def test_the_worlds_gateway_gets_the_worlds_password_only(tmp_path: Path) -> None:
    """The operator's real password (in the environment) never goes to a URL found in a world
    file: that URL gets the world's own password."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            body = b'{"error": "no", "code": "unauthorized"}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _world(tmp_path, f"http://127.0.0.1:{server.server_port}")
        r = _cli(tmp_path, "gateway-cli", "info", GATEWAY_RPCPASSWORD="the-real-one")
        assert r.returncode == 4 and seen == ["Bearer world-pw"]
    finally:
        server.shutdown()
