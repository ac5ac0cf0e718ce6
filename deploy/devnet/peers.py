"""The local world's peers: one regtest bitcoind, fedimintd federations (`alpha`, and `beta` for
swaps) of 1 or 4 guardians each, and lnd nodes alice, gateway and bob on that bitcoind, run by a
supervisord of their own (programs `world-…`; the gateway's supervisord runs the gateway alone).

The plan (ports, passwords, the number of guardians, the module set) is chosen at the first
`make run` and kept in `<world>/plan.json`: later runs start the same world from its folders.
`Peers` renders the world's supervisord config from it and gives the harness's handles on each
peer (peers.harness: `Bitcoind`, `Guardian`, `Lnd`), their processes being supervisord's programs.
"""

from __future__ import annotations

import json
import secrets
import shlex
from dataclasses import dataclass
from pathlib import Path

from gwcore.files import write_private
from peers.cache import fedimint_bin, lnd_bin
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import (
    DEFAULT_MODULES,
    V1_MODULES,
    Guardian,
    guardian,
    guardian_ports,
)
from peers.harness.lnd import NODE_ARGS, Lnd
from peers.harness.procs import free_ports

from .supervisor import Program, Supervisor

FEDERATIONS = ("alpha", "beta")
MODULE_SETS = {"v2": DEFAULT_MODULES, "v1": V1_MODULES}
PROGRAM_PREFIX = "world-"  # the world's programs (never the gateway's "gateway-…")

_PROGRAM = """
[program:{name}]
command={command}
environment={environment}
priority={priority}
autostart=true
autorestart=true
startsecs=1
startretries=20
stopwaitsecs=30
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile={log}
stdout_logfile_maxbytes=10MB
stdout_logfile_backups=1
"""

_HEAD = """; The local world's peers (written by `make run` from plan.json; not the gateway's)
[supervisord]
logfile={dir}/supervisord.log
pidfile={dir}/supervisord.pid
childlogdir={dir}/logs
identifier=fmgw-world
umask=077

[unix_http_server]
file={dir}/supervisor.sock
chmod=0700

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
"""


@dataclass
class Plan:
    """What the world is made of; chosen once, then read back."""

    guardians: int
    modules: str
    bitcoind: dict  # {"ports": {rpc, p2p, zmq_block, zmq_tx}, "password"}
    federations: dict[str, list[dict]]  # name -> [{"ports": {p2p, api, ui, metrics}, "password"}]
    lnd: dict[str, list[int]]  # node -> [rpc port, p2p port]

    @classmethod
    def new(cls, guardians: int, modules: str) -> Plan:
        return cls(
            guardians=guardians,
            modules=modules,
            bitcoind={"ports": Bitcoind.new_ports(), "password": secrets.token_hex(16)},
            federations={
                name: [
                    {
                        "ports": guardian_ports(),
                        "password": secrets.token_hex(12),
                    }
                    for _ in range(guardians)
                ]
                for name in FEDERATIONS
            },
            lnd={name: free_ports(2) for name in NODE_ARGS},
        )

    @classmethod
    def load_or_new(cls, path: Path, guardians: int, modules: str) -> Plan:
        if not path.is_file():
            plan = cls.new(guardians, modules)
            write_private(path, json.dumps(plan.__dict__, indent=2))
            return plan
        plan = cls(**json.loads(path.read_text()))
        if (plan.guardians, plan.modules) != (guardians, modules):
            raise SystemExit(
                f"make run: the world in {path.parent.parent} has {plan.guardians} guardian(s) and "
                f"the {plan.modules} modules; for {guardians} and {modules}: "
                f"`make stop && rm -rf {path.parent.parent}` first"
            )
        return plan


class Peers:
    """The world's peers under their supervisord, in `folder` (<devnet>/world)."""

    def __init__(self, folder: Path, plan: Plan, env: dict[str, str]) -> None:
        self.folder, self.plan = folder, plan
        self.supervisor = Supervisor(folder / "supervisord.conf", folder, env)
        b = plan.bitcoind
        self.bitcoind = Bitcoind(
            self._program("world-bitcoind"),
            b["ports"]["rpc"],
            "fmgw",
            b["password"],
            [b["ports"]["zmq_block"], b["ports"]["zmq_tx"]],
        )
        self.guardians: dict[str, list[Guardian]] = {}
        for fed, members in plan.federations.items():
            self.guardians[fed] = []
            for i, m in enumerate(members):
                g = guardian(
                    folder / "federations" / fed, i, self.bitcoind, m["ports"], m["password"]
                )
                g.proc = self._program(f"world-{fed}-g{i}")
                self.guardians[fed].append(g)
        self.lnd: dict[str, Lnd] = {}
        for name, ports in plan.lnd.items():
            node_dir = folder / "lnd" / name
            node = Lnd(
                name,
                node_dir,
                Lnd.args_for(node_dir, self.bitcoind, name, ports, NODE_ARGS[name]),
                *ports,
            )
            node.proc = self._program(f"world-lnd-{name}")
            self.lnd[name] = node

    def _program(self, name: str) -> Program:
        return Program(self.supervisor, name, self.folder / "logs" / f"{name}.log")

    def config(self) -> str:
        """The world's supervisord config: bitcoind first, then the guardians and lnd nodes
        (which wait for it by restarting)."""
        programs = [
            self._section(
                "world-bitcoind",
                Bitcoind.argv(
                    self.folder / "bitcoind",
                    self.plan.bitcoind["ports"],
                    self.bitcoind.user,
                    self.bitcoind.password,
                ),
                {},
                10,
            )
        ]
        for fed, members in self.guardians.items():
            for g in members:
                env = {k: v for k, v in g.env.items() if k.startswith("FM_") or k == "RUST_LOG"}
                programs.append(
                    self._section(
                        f"world-{fed}-g{g.peer_id}", [str(fedimint_bin("fedimintd"))], env, 20
                    )
                )
        for name, node in self.lnd.items():
            programs.append(
                self._section(f"world-lnd-{name}", [str(lnd_bin("lnd")), *node.args], {}, 30)
            )
        return _HEAD.format(dir=self.folder) + "".join(programs)

    def _section(self, name: str, argv: list[str], env: dict[str, str], priority: int) -> str:
        def esc(text: str) -> str:  # supervisord expands %(…)s in values
            return text.replace("%", "%%")

        environment = ",".join(f'{k}="{esc(v)}"' for k, v in env.items()) or 'WORLD="1"'
        return _PROGRAM.format(
            name=name,
            command=esc(shlex.join(argv)),
            environment=environment,
            priority=priority,
            log=self.folder / "logs" / f"{name}.log",
        )

    def start(self) -> bool:
        """Write the config and start the world's supervisord unless it runs (True: started)."""
        for d in ("logs", "bitcoind", "lnd", "federations"):
            (self.folder / d).mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(self.supervisor.conf, self.config())
        return self.supervisor.start()
