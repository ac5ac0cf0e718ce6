"""The admin password, shared by the API's Bearer check and the dashboard's login and
re-authentication.

bcrypt makes each check slow on purpose; a password that passed once is remembered (by its
SHA-256, per worker) so honest clients pay that cost once. Wrong passwords are throttled per
client (services/api/clients.py: its address, or behind a trusted proxy the address the proxy
saw), counted by every gunicorn worker together (services/api/limits.py): after
`max_failures` within `window_s` further new tries get 429 (with the seconds to wait) until the
oldest failure leaves the window, so guessing is slow and cannot pin the CPU. Each try is
counted before its bcrypt check, so concurrent guesses cannot slip past the limit. A password
already found right in this worker still works, so an operator is not locked out by someone
else's guesses from the same address.

bcrypt reads at most 72 bytes of a password (older bcrypt releases silently cut the rest, so any
password sharing the first 72 bytes would pass): a longer one is refused with its own message,
before bcrypt, and is not counted as a guess (it costs nothing to refuse).
"""

from __future__ import annotations

import hashlib
import math
import threading

import bcrypt

from gwcore.constants import MAX_PASSWORD_BYTES
from gwcore.errors import RateLimited, Unauthorized

from .limits import SharedLimits

TOO_LONG = (
    f"the password is longer than {MAX_PASSWORD_BYTES} bytes (bcrypt's limit):"
    " it cannot be the admin password"
)


class PasswordCheck:
    def __init__(
        self,
        password_hash: str,
        max_failures: int = 10,
        window_s: float = 300,
        limits: SharedLimits | None = None,
    ) -> None:
        """`limits`: the counts shared with the other workers (None: this object's own)."""
        self.hash = password_hash.encode()
        self.max_failures, self.window_s = max_failures, window_s
        self.limits = limits or SharedLimits(None)
        self._ok: set[bytes] = set()
        self._lock = threading.Lock()

    def verify(self, password: str | bytes, client: str) -> bool:
        """True if `password` is the admin password. Raises RateLimited while `client` has
        too many recent failures, Unauthorized (TOO_LONG) for a password over 72 bytes."""
        secret = password.encode() if isinstance(password, str) else password
        if len(secret) > MAX_PASSWORD_BYTES:
            raise Unauthorized(TOO_LONG)
        digest = hashlib.sha256(secret).digest()
        with self._lock:
            if digest in self._ok:  # known right: never locked out by someone else's guesses
                return True
        try_id, wait = self.limits.try_password(client, self.max_failures, self.window_s)
        if try_id is None:
            raise RateLimited(
                f"too many wrong passwords: try again in {math.ceil(wait)} s", retry_after_s=wait
            )
        try:
            ok = bool(self.hash) and bcrypt.checkpw(secret, self.hash)
        except ValueError:
            ok = False
        if ok:
            self.limits.right(try_id)
            with self._lock:
                self._ok.add(digest)
        return ok
