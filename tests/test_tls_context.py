"""tests/tls_context.py: the tests' httpx clients share one default TLS context; others are
built as httpx builds them."""

from __future__ import annotations

import ssl

import httpx


def _context(client: httpx.Client) -> ssl.SSLContext:
    return client._transport._pool._ssl_context  # type: ignore[attr-defined]


def test_default_clients_share_one_context_and_others_get_their_own() -> None:
    with httpx.Client() as a, httpx.Client() as b, httpx.Client(verify=False) as c:
        assert _context(a) is _context(b)
        assert _context(a).verify_mode == ssl.CERT_REQUIRED and _context(a).check_hostname
        assert _context(c) is not _context(a) and _context(c).verify_mode == ssl.CERT_NONE
