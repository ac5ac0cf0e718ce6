"""The admin password, shared by the API's Bearer check and the dashboard's login and
re-authentication.

bcrypt makes each check slow on purpose; a password that passed once is remembered (by its
SHA-256, per worker) so honest clients pay that cost once. Wrong passwords are throttled per
client address: after `max_failures` within `window_s` further new tries get 429 until the
window has passed, so guessing is slow and cannot pin the CPU; a password already found right
(cached) still works, so an operator is not locked out by someone else's guesses from the same
address (e.g. behind a shared proxy).
(Counted per gunicorn worker: with N workers an address gets at most N x max_failures tries.)

bcrypt reads at most 72 bytes of a password (older bcrypt releases silently cut the rest, so any
password sharing the first 72 bytes would pass): a longer one is refused with its own message,
before bcrypt, and is not counted as a guess (it costs nothing to refuse).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque

import bcrypt

from gwcore.constants import MAX_PASSWORD_BYTES
from gwcore.errors import RateLimited, Unauthorized

TOO_LONG = (
    f"the password is longer than {MAX_PASSWORD_BYTES} bytes (bcrypt's limit):"
    " it cannot be the admin password"
)


class PasswordCheck:
    def __init__(self, password_hash: str, max_failures: int = 10, window_s: float = 300) -> None:
        self.hash = password_hash.encode()
        self.max_failures, self.window_s = max_failures, window_s
        self._ok: set[bytes] = set()
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def verify(self, password: str | bytes, client: str) -> bool:
        """True if `password` is the admin password. Raises RateLimited while `client` has
        too many recent failures, Unauthorized (TOO_LONG) for a password over 72 bytes."""
        secret = password.encode() if isinstance(password, str) else password
        if len(secret) > MAX_PASSWORD_BYTES:
            raise Unauthorized(TOO_LONG)
        digest = hashlib.sha256(secret).digest()
        now = time.monotonic()
        with self._lock:
            if digest in self._ok:  # known right: never locked out by someone else's guesses
                return True
            recent = self._failures.get(client)
            while recent and now - recent[0] > self.window_s:
                recent.popleft()
            if recent is not None and len(recent) >= self.max_failures:
                raise RateLimited("too many wrong passwords: wait a few minutes")
        try:
            ok = bool(self.hash) and bcrypt.checkpw(secret, self.hash)
        except ValueError:
            ok = False
        with self._lock:
            if ok:
                self._ok.add(digest)
            else:
                if len(self._failures) > 10_000:  # forget addresses whose window has passed
                    self._failures = {
                        k: v for k, v in self._failures.items() if v and now - v[-1] < self.window_s
                    }
                self._failures.setdefault(client, deque()).append(now)
        return ok
