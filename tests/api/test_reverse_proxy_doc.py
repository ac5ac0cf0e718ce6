"""docs/operating.md's nginx example exposes exactly the public routes: every route a client or
guardian calls without the admin password (the OpenAPI document's routes with no security), and
none of the admin API, the dashboard, /metrics or /openapi.json. Locations are matched as nginx
does: exact (`=`) first, then regular expressions (`~`) in order, then the longest prefix."""

from __future__ import annotations

import re
from pathlib import Path

from gwcore import constants as C
from gwcore.version import version_hash
from services.api.openapi import openapi_document

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operating.md"


def _locations() -> list[tuple[str, str, bool]]:
    """(modifier, pattern, proxied) of each location of the guide's nginx server block."""
    block = re.search(r"```nginx\n(server \{.*?)\n```", GUIDE.read_text(), re.S)
    assert block, "the guide's nginx server block"
    found = re.findall(r"location\s+(=|~)?\s*(\S+)\s*\{(.*?)\}\s*$", block[1], re.S | re.M)
    assert found, block[1]
    return [(mod, pattern, "proxy_pass" in body) for mod, pattern, body in found]


def proxied(path: str) -> bool:
    locations = _locations()
    for mod, pattern, passes in locations:
        if mod == "=" and pattern == path:
            return passes
    for mod, pattern, passes in locations:
        if mod == "~" and re.search(pattern, path):
            return passes
    prefixes = [(len(p), passes) for mod, p, passes in locations if not mod and path.startswith(p)]
    return max(prefixes)[1] if prefixes else False


def _example(path: str) -> str:
    return path.replace("{payment_hash}", "ab" * 32)


def test_the_guides_reverse_proxy_exposes_the_public_routes_alone() -> None:
    document = openapi_document(version_hash())
    public, private = set(), {"/ui/", "/ui/login", "/ui/federations", C.PATH_METRICS}
    for path, ops in document["paths"].items():
        secured = any("security" in op for op in ops.values() if isinstance(op, dict))
        (private if secured or path in (C.PATH_METRICS, C.PATH_OPENAPI) else public).add(
            _example(path)
        )
    assert {C.PATH_PAY_INVOICE, C.PATH_GATEWAY_ID, C.PATH_HEALTH} <= public
    assert {C.PATH_CONNECT_FED, C.PATH_SPEND_ECASH} <= private
    assert {p for p in public if not proxied(p)} == set()
    assert {p for p in private if proxied(p)} == set()
    # LNv2 clients join the routes onto a gateway URL that may end in /v1
    for route in (C.PATH_ROUTING_INFO, C.PATH_SEND_PAYMENT, C.PATH_VERIFY):
        assert proxied("/v1" + _example(route))
    assert not proxied("/v1" + C.PATH_CONNECT_FED) and not proxied("/id/x")
