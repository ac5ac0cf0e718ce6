"""Who the client of a request is, for the rate limit and the wrong-password throttle.

The peer address, unless the peer is a trusted reverse proxy (`GATEWAY_API_TRUSTED_PROXIES`):
then the right-most address of `X-Forwarded-For` that is not itself a trusted proxy (each proxy
appends the address it saw, so everything left of that is what the client chose to send and is
never believed). An IPv6 client is counted by its /64, the block one subscriber gets, so that
one host cannot take a new bucket per address.

Never: read X-Forwarded-For from a peer that is not a trusted proxy (anyone could pick a fresh
address per request and escape every limit).
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any

import falcon

Network = IPv4Network | IPv6Network
MAX_HOPS = 30  # X-Forwarded-For entries looked at, right to left


def _address(text: str) -> IPv4Address | IPv6Address | None:
    """An X-Forwarded-For entry's address: `1.2.3.4`, `1.2.3.4:567`, `::1`, `[::1]:80`."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.split(":")[0]
    try:
        return ip_address(text)
    except ValueError:
        return None


def _trusted(addr: IPv4Address | IPv6Address | None, proxies: Sequence[Network]) -> bool:
    return addr is not None and any(addr in net for net in proxies)


def client_address(peer: str, forwarded_for: str | None, proxies: Sequence[Network]) -> str:
    """The client's address as `peer` and its X-Forwarded-For header say (see the module)."""
    if not proxies or not forwarded_for or not _trusted(_address(peer), proxies):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",")][-MAX_HOPS:]
    client = peer
    for hop in reversed(hops):
        addr = _address(hop)
        if addr is None:  # not an address: written by the proxy, so its client; keep it short
            return hop[:64] or client
        client = str(addr)
        if not _trusted(addr, proxies):
            return client
    return client  # every hop a proxy: the left-most


def client_key(client: str) -> str:
    """What one client is counted by: its address, or its /64 for IPv6."""
    addr = _address(client)
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is None:
        return str(IPv6Network((addr, 64), strict=False))
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return client


class ClientAddress:
    """Middleware: `req.context.client`, the key the limits count each client by."""

    def __init__(self, proxies: Sequence[Network]) -> None:
        self.proxies = tuple(proxies)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.client = client_key(
            client_address(req.remote_addr or "", req.get_header("X-Forwarded-For"), self.proxies)
        )


def client_of(req: Any) -> str:
    """`req.context.client` (set by ClientAddress), else the peer address."""
    return getattr(req.context, "client", None) or req.remote_addr or ""
