"""The tests' fedimint-cli wrapper (conftest.User) against a stand-in that panics as 0.13's
start-up race does (a panic message, then waiting forever): the panic ends the command at once;
a command that only waits or reads is run again, any other fails with the panic's message."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from . import conftest
from .conftest import User

FAKE = """#!/bin/sh
# panics (and hangs) the first time it runs in a data dir, answers the next time
marker="$2/panicked"
if [ ! -e "$marker" ]; then
  touch "$marker"
  echo "thread 'tokio-rt-worker' panicked at src/module/mod.rs:177:14:" >&2
  echo "client must be already set" >&2
  exec sleep 60
fi
echo '"Success"'
"""


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> User:
    fake = tmp_path / "fedimint-cli"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    monkeypatch.setattr(conftest, "fedimint_bin", lambda name: fake)
    (tmp_path / "data").mkdir()
    return User(tmp_path / "data")


@pytest.mark.timeout(30)
def test_a_waiting_command_that_panics_runs_again(user: User) -> None:
    started = time.monotonic()
    assert user("module", "walletv2", "await-receive", "0") == "Success"
    assert time.monotonic() - started < 10  # not the 60 s the panicked process would hang


@pytest.mark.timeout(30)
def test_any_other_command_that_panics_fails_with_its_message(user: User) -> None:
    with pytest.raises(AssertionError, match="client must be already set"):
        user("module", "mintv2", "send", "1000")
