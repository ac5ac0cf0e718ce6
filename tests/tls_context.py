"""One default TLS context for every httpx client the tests make in their own process.

httpx builds a new `ssl.SSLContext` for each `httpx.Client(...)` and each module-level
`httpx.get/post(...)`, loading certifi's CA bundle each time: ~25 ms of CPU. The tests make
thousands (polling loops, bad-input audits, one client per guardian): a profile of the xdist
workers over a whole run put ~19 % of their CPU there. A context may be shared by any number
of connections (it is read-only once made), so the default one (verify=True, no client
certificate) is made once per process; any other verify or cert is built as before. The
product's processes are not touched: this runs in the test processes only.
"""

from __future__ import annotations

import ssl
from typing import Any

from httpx._transports import default as _transports


def share_the_default_context() -> None:
    made = _transports.create_ssl_context
    if getattr(made, "shares_default", False):
        return
    shared: list[ssl.SSLContext] = []

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        if verify is not True or cert is not None or not trust_env:
            return made(verify=verify, cert=cert, trust_env=trust_env)
        if not shared:
            shared.append(made(verify=True, cert=None, trust_env=True))
        return shared[0]

    create_ssl_context.shares_default = True  # type: ignore[attr-defined]
    _transports.create_ssl_context = create_ssl_context  # type: ignore[assignment]
