"""The federation's view of the chain: a bitcoind-compatible JSON-RPC client (httpx).

The URL carries the credentials (`http://user:pass@host:port`). The federation creates or loads
its own named wallet. Amounts come back as Decimal BTC and are turned into integer sats here.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx


class ChainError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"chain RPC error {code}: {message}")
        self.code = code
        self.message = message


def btc_to_sat(value: Any) -> int:
    return int(Decimal(str(value)) * 100_000_000)


class ChainRpc:
    def __init__(self, url: str, wallet: str, *, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self.base = urlunsplit((parts.scheme, f"{parts.hostname}:{parts.port}", "", "", ""))
        self.auth = (parts.username or "", parts.password or "")
        self.wallet = wallet
        self.http = httpx.Client(timeout=timeout)
        self._height = (0, 0.0)
        self._lock = threading.Lock()

    def call(self, method: str, *params: Any, wallet: bool = False) -> Any:
        url = self.base + (f"/wallet/{self.wallet}" if wallet else "/")
        body = {"jsonrpc": "1.0", "id": "fed", "method": method, "params": list(params)}
        try:
            r = self.http.post(url, json=body, auth=self.auth)
        except httpx.HTTPError as exc:
            raise ChainError(-1, f"chain backend unreachable: {exc}") from None
        if r.status_code == 401:
            raise ChainError(-1, "chain backend refused our credentials")
        try:
            data = r.json(parse_float=Decimal)
        except ValueError:
            raise ChainError(
                -1, f"chain backend answered HTTP {r.status_code} without JSON"
            ) from None
        if data.get("error"):
            raise ChainError(int(data["error"]["code"]), str(data["error"]["message"]))
        return data["result"]

    def ensure_wallet(self) -> None:
        try:
            self.call("createwallet", self.wallet)
        except ChainError as exc:
            if exc.code not in (-4,):  # exists: load it
                raise
            try:
                self.call("loadwallet", self.wallet)
            except ChainError as exc2:
                if exc2.code != -35:  # already loaded
                    raise

    def height(self, max_age_s: float = 0.25) -> int:
        with self._lock:
            h, at = self._height
            if time.monotonic() - at < max_age_s:
                return h
        h = int(self.call("getblockcount"))
        with self._lock:
            self._height = (h, time.monotonic())
        return h
