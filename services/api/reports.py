"""The payment log and the payment summary, across the federations' actors.

Each actor answers `actor.payment_log` newest first, at most 1000 rows a call; the log pages
backwards with `before` so its filters are exact rather than "whatever the newest 1000 rows
held" (bounded: MAX_PAGES calls per federation). The summary is computed by each actor over its
own database (`actor.payment_summary`) and merged here.
"""

from __future__ import annotations

import time
from typing import Any

from gwcore import constants as C
from gwcore import summary
from gwcore.errors import GatewayError, InvalidInput

from .gateway import Gateway

PAGE = 1000
MAX_PAGES = 100
MAX_BUCKETS = 500


def _choice_list(body: dict, name: str, allowed: tuple[str, ...]) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(v in allowed for v in value):
        raise InvalidInput(f"{name}: a non-empty list of {', '.join(allowed)}")
    return value


def _time(body: dict, name: str, default: float | None) -> float | None:
    value = body.get(name)
    if value is None:  # absent or null: the default
        return default
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1e11:
        raise InvalidInput(f"{name} must be a Unix time")
    return float(value)


def _federations(gw: Gateway, body: dict, rid: str) -> list[str]:
    if body.get("federation_id") is not None:
        return [gw.federation(body, rid)]
    return [f["federation_id"] for f in gw.federations(rid) if f["state"] == "running"]


def _scan(
    gw: Gateway,
    fed: str,
    since: float,
    before: float | None,
    rid: str,
    keep: Any,
    want: int | None,
) -> tuple[list[dict], bool]:
    """Rows of one federation created in [since, before), newest first, that `keep` accepts;
    stops at `want` rows. (rows, truncated); raises the actor's GatewayError if it does not
    answer at first (a later page that fails ends the rows there)."""
    out: list[dict] = []
    for _ in range(MAX_PAGES):
        query: dict = {"limit": PAGE, "since": since}
        if before is not None:
            query["before"] = before
        try:
            page = gw.call(fed, C.METHOD_ACTOR_PAYMENT_LOG, query, request_id=rid)["payments"]
        except GatewayError:
            if not out:
                raise
            return out, True
        out += [r for r in page if keep(r)]
        if want is not None and len(out) >= want:
            return out[:want], False
        if len(page) < PAGE:
            return out, False
        before = min(r["created"] for r in page)
    return out, True


def payment_log(gw: Gateway, body: dict, rid: str) -> dict:
    """{limit?, federation_id?, kinds?, statuses?, since?, before?} -> {payments} newest first,
    and `missing_federations`: those whose actor did not answer (their payments are not in)."""
    limit = body.get("limit", 50)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
        raise InvalidInput("limit must be 1..1000")
    kinds = _choice_list(body, "kinds", C.PAYMENT_DIRECTIONS)
    statuses = _choice_list(body, "statuses", C.PAYMENT_STATUSES)
    since, before = _time(body, "since", 0.0), _time(body, "before", None)

    def keep(r: dict) -> bool:
        return (kinds is None or r["direction"] in kinds) and (
            statuses is None or r["status"] in statuses
        )

    rows: list[dict] = []
    missing: list[str] = []
    for fed in _federations(gw, body, rid):
        try:
            rows += _scan(gw, fed, since or 0.0, before, rid, keep, limit)[0]
        except GatewayError:
            missing.append(fed)  # an actor that does not answer: said, not hidden
    rows.sort(key=lambda r: -r["created"])
    return {"payments": rows[:limit], "missing_federations": missing}


def payment_summary(gw: Gateway, body: dict, rid: str) -> dict:
    """{start?, end?, bucket_s?, federation_id?} -> per direction: count, settled, failed,
    pending, volume, fees, p50/p90 settlement latency; and `series`, settled volume per bucket
    (default one hour) for the chart. Each actor summarizes its own payments
    (gwcore.summary). The window defaults to the 24 hours before `end`, clamped at the epoch:
    `{"end": 0}` is the empty window [0, 0], never a start before 1970."""
    end = _time(body, "end", time.time())
    assert end is not None
    start = _time(body, "start", max(0.0, end - 86_400))
    assert start is not None
    if start > end:
        raise InvalidInput("start must not be after end")
    bucket = body.get("bucket_s", 3600)
    if not isinstance(bucket, int) or isinstance(bucket, bool) or not 60 <= bucket <= 31_622_400:
        raise InvalidInput("bucket_s must be an integer from 60 to 31622400 (a year)")
    if (end - start) / bucket > MAX_BUCKETS:
        raise InvalidInput(f"at most {MAX_BUCKETS} buckets: widen bucket_s")
    query = {"start": start, "end": end, "bucket_s": bucket}
    parts, missing = [], []
    for fed in _federations(gw, body, rid):
        try:
            parts.append(gw.call(fed, C.METHOD_ACTOR_PAYMENT_SUMMARY, query, request_id=rid))
        except GatewayError:
            missing.append(fed)  # an actor that does not answer: said, not hidden
    return {**summary.merge(parts, start, end, bucket), "missing_federations": missing}
