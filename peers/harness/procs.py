"""Processes of the real peers: started in their own session with a log file, reported with the
end of their log when they die, stopped (SIGTERM, then SIGKILL) with everything they started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class PeerFailed(RuntimeError):
    """A peer did not start or stopped answering; the message ends with its log."""


def free_ports(n: int) -> list[int]:
    """`n` distinct loopback ports free right now (held open together while chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


class Proc:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._out = open(log, "ab")  # noqa: SIM115 - open for the process's whole life
        self.popen = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def failed(self, what: str) -> PeerFailed:
        state = "running" if self.alive() else f"exited with {self.popen.returncode}"
        return PeerFailed(
            f"{self.name} ({state}): {what}; its log {self.log} ends:\n{self.log_tail()}"
        )

    def wait_for(self, check: Callable[[], T | None], timeout: float, what: str) -> T:
        """Poll `check` until it gives a value; fail with the log if the process dies or time
        runs out. Exceptions from `check` count as "not yet"."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = check()
            except Exception:
                value = None
            if value is not None and value is not False:
                return value
            if not self.alive():
                raise self.failed(f"died before {what}")
            if time.monotonic() > deadline:
                raise self.failed(f"no {what} within {timeout:.0f} s")
            time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
            except ProcessLookupError:
                pass
        self._out.close()

    def kill(self) -> None:
        """kill -9 (tests of guardians that vanish)."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)
