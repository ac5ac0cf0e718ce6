"""Counters of one bus endpoint (sent, received, rejected, late replies, ...).

Plain integers in a dict, read by liveness reports, health endpoints and Prometheus exporters.
"""

from __future__ import annotations

from collections import Counter


class BusStats:
    """Named monotonic counters. `stats.incr("rejected.oversized")`."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def incr(self, name: str, by: int = 1) -> None:
        self._counts[name] += by

    def get(self, name: str) -> int:
        return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        return dict(self._counts)
