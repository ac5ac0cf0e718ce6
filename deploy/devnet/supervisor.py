"""A supervisord of the local world, driven over its unix socket: the gateway's (the repo's
supervisord.conf) and the world's peers' (a config of its own, deploy/devnet/peers.py) are two.

`Supervisor(conf, run_dir, env)` starts it daemonized if it is not running, stops it and waits
until every program has exited, lists its programs; `Program` is one of its programs as the
peers' harness waits on a process (peers.harness.procs.Process): alive while supervisord keeps
it running or restarting, reported with the end of its log.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

from supervisor.xmlrpc import SupervisorTransport

from peers.harness.procs import Process
from services.router.supervisor import stop_and_wait

# states in which supervisord runs the program or will again by itself
_ALIVE = {"RUNNING", "STARTING", "BACKOFF"}


class Supervisor:
    """One supervisord: `conf` its config, `run_dir` the folder of its socket and pid file."""

    def __init__(self, conf: Path, run_dir: Path, env: dict[str, str]) -> None:
        self.conf, self.run_dir, self.env = conf, run_dir, env
        self.sock = run_dir / "supervisor.sock"

    @property
    def rpc(self) -> xmlrpc.client.ServerProxy:
        return xmlrpc.client.ServerProxy(
            "http://127.0.0.1", transport=SupervisorTransport(None, None, f"unix://{self.sock}")
        )

    def running(self) -> bool:
        try:
            return self.rpc.supervisor.getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Fault):
            return False

    def pid(self) -> int | None:
        """supervisord's pid, from its pid file, if that process is a supervisord."""
        try:
            pid = int((self.run_dir / "supervisord.pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        # a stale pid file after an unclean exit may name another process by now: not ours
        return pid if b"supervisord" in cmdline else None

    def start(self, log: Path | None = None) -> bool:
        """Start it unless it runs; True if it was started now. Daemonized; with `log`, in a
        session of its own with its programs' output (stdout in its config) appended there."""
        if self.running():
            return False
        wait_gone(self.pid())  # one still shutting down: let it finish first
        supervisord = str(Path(sys.executable).parent / "supervisord")
        if log is None:
            subprocess.run([supervisord, "-c", str(self.conf)], env=self.env, check=True)
        else:
            with log.open("ab") as out:
                subprocess.Popen(
                    [supervisord, "-n", "-c", str(self.conf)],
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        deadline = time.monotonic() + 30
        while not self.running():
            if time.monotonic() > deadline:
                raise SystemExit(f"supervisord ({self.conf}) did not start: see {self.run_dir}")
            time.sleep(0.2)
        return True

    def stop(self) -> bool:
        """Stop every program and supervisord; True if it was running."""
        pid = self.pid()
        was = self.running()
        if was:
            self.rpc.supervisor.shutdown()
        wait_gone(pid)
        return was

    def processes(self) -> list[dict]:
        return list(self.rpc.supervisor.getAllProcessInfo())


def wait_gone(pid: int | None, timeout_s: float = 120) -> None:
    """Until process `pid` has exited (supervisord stops every program first)."""
    deadline = time.monotonic() + timeout_s
    while pid is not None and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.2)
    if pid is not None:
        raise SystemExit(f"supervisord (pid {pid}) is still running after {timeout_s:.0f} s")


class Program(Process):
    """A program of a world's supervisord, as the harness waits on a peer's process."""

    def __init__(self, supervisor: Supervisor, name: str, log: Path) -> None:
        self.supervisor, self.name, self.log = supervisor, name, log

    def _info(self) -> dict:
        try:
            return dict(self.supervisor.rpc.supervisor.getProcessInfo(self.name))
        except (OSError, xmlrpc.client.Fault):
            return {"statename": "ABSENT", "description": "supervisord does not answer"}

    def alive(self) -> bool:
        return self._info()["statename"] in _ALIVE

    def exit_text(self) -> str:
        info = self._info()
        return f"{info['statename']}: {info.get('description', '')}"

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            stop_and_wait(self.supervisor.rpc, self.name, timeout)

    def kill(self) -> None:
        if self.alive():
            self.supervisor.rpc.supervisor.signalProcess(self.name, "KILL")
