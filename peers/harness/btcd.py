"""A real regtest btcd on loopback: the chain the real lnd nodes watch.

btcd has no wallet and mines only with `generate`, to its `--miningaddr`. The harness mines to a
key of its own (embit) and pays lnd nodes from those coinbases with transactions it signs itself
(`fund`). Segwit is active from height 432 on regtest, so `start` mines past it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import httpx
from embit import ec
from embit.networks import NETWORKS
from embit.script import Witness, address_to_scriptpubkey, p2pkh, p2wpkh
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from ..cache import btcd_bin
from .procs import Proc, free_ports

SEGWIT_HEIGHT = 432
COINBASE_MATURITY = 100
FEE_SAT = 20_000


class RpcError(RuntimeError):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class Btcd:
    """`Btcd.start(folder)`; `rpc(method, *params)`; `mine(n)`; `fund({address: sat})`; `stop()`.
    `rpc_host`, `user`, `password`, `cert` are what an lnd node needs to use it."""

    def __init__(
        self, proc: Proc, rpc_port: int, user: str, password: str, cert: Path, key: ec.PrivateKey
    ) -> None:
        self.proc, self.user, self.password, self.cert = proc, user, password, cert
        self.rpc_host = f"127.0.0.1:{rpc_port}"
        # loopback, and btcd's certificate is made at its first start: not verified
        self._http = httpx.Client(auth=(user, password), timeout=120, verify=False)
        self._id = 0
        self.key, self.script = key, p2wpkh(key.get_public_key())
        self._coinbases: list[tuple[int, str, int]] = []  # (height, txid, sat) not spent yet

    @property
    def mining_address(self) -> str:
        return self.script.address(NETWORKS["regtest"])

    @classmethod
    def start(cls, folder: Path, timeout: float = 60.0) -> Btcd:
        folder.mkdir(parents=True, exist_ok=True)
        rpc_port, p2p_port = free_ports(2)
        user, password = "fmgw", secrets.token_hex(16)
        cert = folder / "rpc.cert"
        key = ec.PrivateKey(secrets.token_bytes(32))
        address = p2wpkh(key.get_public_key()).address(NETWORKS["regtest"])
        argv = [
            str(btcd_bin("btcd")),
            "--regtest",
            f"--datadir={folder / 'data'}",
            f"--logdir={folder / 'logs'}",
            f"--rpcuser={user}",
            f"--rpcpass={password}",
            f"--rpclisten=127.0.0.1:{rpc_port}",
            f"--listen=127.0.0.1:{p2p_port}",
            f"--rpccert={cert}",
            f"--rpckey={folder / 'rpc.key'}",
            "--txindex",
            f"--miningaddr={address}",
            "--nobanning",
            "--debuglevel=info",
        ]
        proc = Proc("btcd", argv, dict(os.environ), folder / "btcd.log")
        node = cls(proc, rpc_port, user, password, cert, key)
        try:
            proc.wait_for(lambda: node.rpc("getblockcount") >= 0, timeout, "RPC")
            node.mine(SEGWIT_HEIGHT + 8)
        except BaseException:
            node.stop()
            raise
        return node

    def rpc(self, method: str, *params: Any) -> Any:
        self._id += 1
        body = {"jsonrpc": "1.0", "id": self._id, "method": method, "params": list(params)}
        answer = self._http.post(f"https://{self.rpc_host}", json=body).json()
        if answer.get("error"):
            raise RpcError(answer["error"]["code"], answer["error"]["message"])
        return answer["result"]

    def height(self) -> int:
        return int(self.rpc("getblockcount"))

    def lnd_args(self) -> list[str]:
        """What an lnd node needs to run on this chain."""
        return [
            "--bitcoin.node=btcd",
            f"--btcd.rpchost={self.rpc_host}",
            f"--btcd.rpcuser={self.user}",
            f"--btcd.rpcpass={self.password}",
            f"--btcd.rpccert={self.cert}",
        ]

    def mine(self, blocks: int) -> list[str]:
        """Mine `blocks` (in batches; btcd mines them one by one) and note their coinbases."""
        hashes: list[str] = []
        while len(hashes) < blocks:
            hashes += self.rpc("generate", min(100, blocks - len(hashes)))
        for h in hashes[:50]:  # enough coinbases for any test; the others are never spent
            block = self.rpc("getblock", h, 1)
            tx = self.rpc("getrawtransaction", block["tx"][0], 1)
            out = tx["vout"][0]
            self._coinbases.append((block["height"], tx["txid"], round(out["value"] * 1e8)))
        return hashes

    def fund(self, outputs: dict[str, int] | list[tuple[str, int]]) -> str:
        """Pay each (address, sat) from one mature coinbase, change back to the harness's key;
        broadcast, not mined. The txid."""
        pairs = list(outputs.items()) if isinstance(outputs, dict) else list(outputs)
        need = sum(sat for _, sat in pairs) + FEE_SAT
        tip = self.height()
        usable = [c for c in self._coinbases if tip - c[0] + 1 > COINBASE_MATURITY and c[2] >= need]
        if not usable:
            raise RuntimeError(f"no mature coinbase of {need} sat left: mine more")
        self._coinbases.remove(usable[0])
        _, txid, sat = usable[0]
        outs = [TransactionOutput(s, address_to_scriptpubkey(a)) for a, s in pairs]
        if sat - need > 1000:
            outs.append(TransactionOutput(sat - need, self.script))
        tx = Transaction(vin=[TransactionInput(bytes.fromhex(txid), 0)], vout=outs)
        pub = self.key.get_public_key()
        digest = tx.sighash_segwit(0, p2pkh(pub), sat)
        sig = self.key.sign(digest).serialize() + b"\x01"
        tx.vin[0].witness = Witness([sig, pub.sec()])
        return str(self.rpc("sendrawtransaction", tx.serialize().hex()))

    def stop(self) -> None:
        self._http.close()
        self.proc.stop()
