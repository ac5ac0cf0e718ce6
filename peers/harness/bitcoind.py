"""A real regtest bitcoind (Bitcoin Knots) on loopback, with a `miner` wallet and mature coins:
the chain real fedimintd guardians watch (no txindex: they only poll) and lnd nodes run on (its
ZMQ block and transaction feeds, `lnd_args`)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import httpx

from ..cache import bitcoind_command
from .procs import Proc, Process, free_ports


class RpcError(RuntimeError):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class Bitcoind:
    """`Bitcoind.start(folder)`; `rpc(method, *params, wallet=None)`; `mine(n)`; `stop()`."""

    def __init__(
        self, proc: Process, rpc_port: int, user: str, password: str, zmq_ports: list[int]
    ) -> None:
        self.proc, self.rpc_port, self.user, self.password = proc, rpc_port, user, password
        self.url = f"http://127.0.0.1:{rpc_port}"
        self.zmq_block, self.zmq_tx = (f"tcp://127.0.0.1:{p}" for p in zmq_ports)
        self._http = httpx.Client(auth=(user, password), timeout=60)
        self._id = 0

    @staticmethod
    def argv(data: Path, ports: dict[str, int], user: str, password: str) -> list[str]:
        """The command line of a node on `data` with `ports` {rpc, p2p, zmq_block, zmq_tx}."""
        return [
            *bitcoind_command(),
            "-regtest",
            f"-datadir={data}",
            f"-rpcport={ports['rpc']}",
            f"-port={ports['p2p']}",
            "-rpcbind=127.0.0.1",
            "-rpcallowip=127.0.0.1",
            f"-rpcuser={user}",
            f"-rpcpassword={password}",
            "-listen=0",
            "-dnsseed=0",
            "-fallbackfee=0.0002",
            "-txindex=0",
            "-server=1",
            "-printtoconsole=1",
            "-rpcworkqueue=64",
            f"-zmqpubrawblock=tcp://127.0.0.1:{ports['zmq_block']}",
            f"-zmqpubrawtx=tcp://127.0.0.1:{ports['zmq_tx']}",
        ]

    @staticmethod
    def new_ports() -> dict[str, int]:
        return dict(zip(("rpc", "p2p", "zmq_block", "zmq_tx"), free_ports(4), strict=True))

    @classmethod
    def start(cls, folder: Path, timeout: float = 60.0) -> Bitcoind:
        data = folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        ports = cls.new_ports()
        user, password = "fmgw", secrets.token_hex(16)
        argv = cls.argv(data, ports, user, password)
        proc = Proc("bitcoind", argv, dict(os.environ), folder / "bitcoind.log")
        node = cls(proc, ports["rpc"], user, password, [ports["zmq_block"], ports["zmq_tx"]])
        try:
            node.wait_ready(timeout)
            node.rpc("createwallet", "miner")
            node.mine(101)  # coinbases mature after 100 blocks
        except BaseException:
            node.stop()
            raise
        return node

    def wait_ready(self, timeout: float = 60.0) -> None:
        self.proc.wait_for(
            lambda: self.rpc("getblockchaininfo")["chain"] == "regtest", timeout, "RPC"
        )

    def rpc(self, method: str, *params: Any, wallet: str | None = None) -> Any:
        self._id += 1
        url = self.url + (f"/wallet/{wallet}" if wallet else "/")
        body = {"jsonrpc": "2.0", "id": self._id, "method": method, "params": list(params)}
        answer = self._http.post(url, json=body).json()
        if answer.get("error"):
            raise RpcError(answer["error"]["code"], answer["error"]["message"])
        return answer["result"]

    def new_address(self, address_type: str = "bech32") -> str:
        return str(self.rpc("getnewaddress", "", address_type, wallet="miner"))

    def mine(self, blocks: int) -> list[str]:
        return list(self.rpc("generatetoaddress", blocks, self.new_address()))

    def height(self) -> int:
        return int(self.rpc("getblockcount"))

    def fund(self, outputs: dict[str, int] | list[tuple[str, int]]) -> str:
        """Pay each (address, sat) from the miner's wallet in one transaction (not mined)."""
        pairs = list(outputs.items()) if isinstance(outputs, dict) else list(outputs)
        amounts: dict[str, float] = {}
        for address, sat in pairs:  # sendmany takes each address once
            amounts[address] = amounts.get(address, 0) + sat
        return str(
            self.rpc(
                "sendmany", "", {a: f"{s / 1e8:.8f}" for a, s in amounts.items()}, wallet="miner"
            )
        )

    def lnd_args(self) -> list[str]:
        """What an lnd node needs to run on this chain."""
        host = self.url.removeprefix("http://")
        return [
            "--bitcoin.node=bitcoind",
            f"--bitcoind.rpchost={host}",
            f"--bitcoind.rpcuser={self.user}",
            f"--bitcoind.rpcpass={self.password}",
            f"--bitcoind.zmqpubrawblock={self.zmq_block}",
            f"--bitcoind.zmqpubrawtx={self.zmq_tx}",
        ]

    def send(self, address: str, sat: int) -> str:
        """Pay `address` from the miner's wallet (not mined): the txid."""
        return str(self.rpc("sendtoaddress", address, f"{sat / 1e8:.8f}", wallet="miner"))

    def stop(self) -> None:
        self._http.close()
        self.proc.stop()
