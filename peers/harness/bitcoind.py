"""A real regtest bitcoind (Bitcoin Knots) on loopback, with a `miner` wallet and mature coins:
the chain real fedimintd guardians watch (no txindex, no ZMQ: they only poll)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import httpx

from ..cache import bitcoind_command
from .procs import Proc, free_ports


class RpcError(RuntimeError):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class Bitcoind:
    """`Bitcoind.start(folder)`; `rpc(method, *params, wallet=None)`; `mine(n)`; `stop()`."""

    def __init__(self, proc: Proc, rpc_port: int, user: str, password: str) -> None:
        self.proc, self.rpc_port, self.user, self.password = proc, rpc_port, user, password
        self.url = f"http://127.0.0.1:{rpc_port}"
        self._http = httpx.Client(auth=(user, password), timeout=60)
        self._id = 0

    @classmethod
    def start(cls, folder: Path, timeout: float = 60.0) -> Bitcoind:
        data = folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        rpc_port, p2p_port = free_ports(2)
        user, password = "fmgw", secrets.token_hex(16)
        argv = [
            *bitcoind_command(),
            "-regtest",
            f"-datadir={data}",
            f"-rpcport={rpc_port}",
            f"-port={p2p_port}",
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
        ]
        proc = Proc("bitcoind", argv, dict(os.environ), folder / "bitcoind.log")
        node = cls(proc, rpc_port, user, password)
        try:
            proc.wait_for(
                lambda: node.rpc("getblockchaininfo")["chain"] == "regtest", timeout, "RPC"
            )
            node.rpc("createwallet", "miner")
            node.mine(101)  # coinbases mature after 100 blocks
        except BaseException:
            node.stop()
            raise
        return node

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

    def send(self, address: str, sat: int) -> str:
        """Pay `address` from the miner's wallet (not mined): the txid."""
        return str(self.rpc("sendtoaddress", address, f"{sat / 1e8:.8f}", wallet="miner"))

    def stop(self) -> None:
        self._http.close()
        self.proc.stop()
