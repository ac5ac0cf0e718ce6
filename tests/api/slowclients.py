"""Hostile HTTP clients for the front's tests and bench (tests/api/test_front_gunicorn.py,
bench/api_slowloris.py): `SlowClients` holds N connections that send their headers (or a
declared body) a line (a byte) at a time, reopening each one the server cuts, and records when
each was cut; `timed_get` / `timed_post` measure an honest client's answer meanwhile."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class _Slow:
    sock: socket.socket
    opened: float
    sent: float = 0.0


@dataclass
class SlowClients:
    host: str
    port: int
    n: int
    body: bool = False  # headers sent at once, then the declared body a byte at a time
    every_s: float = 2.0
    lifetimes: list[float] = field(default_factory=list)  # seconds each cut connection lived
    opened: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _open(self, sel: selectors.BaseSelector) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=5)
        sock.setblocking(False)
        slow = _Slow(sock, time.monotonic())
        if self.body:
            sock.send(
                b"POST /pay_invoice HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                b"Content-Length: 4000\r\n\r\n"
            )
        else:
            sock.send(b"GET /health/live HTTP/1.1\r\n")
        slow.sent = time.monotonic()
        sel.register(sock, selectors.EVENT_READ, slow)
        self.opened += 1

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        for _ in range(self.n):
            self._open(sel)
        while not self._stop.is_set():
            for key, _ in sel.select(0.05):  # an answer (408) or a close: the server cut it
                slow: _Slow = key.data
                try:
                    slow.sock.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                self.lifetimes.append(time.monotonic() - slow.opened)
                sel.unregister(slow.sock)
                slow.sock.close()
                self._open(sel)  # keep n open, as an attacker would
            now = time.monotonic()
            for key in list(sel.get_map().values()):
                slow = key.data
                if now - slow.sent >= self.every_s:
                    slow.sent = now
                    with contextlib.suppress(OSError):  # cut: the selector says so next
                        slow.sock.send(b"1" if self.body else b"X-Slow: 1\r\n")
        for key in list(sel.get_map().values()):
            key.data.sock.close()
        sel.close()


def timed_get(url: str, headers: dict | None = None, timeout: float = 5) -> tuple[float, int]:
    """(seconds, status) of one request on a fresh connection; status 0 if none came."""
    start = time.monotonic()
    try:
        status = httpx.get(url, headers=headers, timeout=timeout).status_code
    except httpx.HTTPError:
        status = 0
    return time.monotonic() - start, status


def timed_post(url: str, headers: dict | None = None, timeout: float = 5) -> tuple[float, int]:
    start = time.monotonic()
    try:
        status = httpx.post(url, headers=headers, json={}, timeout=timeout).status_code
    except httpx.HTTPError:
        status = 0
    return time.monotonic() - start, status
