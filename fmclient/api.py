"""The guardians' API: websocket JSON-RPC 2.0 to every guardian, and fedimint's ways of agreeing.

Requests are `{"method", "params": [{"auth": password|null, "params": …}]}` (core methods by
name, module methods `module_<instance id>_<name>`). `PeerConnection` keeps one websocket per
guardian, multiplexes requests over it by id, and reconnects with backoff after it drops.
`FederationApi` asks guardians and combines their answers as fedimint-api-client does:

- `current_consensus`: `threshold` identical answers win (ThresholdConsensus). Guardians that
  fail, time out or disagree are asked again, with backoff, until the deadline: below the
  threshold, an operation waits and completes when guardians return; a lying guardian is
  outvoted.
- `verified`: each answer checked by the caller, `want` verified answers collected
  (FilterMapThreshold: signature shares, decryption shares).
- `first_verified`: the first answer that passes the caller's check (FilterMap).

Long polls (`await_transaction`, `module_*_await_*`, …) end server-side after 60 s with
`-32000 Request timeout`; `long_poll=True` re-issues them until the caller's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

T = TypeVar("T")
log = logging.getLogger(__name__)
SERVER_TIMEOUT_CODE = -32000  # jsonrpsee's answer when a handler's 60 s deadline passes


class ApiError(Exception):
    """A guardian answered with a JSON-RPC error (fedimint uses 400, 401, 404, 500)."""

    def __init__(self, peer: int, method: str, code: int, message: str) -> None:
        super().__init__(f"guardian {peer}: {method}: {code} {message}")
        self.peer, self.method, self.code, self.message = peer, method, code, message


class PeerUnreachable(Exception):
    """No answer from a guardian: it is down, the connection dropped, or it was too slow."""

    def __init__(self, peer: int, why: str) -> None:
        super().__init__(f"guardian {peer} unreachable: {why}")
        self.peer, self.why = peer, why


class NoConsensus(Exception):
    """The deadline passed before enough guardians agreed; says who answered what."""


class PeerConnection:
    def __init__(
        self,
        peer: int,
        url: str,
        connect_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.1, 5.0),
    ) -> None:
        self.peer, self.url, self.connect_timeout = peer, url, connect_timeout
        self._backoff_min, self._backoff_max = backoff
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self._failures = 0
        self._not_before = 0.0

    async def _connection(self) -> ClientConnection:
        async with self._lock:
            if self._ws is not None:
                return self._ws
            wait = self._not_before - time.monotonic()
            if wait > 0:
                raise PeerUnreachable(self.peer, f"reconnecting in {wait:.1f} s")
            try:
                self._ws = await asyncio.wait_for(
                    connect(self.url, max_size=2**26, open_timeout=self.connect_timeout),
                    self.connect_timeout,
                )
            except (OSError, TimeoutError, WebSocketException) as exc:
                self._failures += 1
                delay = min(self._backoff_max, self._backoff_min * 2 ** (self._failures - 1))
                self._not_before = time.monotonic() + delay * random.uniform(0.5, 1.0)
                raise PeerUnreachable(self.peer, f"{type(exc).__name__}: {exc}") from None
            self._failures = 0
            self._reader = asyncio.create_task(self._read(self._ws))
            return self._ws

    async def _read(self, ws: ClientConnection) -> None:
        why = "connection closed"
        try:
            async for message in ws:
                try:
                    answer = json.loads(message)
                    future = self._pending.pop(int(answer["id"]), None)
                except (ValueError, KeyError, TypeError):
                    continue  # not an answer of ours
                if future is not None and not future.done():
                    future.set_result(answer)
        except (WebSocketException, OSError) as exc:
            why = f"{type(exc).__name__}: {exc}"
        finally:
            if self._ws is ws:
                self._ws = None
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(PeerUnreachable(self.peer, why))
            self._pending.clear()

    async def request(
        self, method: str, params: Any = None, auth: str | None = None, timeout: float = 70.0
    ) -> Any:
        ws = await self._connection()
        rid = next(self._ids)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        body = {
            "jsonrpc": "2.0",
            "id": rid,
            "method": method,
            "params": [{"auth": auth, "params": params}],
        }
        try:
            await ws.send(json.dumps(body))
            answer = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise PeerUnreachable(self.peer, f"{method}: no answer in {timeout:.0f} s") from None
        except (WebSocketException, OSError) as exc:
            raise PeerUnreachable(self.peer, f"{type(exc).__name__}: {exc}") from None
        finally:
            self._pending.pop(rid, None)
        if answer.get("error") is not None:
            err = answer["error"]
            raise ApiError(self.peer, method, int(err.get("code", 0)), str(err.get("message")))
        return answer.get("result")

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


class FederationApi:
    def __init__(
        self,
        endpoints: dict[int, str],
        request_timeout: float = 70.0,
        retry_delay: tuple[float, float] = (0.1, 5.0),
    ) -> None:
        if not endpoints:
            raise ValueError("a federation has at least one guardian")
        self.peers = {
            p: PeerConnection(p, url, backoff=retry_delay) for p, url in endpoints.items()
        }
        n = len(endpoints)
        self.max_evil = (n - 1) // 3
        self.threshold = n - self.max_evil
        self.one_honest = self.max_evil + 1
        self.request_timeout = request_timeout
        self._retry_min, self._retry_max = retry_delay

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.peers.values()))

    async def request_peer(
        self,
        peer: int,
        method: str,
        params: Any = None,
        auth: str | None = None,
        long_poll: bool = False,
        deadline: float | None = None,
    ) -> Any:
        """One guardian's answer; a long poll is re-issued after the server's 60 s timeout."""
        while True:
            timeout = self.request_timeout
            if deadline is not None:
                timeout = min(timeout, max(0.1, deadline - time.monotonic()))
            try:
                return await self.peers[peer].request(method, params, auth, timeout)
            except ApiError as exc:
                out_of_time = deadline is not None and time.monotonic() >= deadline
                if long_poll and exc.code == SERVER_TIMEOUT_CODE and not out_of_time:
                    continue
                raise

    async def current_consensus(
        self,
        method: str,
        params: Any = None,
        timeout: float = 120.0,
        long_poll: bool = False,
    ) -> Any:
        """The answer `threshold` guardians give identically. Every guardian is asked; one that
        fails, or whose answer is not (yet) the agreed one, is asked again after a growing
        delay, until `timeout`; then NoConsensus, naming what each said."""
        deadline = time.monotonic() + timeout
        answers: dict[int, str] = {}
        errors: dict[int, str] = {}
        agreed = asyncio.Event()

        async def ask(peer: int) -> None:
            wait = self._retry_min
            while not agreed.is_set() and time.monotonic() < deadline:
                try:
                    result = await self.request_peer(
                        peer, method, params, long_poll=long_poll, deadline=deadline
                    )
                except (ApiError, PeerUnreachable) as exc:
                    errors[peer] = str(exc)
                    answers.pop(peer, None)
                else:
                    errors.pop(peer, None)
                    answers[peer] = json.dumps(result, sort_keys=True)
                    if _agreed(answers, self.threshold) is not None:
                        agreed.set()
                        return
                await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
                wait = min(self._retry_max, wait * 2)

        tasks = [asyncio.create_task(ask(p)) for p in self.peers]
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(agreed.wait(), max(0.0, deadline - time.monotonic()))
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        winner = _agreed(answers, self.threshold)
        if winner is not None:
            return json.loads(winner)
        said = {p: answers.get(p, errors.get(p, "no answer"))[:160] for p in sorted(self.peers)}
        raise NoConsensus(
            f"{method}: fewer than {self.threshold} guardians agreed in {timeout:.0f} s: {said}"
        )

    async def verified(
        self,
        method: str,
        params: Any,
        verify: Callable[[int, Any], T | None],
        want: int | None = None,
        timeout: float = 120.0,
        long_poll: bool = False,
    ) -> dict[int, T]:
        """`want` (default: threshold) answers that `verify(peer, answer)` accepts (it returns
        the value to keep, or None to reject). Rejected and failed guardians are asked again
        until `timeout`."""
        want = self.threshold if want is None else want
        deadline = time.monotonic() + timeout
        got: dict[int, T] = {}
        errors: dict[int, str] = {}
        enough = asyncio.Event()

        async def ask(peer: int) -> None:
            wait = self._retry_min
            while time.monotonic() < deadline and not enough.is_set():
                try:
                    value = verify(
                        peer,
                        await self.request_peer(
                            peer, method, params, long_poll=long_poll, deadline=deadline
                        ),
                    )
                except (ApiError, PeerUnreachable) as exc:
                    errors[peer] = str(exc)
                else:
                    if value is not None:
                        got[peer] = value
                        if len(got) >= want:
                            enough.set()
                        return
                    errors[peer] = "an answer that does not verify"
                await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
                wait = min(self._retry_max, wait * 2)

        tasks = [asyncio.create_task(ask(p)) for p in self.peers]
        waiter = asyncio.create_task(enough.wait())
        try:
            # until enough verified answers, or every guardian has given up (deadline)
            while not enough.is_set() and not all(t.done() for t in tasks):
                await asyncio.wait(
                    [waiter, *(t for t in tasks if not t.done())],
                    timeout=max(0.0, deadline - time.monotonic()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if time.monotonic() >= deadline:
                    break
        finally:
            waiter.cancel()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if len(got) < want:
            raise NoConsensus(f"{method}: {len(got)} of {want} verified answers; others: {errors}")
        return dict(sorted(got.items())[:want])

    async def first_verified(
        self,
        method: str,
        params: Any,
        verify: Callable[[int, Any], T | None],
        timeout: float = 60.0,
    ) -> T:
        return next(iter((await self.verified(method, params, verify, 1, timeout)).values()))


def _agreed(answers: dict[int, str], threshold: int) -> str | None:
    counts: dict[str, int] = {}
    for a in answers.values():
        counts[a] = counts.get(a, 0) + 1
        if counts[a] >= threshold:
            return a
    return None
