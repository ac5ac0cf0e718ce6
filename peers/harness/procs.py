"""Processes of the real peers: started in their own session with a log file, reported with the
end of their log when they die, stopped (SIGTERM, then SIGKILL) with everything they started."""

from __future__ import annotations

import contextlib
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


# Ports are handed out below the kernel's ephemeral range (32768-60999 by default), where no
# outgoing connection takes one behind our back, in a block of its own per pytest-xdist worker, so
# that parallel workers never race for a port between choosing it and the peer binding it.
_PORT_BASE, _PORT_TOP, _PORT_BLOCKS = 10_000, 32_000, 16
_next_port: list[int] = []


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw3" in a worker, unset otherwise
    return int(worker[2:]) % _PORT_BLOCKS if worker[2:].isdigit() else _PORT_BLOCKS - 1


def free_ports(n: int) -> list[int]:
    """`n` distinct loopback ports free right now (held open together while chosen), from this
    process's block: each is handed out once per process, so two peers of one test run never get
    the same port even when the first has not bound it yet."""
    size = (_PORT_TOP - _PORT_BASE) // _PORT_BLOCKS
    low = _PORT_BASE + _worker_index() * size
    if not _next_port:  # a random start: two test runs on one machine rarely meet
        _next_port.append(low + int.from_bytes(os.urandom(2), "big") % size)
    socks: list[socket.socket] = []
    try:
        for _ in range(size):
            if len(socks) == n:
                return [int(s.getsockname()[1]) for s in socks]
            port = _next_port[0]
            _next_port[0] = low + (port + 1 - low) % size
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
        raise RuntimeError(f"no {n} free loopback ports in {low}..{low + size - 1}")
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    """One port of `free_ports`."""
    return free_ports(1)[0]


def pid_alive(pid: int) -> bool:
    """The process runs (it exists and is not a zombie waiting for its parent)."""
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def stop_group(popen: subprocess.Popen, timeout: float = 60) -> None:
    """Stop a process started in its own session (supervisord, gunicorn): SIGTERM and wait up to
    `timeout` s for it to stop its children itself; then SIGKILL its whole process group."""
    if popen.poll() is not None:
        return
    popen.send_signal(signal.SIGTERM)
    try:
        popen.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(5)


class Process:
    """What waits on a peer's process, whoever runs it: a `Proc` started here, or a program of
    the local world's supervisord (deploy/devnet). Subclasses say whether it runs and how it
    ended; `wait_for` and `failed` report its log's end."""

    name: str
    log: Path

    def alive(self) -> bool:
        raise NotImplementedError

    def exit_text(self) -> str:
        """How it ended ("exited with 1"), for reports."""
        return "stopped"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def failed(self, what: str) -> PeerFailed:
        state = "running" if self.alive() else self.exit_text()
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
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError


class Proc(Process):
    """A peer's process started here, in its own session, its output appended to `log`."""

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

    def exit_text(self) -> str:
        return f"exited with {self.popen.returncode}"

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
