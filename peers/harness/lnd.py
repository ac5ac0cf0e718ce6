"""Real lnd nodes on a real regtest chain (btcd, or a bitcoind with ZMQ), on loopback ports of
their own.

    world = LndWorld.start(folder)       # btcd, and the nodes `gateway`, `alice`, `bob`
    LndWorld.start(folder, chain=node)   # the same on a running bitcoind (or btcd) of the caller
    world.node("alice").cli("getinfo")   # lncli, JSON out
    world.stop()

Each node runs with `--noseedbackup` (a wallet without a seed ceremony) and waits until lnd says
it is synced to the chain. `LndWorld.start` funds the payer and the gateway, opens
alice -> gateway -> bob (public, confirmed, announced: alice can route to bob through the gateway)
and waits until every node sees both channels in its graph. The gateway's node runs with
`--requireinterceptor` (an operator serving LNv1 would choose it, docs/operating.md);
`Lnd.reconfigure` restarts a node without it (or with other flags).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Protocol

from ..cache import lnd_bin
from .btcd import Btcd
from .procs import PeerFailed, Proc, Process, free_ports


class Chain(Protocol):
    """A regtest chain lnd runs on: `Btcd` or `Bitcoind`."""

    def lnd_args(self) -> list[str]: ...
    def height(self) -> int: ...
    def mine(self, blocks: int) -> list[str]: ...
    def fund(self, outputs: dict[str, int] | list[tuple[str, int]]) -> str: ...
    def stop(self) -> None: ...


CHANNEL_SAT = 2_000_000
# alice's policy on her channel to the gateway (what a route hint through her must carry)
ALICE_POLICY = {"base_msat": 500, "ppm": 100, "cltv_delta": 34}


class Lnd:
    """One lnd node: `cli(...)` runs lncli against it; `rpc_host`, `tls_cert`, `macaroon` are
    what the gateway's extension needs."""

    proc: Process

    def __init__(
        self, name: str, folder: Path, args: list[str], rpc_port: int, p2p_port: int
    ) -> None:
        self.name, self.folder, self.args = name, folder, args
        self.rpc_host = f"127.0.0.1:{rpc_port}"
        self.p2p_host = f"127.0.0.1:{p2p_port}"
        self.tls_cert = folder / "tls.cert"
        self.macaroon = folder / "data" / "chain" / "bitcoin" / "regtest" / "admin.macaroon"
        self.pubkey = ""

    @staticmethod
    def args_for(
        folder: Path, chain: Chain, name: str, ports: list[int], extra: list[str] | None = None
    ) -> list[str]:
        """The command line of node `name` in `folder` on `chain`, ports [rpc, p2p]."""
        rpc_port, p2p_port = ports
        return [
            f"--lnddir={folder}",
            "--noseedbackup",
            "--bitcoin.regtest",
            *chain.lnd_args(),
            f"--rpclisten=127.0.0.1:{rpc_port}",
            f"--listen=127.0.0.1:{p2p_port}",
            "--norest",
            "--nobootstrap",
            f"--alias={name}",
            "--debuglevel=info",
            "--trickledelay=50",
            "--bitcoin.defaultchanconfs=1",
            "--maxlogfiles=1",
            *(extra or []),
        ]

    @classmethod
    def start(cls, folder: Path, chain: Chain, name: str, extra: list[str] | None = None) -> Lnd:
        folder.mkdir(parents=True, exist_ok=True)
        ports = free_ports(2)
        node = cls(name, folder, cls.args_for(folder, chain, name, ports, extra), *ports)
        node.restart()
        return node

    def _spawn(self) -> Proc:
        return Proc(
            f"lnd-{self.name}",
            [str(lnd_bin("lnd")), *self.args],
            dict(os.environ),
            self.folder / "stdout.log",
        )

    def wait_ready(self, timeout: float = 90.0) -> None:
        info = self.proc.wait_for(
            lambda: (i := self.cli("getinfo")) and i["synced_to_chain"] and i, timeout, "sync"
        )
        self.pubkey = info["identity_pubkey"]

    def restart(self) -> None:
        """Start it (again, after `stop` or `kill`: same folder, ports and flags)."""
        self.proc = self._spawn()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def reconfigure(self, *, drop: tuple[str, ...] = (), add: tuple[str, ...] = ()) -> None:
        """Stop it and start it again without the flags `drop` and with `add` (same folder and
        ports): e.g. without `--requireinterceptor`. Its channels come back once its peers
        reconnect (`LndWorld.wait_graph`)."""
        self.stop()
        self.args = [a for a in self.args if a not in drop] + [a for a in add if a not in self.args]
        self.restart()

    def lncli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """lncli against this node, whatever its exit code."""
        argv = [
            str(lnd_bin("lncli")),
            f"--lnddir={self.folder}",
            "--network=regtest",
            f"--rpcserver={self.rpc_host}",
            *args,
        ]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    def cli(self, *args: str, timeout: float = 60.0) -> Any:
        """lncli's JSON answer; PeerFailed if it fails."""
        done = self.lncli(*args, timeout=timeout)
        if done.returncode != 0:
            raise PeerFailed(
                f"lncli {args[0]} on {self.name}: {done.stderr.strip() or done.stdout}"
            )
        out = done.stdout.strip()
        return json.loads(out) if out.startswith(("{", "[")) else out

    def height(self) -> int:
        return int(self.cli("getinfo")["block_height"])

    def new_address(self) -> str:
        return str(self.cli("newaddress", "p2wkh")["address"])

    def stop(self) -> None:
        self.proc.stop(timeout=30)

    def kill(self) -> None:
        self.proc.kill()


# each node's flags besides the chain's and its ports: the gateway's node holds HTLCs for its
# interceptor; alice's policy is the one route hints through her must carry
NODE_ARGS = {
    "gateway": ["--requireinterceptor"],
    "alice": [
        f"--bitcoin.basefee={ALICE_POLICY['base_msat']}",
        f"--bitcoin.feerate={ALICE_POLICY['ppm']}",
        f"--bitcoin.timelockdelta={ALICE_POLICY['cltv_delta']}",
    ],
    "bob": [],
}


class LndWorld:
    """A chain and lnd nodes: alice -> gateway -> bob, and alice -> G -> bob for each further
    gateway node G of `gateways` (the side-by-side benchmark: one node per gateway, since lnd
    serves one HTLC interceptor per node). `own_chain`: the world started the chain (btcd) and
    stops it with its nodes."""

    def __init__(
        self,
        folder: Path,
        chain: Chain,
        nodes: dict[str, Lnd],
        own_chain: bool = True,
        gateways: tuple[str, ...] = ("gateway",),
    ) -> None:
        self.folder, self.chain, self.nodes, self.own_chain = folder, chain, nodes, own_chain
        self.gateways = gateways

    def node(self, name: str) -> Lnd:
        return self.nodes[name]

    @classmethod
    def start(
        cls,
        folder: Path,
        *,
        gateway_args: list[str] | None = None,
        chain: Chain | None = None,
        more_gateways: dict[str, list[str]] | None = None,
    ) -> LndWorld:
        """`more_gateways`: further gateway nodes by name, with their flags besides the
        chain's (none of NODE_ARGS["gateway"]: e.g. no `--requireinterceptor`)."""
        more = more_gateways or {}
        world = cls(
            folder,
            chain or Btcd.start(folder / "btcd"),
            {},
            own_chain=chain is None,
            gateways=("gateway", *more),
        )
        try:
            for name, args in {**NODE_ARGS, **more}.items():
                extra = [*args, *(gateway_args or [])] if name == "gateway" else args
                world.nodes[name] = Lnd.start(folder / name, world.chain, name, extra)
            world.connect()
        except BaseException:
            world.stop()
            raise
        return world

    def connect(self) -> bool:
        """Fund the payer and the gateways and open alice -> G -> bob for every gateway node G
        (public, confirmed, announced) unless they are open (channels opened but not confirmed
        yet, after an interrupted run, are confirmed, not opened again); wait until every node
        sees them all in its graph. True if it opened them now."""
        alice, bob = self.nodes["alice"], self.nodes["bob"]
        gateways = [self.nodes[n] for n in self.gateways]
        opened = False
        if all(g.cli("listchannels")["channels"] for g in gateways):
            pass
        elif any(g.cli("pendingchannels")["pending_open_channels"] for g in gateways):
            self.mine(6)
        else:
            opened = True
            # an address of alice's per channel she opens: one open's change is not spendable
            # until it confirms
            self.chain.fund(
                [pay for n in (alice, *gateways) for pay in [(n.new_address(), 5_000_000)] * 2]
                + [pay for _ in gateways[1:] for pay in [(alice.new_address(), 5_000_000)] * 2]
            )
            self.mine(1)
            self.wait(
                lambda: all(
                    int(n.cli("walletbalance")["confirmed_balance"]) > 0 for n in (alice, *gateways)
                ),
                "funds",
            )
            for g in gateways:
                self.open_channel(alice, g, CHANNEL_SAT)
                self.open_channel(g, bob, CHANNEL_SAT)
            self.mine(6)  # announced at 6 confirmations
        self.wait_graph(2 * len(gateways))
        return opened

    def open_channel(self, a: Lnd, b: Lnd, sat: int, push_sat: int = 0) -> str:
        peers = {p["pub_key"] for p in a.cli("listpeers")["peers"]}
        if b.pubkey not in peers:
            a.cli("connect", f"{b.pubkey}@{b.p2p_host}")
        out = a.cli(
            "openchannel", f"--node_key={b.pubkey}", f"--local_amt={sat}", f"--push_amt={push_sat}"
        )
        return str(out["funding_txid"])

    def mine(self, blocks: int) -> None:
        self.chain.mine(blocks)
        tip = self.chain.height()
        self.wait(lambda: all(n.height() >= tip for n in self.nodes.values()), f"height {tip}")

    def wait_graph(self, channels: int, timeout: float = 120.0) -> None:
        """Every node active on its channels and seeing `channels` routable edges in its graph."""

        def ready() -> bool:
            for n in self.nodes.values():
                if any(not c["active"] for c in n.cli("listchannels")["channels"]):
                    return False
                edges = n.cli("describegraph")["edges"]
                # an edge is routable once both ends' policies (channel updates) arrived too
                if (
                    sum(1 for e in edges if e.get("node1_policy") and e.get("node2_policy"))
                    < channels
                ):
                    return False
            return True

        self.wait(ready, f"{channels} channels in every graph", timeout)

    def wait(self, check: Any, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if check():
                    return
            except PeerFailed:
                pass
            for n in self.nodes.values():
                if not n.proc.alive():
                    raise n.proc.failed(f"died waiting for {what}")
            if time.monotonic() > deadline:
                raise PeerFailed(f"no {what} within {timeout:.0f} s ({self.folder})")
            time.sleep(0.2)

    def stop(self) -> None:
        for n in self.nodes.values():
            n.stop()
        if self.own_chain:
            self.chain.stop()
