"""Where wallet v1 peg-ins read the chain: the operator's bitcoind (JSON-RPC, as gatewayd's
`--bitcoind-url`) or an Esplora HTTP API, behind one small interface.

A wallet v1 claim carries a proof that the deposit is in a block the federation has synced, so
the gateway must find its deposits and fetch their proofs itself (the federation only lists
walletv2 outputs). `ChainSource`:

- `unspent(addresses)`: the confirmed unspent outputs paying our peg-in addresses, each with
  its block height and hash. bitcoind answers it with `scantxoutset` over `addr(...)`
  descriptors, so no bitcoind wallet is needed and no address is imported; unconfirmed
  deposits are not listed (they cannot be claimed yet anyway). Esplora: `/address/:a/utxo`.
- `transaction(txid, block_hash)` and `txout_proof(txid, block_hash)`: the raw transaction and
  its merkle proof (bitcoind: `getrawtransaction` with the block hash, so no `-txindex` is
  needed, and `gettxoutproof`; Esplora: `/tx/:txid/hex`, `/tx/:txid/merkleblock-proof`).
- `tip_height()`: `getblockcount`, `/blocks/tip/height`.

Failures are `ChainError`, one line; the caller tries again later. Nothing here writes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import httpx

from gwcore.bitcoin_address import AddressError, parse_address

SCAN_TIMEOUT_S = 300.0  # scantxoutset reads the whole UTXO set: a minute or more on mainnet
SCAN_IN_PROGRESS = -8  # bitcoind runs one scantxoutset at a time


class ChainError(RuntimeError):
    """The chain source could not answer (down, busy, refused): one line; try again later."""


@dataclass(frozen=True)
class ChainOutput:
    address: str
    txid: str  # display order
    vout: int
    value_sat: int
    height: int  # of the block holding it
    block_hash: str

    @property
    def outpoint(self) -> str:
        return f"{self.txid}:{self.vout}"


class ChainSource(Protocol):
    async def tip_height(self) -> int: ...

    async def unspent(self, addresses: Sequence[str]) -> list[ChainOutput]: ...

    async def transaction(self, txid: str, block_hash: str) -> bytes: ...

    async def txout_proof(self, txid: str, block_hash: str) -> bytes: ...

    async def close(self) -> None: ...


def _scripts(addresses: Sequence[str]) -> dict[str, str]:
    """scriptPubKey hex -> address."""
    try:
        return {parse_address(a, None).script.hex(): a for a in addresses}
    except AddressError as exc:
        raise ChainError(f"not an address: {exc}") from None


class BitcoindChain:
    """A bitcoind's JSON-RPC (`url` like http://127.0.0.1:8332, with its RPC user and
    password); no wallet and no transaction index needed."""

    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`transport`: tests answer for bitcoind."""
        self.url = url.rstrip("/") + "/"
        self._http = httpx.AsyncClient(auth=(user, password), timeout=timeout, transport=transport)
        self._id = 0

    async def _rpc(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        self._id += 1
        body = {"jsonrpc": "1.0", "id": self._id, "method": method, "params": list(params)}
        extra = {"timeout": timeout} if timeout else {}
        try:
            resp = await self._http.post(self.url, json=body, **extra)
        except httpx.HTTPError as exc:
            raise ChainError(f"bitcoind unreachable: {type(exc).__name__}: {exc}") from None
        if resp.status_code == 401:
            raise ChainError("bitcoind refused the RPC user or password")
        try:
            answer = json.loads(resp.text, parse_float=Decimal)
        except ValueError:
            raise ChainError(f"bitcoind answered HTTP {resp.status_code}, not JSON") from None
        error = answer.get("error") if isinstance(answer, dict) else None
        if error:
            code, message = error.get("code"), error.get("message")
            if code == SCAN_IN_PROGRESS and method == "scantxoutset":
                raise ChainError("bitcoind is busy with another UTXO scan; try again later")
            raise ChainError(f"bitcoind {method}: {code} {message}")
        return answer["result"]

    async def tip_height(self) -> int:
        return int(await self._rpc("getblockcount"))

    async def unspent(self, addresses: Sequence[str]) -> list[ChainOutput]:
        if not addresses:
            return []
        scripts = _scripts(addresses)
        descriptors = [f"addr({a})" for a in scripts.values()]
        found = await self._rpc("scantxoutset", "start", descriptors, timeout=SCAN_TIMEOUT_S)
        out = []
        for u in found.get("unspents", []):
            address = scripts.get(u["scriptPubKey"])
            if address is None:
                continue
            height = int(u["height"])
            block_hash = u.get("blockhash") or await self._rpc("getblockhash", height)
            value = int(Decimal(u["amount"]) * 100_000_000)
            out.append(ChainOutput(address, u["txid"], int(u["vout"]), value, height, block_hash))
        return sorted(out, key=lambda o: (o.height, o.txid, o.vout))

    async def transaction(self, txid: str, block_hash: str) -> bytes:
        return bytes.fromhex(await self._rpc("getrawtransaction", txid, False, block_hash))

    async def txout_proof(self, txid: str, block_hash: str) -> bytes:
        return bytes.fromhex(await self._rpc("gettxoutproof", [txid], block_hash))

    async def close(self) -> None:
        await self._http.aclose()


class EsploraChain:
    """An Esplora HTTP API (`url` like https://mempool.space/api)."""

    def __init__(
        self, url: str, timeout: float = 30.0, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        """`transport`: tests answer for the Esplora server."""
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def _get(self, path: str) -> str:
        try:
            resp = await self._http.get(self.url + path)
        except httpx.HTTPError as exc:
            raise ChainError(f"Esplora unreachable: {type(exc).__name__}: {exc}") from None
        if resp.status_code != 200:
            raise ChainError(f"Esplora {path}: HTTP {resp.status_code} {resp.text[:80]}")
        return resp.text

    async def tip_height(self) -> int:
        return int(await self._get("/blocks/tip/height"))

    async def unspent(self, addresses: Sequence[str]) -> list[ChainOutput]:
        out = []
        for address in _scripts(addresses).values():
            try:
                utxos = json.loads(await self._get(f"/address/{address}/utxo"))
                for u in utxos:
                    status = u.get("status") or {}
                    if status.get("confirmed"):
                        out.append(
                            ChainOutput(
                                address, u["txid"], int(u["vout"]), int(u["value"]),
                                int(status["block_height"]), status["block_hash"],
                            )
                        )  # fmt: skip
            except (ValueError, KeyError, TypeError) as exc:
                raise ChainError(f"Esplora answered an odd UTXO list: {exc}") from None
        return sorted(out, key=lambda o: (o.height, o.txid, o.vout))

    async def transaction(self, txid: str, block_hash: str) -> bytes:
        return _hex(await self._get(f"/tx/{txid}/hex"))

    async def txout_proof(self, txid: str, block_hash: str) -> bytes:
        return _hex(await self._get(f"/tx/{txid}/merkleblock-proof"))

    async def close(self) -> None:
        await self._http.aclose()


def _hex(text: str) -> bytes:
    try:
        return bytes.fromhex(text.strip())
    except ValueError:
        raise ChainError("Esplora answered something that is not hex") from None
