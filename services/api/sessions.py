"""Mintgate's sessions: signed cookies that every gunicorn worker can check, and their end.

A session is `expiry.id.signature` (HMAC-SHA256 with a key from the session secret and the
admin password's bcrypt hash, so a new password ends every session). Its random id doubles as
the CSRF token of every form. Logging out revokes the id in a small SQLite file in the run
directory, read by all workers, so a copied cookie is dead after logout, not only deleted from
one browser. The login form, before any session exists, carries a token of its own
(double-submit: a SameSite cookie and a hidden field that must match).

Never: sign with an empty secret (the factory makes one in the run directory when none is
configured), or accept a session while no password is set.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from pathlib import Path

from gwcore.files import private_file

from .auth import PasswordCheck

SESSION_COOKIE = "mintgate_session"
LOGIN_COOKIE = "mintgate_login"
SESSION_S = 8 * 3600


class RevokedSessions:
    """Ids of sessions ended before their expiry, shared by the workers through SQLite."""

    def __init__(self, path: Path | None) -> None:
        self.path = path  # None: in memory, for one process (tests)
        self._memory: dict[str, int] = {}
        self._local = threading.local()  # one connection per gunicorn thread, opened once
        if path is not None:
            db = self._db()
            db.execute("PRAGMA journal_mode=WAL")  # once, for the file: readers never block
            db.execute(
                "CREATE TABLE IF NOT EXISTS revoked (id TEXT PRIMARY KEY, expiry INTEGER NOT NULL)"
            )

    def _db(self) -> sqlite3.Connection:
        """This thread's connection (every page checks its session: no open per request)."""
        db = getattr(self._local, "db", None)
        if db is None:
            assert self.path is not None
            db = self._local.db = sqlite3.connect(
                private_file(self.path), timeout=5, isolation_level=None
            )
        return db

    def revoke(self, session_id: str, expiry: int) -> None:
        now = int(time.time())
        if self.path is None:
            self._memory = {k: v for k, v in self._memory.items() if v >= now}
            self._memory[session_id] = expiry
            return
        db = self._db()
        db.execute("DELETE FROM revoked WHERE expiry < ?", (now,))
        db.execute("INSERT OR REPLACE INTO revoked VALUES (?, ?)", (session_id, expiry))

    def is_revoked(self, session_id: str) -> bool:
        if self.path is None:
            return session_id in self._memory
        row = self._db().execute("SELECT 1 FROM revoked WHERE id = ?", (session_id,)).fetchone()
        return row is not None


class Sessions:
    def __init__(
        self, passwords: PasswordCheck, secret: str, revoked: RevokedSessions | None = None
    ) -> None:
        if not secret:
            raise ValueError("dashboard sessions need a session secret")
        self.passwords = passwords
        self.revoked = revoked or RevokedSessions(None)
        # the same in every gunicorn worker (a session must survive landing on another one) and
        # changed with the password: from the session secret and the (salted) bcrypt hash
        self.key = hashlib.sha256(
            b"mintgate-session-key:" + secret.encode() + b":" + passwords.hash
        ).digest()

    def check_password(self, password: str, client: str) -> bool:
        """The admin password? Raises RateLimited after too many wrong ones from `client`."""
        return self.passwords.verify(password, client)

    def _sign(self, payload: str) -> str:
        return hmac.new(self.key, payload.encode(), hashlib.sha256).hexdigest()

    def issue(self) -> tuple[str, str]:
        """(cookie value, the session's id = its CSRF token) of a new session."""
        sid = secrets.token_hex(16)
        payload = f"{int(time.time()) + SESSION_S}.{sid}"
        return f"{payload}.{self._sign(payload)}", sid

    def verify(self, token: str | None) -> str | None:
        """The session's CSRF token if `token` is a valid, unexpired, not revoked session (never
        when no password is set: then nobody can log in, and nobody can forge a session either)."""
        parsed = self._parse(token)
        if parsed is None or self.revoked.is_revoked(parsed[1]):
            return None
        return parsed[1]

    def revoke(self, token: str | None) -> None:
        """End the session of `token` in every worker (logout)."""
        parsed = self._parse(token)
        if parsed is not None:
            self.revoked.revoke(parsed[1], parsed[0])

    def _parse(self, token: str | None) -> tuple[int, str] | None:
        if not self.passwords.hash or not token or token.count(".") != 2:
            return None
        expiry, sid, sig = token.split(".")
        if not hmac.compare_digest(sig, self._sign(f"{expiry}.{sid}")):
            return None
        if not expiry.isdigit() or int(expiry) < time.time():
            return None
        return int(expiry), sid

    # --- the login form's own CSRF token (no session yet) ----------------------------------------
    @staticmethod
    def login_token() -> str:
        return secrets.token_hex(16)

    @staticmethod
    def login_token_ok(cookie: str | None, field: str) -> bool:
        return bool(cookie) and hmac.compare_digest(str(cookie), str(field))
