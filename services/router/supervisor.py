"""The router's hand on supervisord: one program per federation actor, added and removed at run
time without touching the others (a conf.d file per actor, written atomically, then
`reloadConfig` + `addProcessGroup` for that group alone; never a shared group or numprocs).

A conf.d file holds the federation's invite code: it is written 0600 and the actor runs with
umask 077 (gwcore.files).

Supervisor is reached over its unix socket (XML-RPC), found through SUPERVISOR_SERVER_URL as
supervisord sets it for its children. Calls block: use them through `asyncio.to_thread`.

No call waits inside supervisord: while an XML-RPC call waits (a stop until the program is
down, up to its stopwaitsecs), supervisord's loop polls it without pause and holds a core. A
stop is asked without waiting, and the program's state polled here (`stop_and_wait`).
"""

from __future__ import annotations

import time
import xmlrpc.client
from pathlib import Path

from supervisor.xmlrpc import SupervisorTransport

from gwcore.constants import PROGRAM_ACTOR_PREFIX, PROGRAM_PREFIX
from gwcore.files import write_private

PROGRAM_TEMPLATE = """; written by the gateway router: the actor of federation {federation_id}
[program:{program}]
command={command}
environment={environment}
umask=077
autostart=true
autorestart=true
startsecs=1
startretries=100
stopwaitsecs=30
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=/dev/stdout
stdout_logfile_maxbytes=0
"""


STOPPED = frozenset({"STOPPED", "EXITED", "FATAL", "ABSENT"})  # supervisord's states, and none


def stop_and_wait(rpc: xmlrpc.client.ServerProxy, program: str, timeout: float = 60.0) -> str:
    """Stop `program` (a process, or a group of one) and wait until it is down, polling its
    state every 0.1 s; its state at the end (ABSENT: supervisord does not know it). A program
    not running is left as it is."""
    try:
        rpc.supervisor.stopProcess(program, False)
    except xmlrpc.client.Fault as fault:
        if "BAD_NAME" in fault.faultString:
            return "ABSENT"
        if "NOT_RUNNING" not in fault.faultString:
            raise
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = str(rpc.supervisor.getProcessInfo(program)["statename"])
        except xmlrpc.client.Fault:
            return "ABSENT"
        if state in STOPPED or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


class SupervisorControl:
    def __init__(self, server_url: str, conf_dir: Path) -> None:
        self.server_url = server_url
        self.conf_dir = conf_dir

    @property
    def rpc(self) -> xmlrpc.client.ServerProxy:
        """A proxy of its own per use: calls come from several threads at once (a listing while
        a federation leaves), and one proxy's HTTP connection cannot carry two requests."""
        return xmlrpc.client.ServerProxy(
            "http://127.0.0.1", transport=SupervisorTransport(None, None, self.server_url)
        )

    def conf_path(self, program: str) -> Path:
        return self.conf_dir / f"{program}.conf"

    def write_program(
        self, program: str, federation_id: str, command: str, environment: dict[str, str]
    ) -> Path:
        bad = [k for k, v in environment.items() if '"' in v or "\n" in v]
        if bad:  # supervisord's environment= cannot carry them
            raise ValueError(f"environment values with quotes or newlines: {bad}")
        env = ",".join(f'{k}="{v.replace("%", "%%")}"' for k, v in sorted(environment.items()))
        text = PROGRAM_TEMPLATE.format(
            federation_id=federation_id, program=program, command=command, environment=env
        )
        return write_private(self.conf_path(program), text)  # it holds the invite code

    def add(self, program: str) -> None:
        """Load the program's conf.d file and start just that group (idempotent)."""
        self.rpc.supervisor.reloadConfig()
        try:
            self.rpc.supervisor.addProcessGroup(program)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_ADDED" not in fault.faultString:
                raise

    def state(self, program: str) -> str:
        try:
            return str(self.rpc.supervisor.getProcessInfo(program)["statename"])
        except xmlrpc.client.Fault:
            return "ABSENT"

    def programs(self) -> list[dict]:
        """Every program of the gateway supervisord runs (named `PROGRAM_PREFIX`…): name, state
        (RUNNING, BACKOFF, FATAL, ...), description. Programs beside them (a local world's) are
        not the gateway's and are left out."""
        return [
            {"name": p["name"], "state": p["statename"], "description": p["description"]}
            for p in self.rpc.supervisor.getAllProcessInfo()
            if p["name"].startswith(PROGRAM_PREFIX)
        ]

    def actor_programs(self) -> list[str]:
        """The actor programs supervisord runs or conf.d holds (by program name)."""
        running = {p["name"] for p in self.rpc.supervisor.getAllProcessInfo()}
        written = (
            {p.stem for p in self.conf_dir.glob("*.conf")} if self.conf_dir.is_dir() else set()
        )
        return sorted(p for p in running | written if p.startswith(PROGRAM_ACTOR_PREFIX))

    def remove(self, program: str) -> None:
        """Stop the program, remove its group and its conf.d file."""
        stop_and_wait(self.rpc, program)
        try:
            self.rpc.supervisor.removeProcessGroup(program)
        except xmlrpc.client.Fault as fault:
            if "BAD_NAME" not in fault.faultString:
                raise
        self.conf_path(program).unlink(missing_ok=True)
        self.rpc.supervisor.reloadConfig()
