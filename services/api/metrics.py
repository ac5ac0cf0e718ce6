"""/metrics: what Prometheus scrapes from the HTTP front.

Two sources:
- the front's own counters (HTTP requests per route and status, /pay_invoice results and
  latency). Under gunicorn these live in prometheus_client's multiprocess files
  (PROMETHEUS_MULTIPROC_DIR, set by deploy/gunicorn.conf.py), so every worker's counts add up
  whichever worker answers the scrape; without it (tests) the worker's own registry is used;
- the payments themselves, per federation and direction, asked from each actor at scrape time
  (`actor.metrics`): counts by status, volume, fees earned, settlement latency histogram and the
  e-cash balance. They come from the actors' databases, so they are the same from every worker
  and survive restarts of any process.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector

from gwcore import constants as C
from gwcore.errors import GatewayError

if TYPE_CHECKING:
    from .gateway import Gateway

log = logging.getLogger(__name__)
SCRAPE_TIMEOUT_S = 3.0


class FrontMetrics:
    """The front's own counters, registered in `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.lock = threading.Lock()  # the cached actor figures (see _Cached)
        self.families: list[Metric] | None = None
        self.families_at = 0.0
        self.requests = Counter(
            "gateway_http_requests",
            "HTTP requests by route template and status",
            ["route", "status"],
            registry=registry,
        )
        self.pay_results = Counter(
            "gateway_pay_invoice_requests",
            "/pay_invoice requests by result (settled or an error code)",
            ["result"],
            registry=registry,
        )
        self.pay_latency = Histogram(
            "gateway_pay_invoice_seconds",
            "/pay_invoice latency, successful calls",
            registry=registry,
            buckets=C.PAYMENT_LATENCY_BUCKETS_S,
        )


class PaymentCollector:
    """Asks every running actor for its payment totals when Prometheus scrapes."""

    def __init__(self, gw: Gateway, request_id: str) -> None:
        self.gw, self.request_id = gw, request_id

    def collect(self) -> Iterator[Metric]:
        fed_labels = ["federation_id", "name"]
        up = GaugeMetricFamily(
            "gateway_federation_up", "1 if the federation's actor is running", labels=fed_labels
        )
        balance = GaugeMetricFamily(
            "gateway_ecash_balance_msat", "e-cash held in the federation", labels=fed_labels
        )
        labels = [*fed_labels, "direction"]
        count = CounterMetricFamily(
            "gateway_payments",
            "finished payments by direction and status",
            labels=[*labels, "status"],
        )
        pending = GaugeMetricFamily(
            "gateway_payments_pending", "payments not finished yet", labels=labels
        )
        volume = CounterMetricFamily(
            "gateway_payment_volume_msat", "settled payment amounts", labels=labels
        )
        fees = CounterMetricFamily(
            "gateway_fees_earned_msat", "fees kept by the gateway", labels=labels
        )
        latency = HistogramMetricFamily(
            "gateway_payment_latency_seconds",
            "time from a payment's first record to its settlement",
            labels=labels,
        )
        extension = GaugeMetricFamily(
            "gateway_lightning_extension_connected", "1 if the router streams HTLCs"
        )
        try:
            listed = self.gw.call(
                C.GATEWAY_SERVICE,
                C.METHOD_LIST_FEDS,
                {},
                request_id=self.request_id,
                timeout=SCRAPE_TIMEOUT_S,
            )
        except GatewayError:
            listed = {"federations": [], "extension_connected": False}
        extension.add_metric([], 1 if listed["extension_connected"] else 0)
        for f in listed["federations"]:
            if f["state"] == "left":
                continue
            fl = [f["federation_id"], f.get("name") or ""]
            snap = None
            if f["state"] == "running":
                try:
                    snap = self.gw.call(
                        f["federation_id"],
                        C.METHOD_ACTOR_METRICS,
                        {},
                        request_id=self.request_id,
                        timeout=SCRAPE_TIMEOUT_S,
                    )
                except GatewayError:
                    snap = None
            try:
                rows = _rows(snap) if snap is not None else None
            except (KeyError, TypeError, ValueError):
                log.exception("malformed actor.metrics reply from %s", f["federation_id"])
                rows = None
            up.add_metric(fl, 1 if rows is not None else 0)
            if rows is None:
                continue
            balance.add_metric(fl, snap["balance_msat"])
            for direction, d, buckets in rows:
                dl = [*fl, direction]
                for status in ("settled", "failed"):
                    count.add_metric([*dl, status], d[status])
                pending.add_metric(dl, d["pending"])
                volume.add_metric(dl, d["volume_msat"])
                fees.add_metric(dl, d["fees_earned_msat"])
                latency.add_metric(dl, buckets, sum_value=d["latency_sum_s"])
        yield from (extension, up, balance, count, pending, volume, fees, latency)


def _rows(snap: dict) -> list[tuple[str, dict, list[tuple[str, float]]]]:
    """(direction, totals, cumulative histogram buckets) of an actor's snapshot; raises on a
    malformed one before anything is emitted."""
    bounds = [*map(str, snap["latency_bounds_s"]), "+Inf"]
    int(snap["balance_msat"])
    out = []
    for direction, d in snap["directions"].items():
        for k in ("settled", "failed", "pending", "volume_msat", "fees_earned_msat"):
            int(d[k])
        cumulative, buckets = 0, []
        for le, n in zip(bounds, d["latency_buckets"], strict=True):
            cumulative += n
            buckets.append((le, cumulative))
        out.append((direction, d, buckets))
    return out


def scrape(gw: Gateway, request_id: str) -> bytes:
    """The /metrics body: the front's counters (all workers') and the actors' payment totals."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_Forward(gw.metrics.registry))
    registry.register(_Cached(gw, PaymentCollector(gw, request_id)))
    return generate_latest(registry)


class _Cached:
    """The actors' figures, asked at most every `metrics_cache_s` per worker: scraping /metrics
    in a loop cannot keep the actors busy."""

    def __init__(self, gw: Gateway, inner: PaymentCollector) -> None:
        self.gw, self.inner = gw, inner

    def collect(self) -> Iterator[Metric]:
        cache = self.gw.metrics
        with cache.lock:
            now = time.monotonic()
            if cache.families is None or now - cache.families_at > self.gw.settings.metrics_cache_s:
                cache.families, cache.families_at = list(self.inner.collect()), now
            families = cache.families
        yield from families


class _Forward:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.lock = threading.Lock()  # the cached actor figures (see _Cached)
        self.families: list[Metric] | None = None
        self.families_at = 0.0

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()
