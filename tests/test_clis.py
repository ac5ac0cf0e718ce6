"""Every command-line tool: `--help` of every command works with no world running, and a usage
error is one line on stderr with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from devworld.regtest.cli import cli as regtest_cli
from gwcore.constants import ENV_DEVNET_DIR
from services.buscli.__main__ import cli as gateway_bus
from services.cli.__main__ import cli as gateway_cli

BIN = Path(sys.executable).parent
TOOLS = {
    "gateway-cli": gateway_cli,
    "regtest-cli": regtest_cli,
    "gateway-bus": gateway_bus,
}


def _nowhere(tmp_path: Path) -> dict:
    """An environment with no `make run` world to be found."""
    return {"PATH": str(BIN), "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}


@pytest.mark.parametrize(
    ("tool", "command"),
    [(t, c) for t, group in TOOLS.items() for c in [None, *sorted(group.commands)]],
)
def test_help_of_every_command_works_without_a_world(
    tool: str, command: str | None, tmp_path: Path
) -> None:
    r = CliRunner().invoke(
        TOOLS[tool],
        [*([command] if command else []), "--help"],
        env={ENV_DEVNET_DIR: str(tmp_path)},  # a world directory with no world in it
        prog_name=tool,
    )
    assert r.exit_code == 0, r.output
    assert r.output.startswith("Usage:")


@pytest.mark.parametrize(
    "args",
    [
        ["gateway-cli", "set-fees", "--base-msat", "-1", "--ppm", "2"],
        ["gateway-cli", "nosuch"],
        ["regtest-cli", "mine", "0"],
        ["regtest-cli", "getblockcount"],  # no world: said in one line, not a traceback
        ["gateway-bus", "status", "--bogus"],
    ],
)
def test_a_usage_error_is_one_line(args: list[str], tmp_path: Path) -> None:
    r = subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=tmp_path,
        env=_nowhere(tmp_path),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: usage: ") and r.stderr.count("\n") == 1, r.stderr


def test_the_tools_are_click_groups() -> None:
    assert all(isinstance(g, click.Group) and g.commands for g in TOOLS.values())


def test_a_bug_is_one_line_with_its_own_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """What escapes a command is reported in one line (exit 70), the traceback on request."""
    from gwcore import cli as gcli

    @click.group()
    def tool() -> None:
        pass

    @tool.command()
    def boom() -> None:
        raise ValueError("amount out of\nrange")

    def ends(env: str | None) -> tuple[int, str]:
        monkeypatch.delenv(gcli.TRACEBACK_ENV, raising=False)
        if env:
            monkeypatch.setenv(gcli.TRACEBACK_ENV, env)
        runner = CliRunner()
        r = runner.invoke(click.Command("t", callback=lambda: gcli.run(tool, ["boom"])))
        return r.exit_code, r.stderr if hasattr(r, "stderr") else r.output

    code, err = ends(None)
    assert code == gcli.EXIT_INTERNAL
    assert (
        err
        == f"error: internal: ValueError: amount out of range (a bug; {gcli.TRACEBACK_ENV}=1 shows where)\n"
    )
    code, err = ends("1")
    assert code == gcli.EXIT_INTERNAL and "Traceback" in err


@pytest.mark.parametrize("given", ["argument", "pipe"])
def test_a_password_over_bcrypts_72_bytes_is_refused_in_one_line(
    given: str, tmp_path: Path
) -> None:
    """bcrypt reads 72 bytes of a password: create-password-hash refuses a longer one (counted
    in UTF-8 bytes, not characters) with one line and exit code 2, and makes no hash."""
    too_long = "é" * 37  # 37 characters, 74 bytes

    def create(password: str) -> subprocess.CompletedProcess[str]:
        args = [str(BIN / "gateway-cli"), "create-password-hash"]
        return subprocess.run(
            [*args, password] if given == "argument" else args,
            input=None if given == "argument" else password + "\n",
            env=_nowhere(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )

    refused = create(too_long)
    assert refused.returncode == 2 and refused.stdout == ""
    lines = [ln for ln in refused.stderr.splitlines() if not ln.startswith("warning:")]
    assert len(lines) == 1 and "74 bytes" in lines[0] and "72" in lines[0], refused.stderr
    made = create("é" * 36)  # 72 bytes: bcrypt's whole password
    assert made.returncode == 0 and json.loads(made.stdout)["password_hash"].startswith("$2")
