"""The HTTP front: a Falcon (WSGI) app built by `create_app(settings, bus)`; `get_app()` is what
gunicorn loads (bus connection made lazily in each worker, after fork).

Responders are thin: validate the JSON body, make one bus request, map the reply. Errors come
from gwcore.errors' one table: `{error, code}` with its HTTP status; public routes
(/pay_invoice) show the redacted public message, admin routes the full one. Every response
carries the request id (X-Request-Id, taken from the request or made), which travels in the bus
envelope into the router and the actors' logs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import bcrypt
import falcon
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bus import ipc_endpoint
from gwcore import constants as C
from gwcore.errors import (
    GatewayError,
    InternalError,
    InvalidInput,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthorized,
)
from gwcore.logging import log_context

from .bridge import BusBridge
from .dashboard import add_dashboard
from .openapi import openapi_document
from .settings import ApiSettings

log = logging.getLogger(__name__)
VERSION_HASH = "fmgw-0.1.0"


class BusCaller(Protocol):
    def call(
        self, service: str, method: str, payload: bytes, *, timeout: float, **kwargs: Any
    ) -> bytes: ...


def _body(req: falcon.Request, max_bytes: int) -> dict:
    if req.content_length and req.content_length > max_bytes:
        raise TooLarge(f"body over {max_bytes} bytes")
    raw = req.bounded_stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise TooLarge(f"body over {max_bytes} bytes")
    if not raw:
        return {}
    try:
        body = json.loads(raw, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput("body must be a JSON object")
    return body


def _hex32(value: Any, name: str) -> str:
    if not isinstance(value, str) or len(value) != 64:
        raise InvalidInput(f"{name} must be 32 bytes of hex")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise InvalidInput(f"{name} must be 32 bytes of hex") from None
    return value.lower()


class Gateway:
    """Everything the responders need: the bus, the settings, metrics."""

    def __init__(self, settings: ApiSettings, bus: BusCaller, registry: CollectorRegistry) -> None:
        self.settings, self.bus = settings, bus
        self.requests = Counter(
            "gateway_http_requests_total", "HTTP requests", ["route", "status"], registry=registry
        )
        self.payments = Counter(
            "gateway_payments_total",
            "pay_invoice results",
            ["federation_id", "result"],
            registry=registry,
        )
        self.pay_latency = Histogram(
            "gateway_pay_invoice_seconds",
            "pay_invoice latency",
            ["federation_id"],
            registry=registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )

    def call(
        self,
        service: str,
        method: str,
        body: dict,
        *,
        request_id: str,
        timeout: float | None = None,
        **kw: Any,
    ) -> Any:
        raw = self.bus.call(
            service,
            method,
            json.dumps(body).encode(),
            timeout=timeout or self.settings.bus_timeout_s,
            request_id=request_id,
            **kw,
        )
        return json.loads(raw)

    def federations(self, request_id: str) -> list[dict]:
        return self.call(C.GATEWAY_SERVICE, C.METHOD_LIST_FEDS, {}, request_id=request_id)[
            "federations"
        ]

    def federation(self, body: dict, request_id: str) -> str:
        fed = _hex32(body.get("federation_id"), "federation_id")
        if fed not in {
            f["federation_id"] for f in self.federations(request_id) if f["state"] != "left"
        }:
            raise NotFound(f"no federation {fed} is connected")
        return fed


class RequestId:
    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        rid = req.get_header(C.REQUEST_ID_HEADER) or uuid.uuid4().hex
        req.context.request_id = rid[:64]
        req.context.started = time.perf_counter()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        resp.set_header(C.REQUEST_ID_HEADER, getattr(req.context, "request_id", ""))


class Auth:
    """Admin routes need `Authorization: Bearer <password>`, checked against the bcrypt hash
    (a successful check is remembered per worker, so bcrypt's cost is paid once)."""

    def __init__(self, password_hash: str) -> None:
        self.hash = password_hash.encode()
        self._ok: set[bytes] = set()
        self._lock = threading.Lock()

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict
    ) -> None:
        if resource is None or getattr(resource, "public", False):
            return
        header = req.get_header("Authorization") or ""
        if not header.startswith("Bearer ") or not self.hash:
            raise Unauthorized("missing or wrong password")
        token = header[7:].encode()
        digest = hashlib.sha256(token).digest()
        with self._lock:
            if digest in self._ok:
                return
        try:
            ok = bcrypt.checkpw(token, self.hash)
        except ValueError:
            ok = False
        if not ok:
            raise Unauthorized("missing or wrong password")
        with self._lock:
            self._ok.add(digest)


class RateLimit:
    """A token bucket per client address, for public routes."""

    def __init__(self, rate_per_s: float, burst: float = 40) -> None:
        self.rate, self.burst = rate_per_s, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict
    ) -> None:
        if resource is None or not getattr(resource, "rate_limited", False):
            return
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(req.remote_addr or "", (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens < 1:
                raise RateLimited("too many requests")
            if len(self._buckets) > 10_000:  # forget full buckets of idle clients
                self._buckets = {
                    k: v for k, v in self._buckets.items() if now - v[1] < self.burst / self.rate
                }
            self._buckets[req.remote_addr or ""] = (tokens - 1, now)


def _error_handler(gw: Gateway) -> Callable[..., None]:
    def handle(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict) -> None:
        if isinstance(ex, falcon.HTTPError):
            resp.status, resp.media = ex.status, {"error": ex.title, "code": "http_error"}
            return
        if not isinstance(ex, GatewayError):
            log.exception("unhandled error")
            ex = InternalError(f"{type(ex).__name__}: {ex}")
        public = getattr(req.context, "public", False)
        resp.status = falcon.code_to_http_status(ex.http_status)
        resp.media = {"error": ex.public_message if public else ex.message, "code": ex.code}
        gw.requests.labels(req.path, str(ex.http_status)).inc()

    return handle


# --- resources --------------------------------------------------------------------------------
class PayInvoice:
    public = True
    rate_limited = True

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.public = True
        body = _body(req, self.gw.settings.max_body_bytes)
        fed = _hex32(body.get("federation_id"), "federation_id")
        cid = _hex32(body.get("contract_id"), "contract_id")
        start = time.perf_counter()
        with log_context(federation_id=fed, request_id=req.context.request_id):
            try:
                out = self.gw.call(
                    fed,
                    C.METHOD_ACTOR_PAY,
                    {"contract_id": cid},
                    request_id=req.context.request_id,
                    timeout=self.gw.settings.pay_timeout_s,
                    idempotent=False,
                    message_id=f"pay-{cid}",
                )
            except GatewayError as exc:
                self.gw.payments.labels(fed, exc.code).inc()
                raise
        self.gw.payments.labels(fed, "settled").inc()
        self.gw.pay_latency.labels(fed).observe(time.perf_counter() - start)
        resp.media = out["preimage"]  # as the 2023 API: the preimage as a hex JSON string


class Admin:
    """One class per route would repeat itself: the admin routes are a table (see create_app)."""

    def __init__(self, gw: Gateway, handler: Callable[[Gateway, dict, str], Any]) -> None:
        self.gw, self.handler = gw, handler

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = _body(req, self.gw.settings.max_body_bytes)
        with log_context(request_id=req.context.request_id):
            resp.media = self.handler(self.gw, body, req.context.request_id)

    on_get = on_post


def _info(gw: Gateway, body: dict, rid: str) -> dict:
    feds = []
    for f in gw.federations(rid):
        entry = {k: f[k] for k in ("federation_id", "name", "scid", "state")}
        if f["state"] == "running":
            with _suppress_bus():
                entry.update(gw.call(f["federation_id"], C.METHOD_ACTOR_INFO, {}, request_id=rid))
        feds.append(entry)
    listed = gw.call(C.GATEWAY_SERVICE, C.METHOD_LIST_FEDS, {}, request_id=rid)
    return {
        "version_hash": VERSION_HASH,
        "programs": listed.get("programs", []),
        "federations": feds,
        "gateway_state": "running" if listed["extension_connected"] else "connecting",
    }


class _suppress_bus:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:  # type: ignore[no-untyped-def]
        return exc_type is not None and issubclass(exc_type, GatewayError)


def _balance(gw: Gateway, body: dict, rid: str) -> dict:
    fed = gw.federation(body, rid)
    return {
        "federation_id": fed,
        "balance_msat": gw.call(fed, C.METHOD_ACTOR_INFO, {}, request_id=rid)["balance_msat"],
    }


def _balances(gw: Gateway, body: dict, rid: str) -> dict:
    out = {}
    for f in gw.federations(rid):
        if f["state"] == "running":
            out[f["federation_id"]] = gw.call(
                f["federation_id"], C.METHOD_ACTOR_INFO, {}, request_id=rid
            )["balance_msat"]
    return {"balances_msat": out, "total_msat": sum(out.values())}


def _fed_call(
    method: str, fields: tuple[str, ...] = (), timeout: float | None = None
) -> Callable[[Gateway, dict, str], Any]:
    def handler(gw: Gateway, body: dict, rid: str) -> Any:
        fed = gw.federation(body, rid)
        return gw.call(
            fed, method, {k: body[k] for k in fields if k in body}, request_id=rid, timeout=timeout
        )

    return handler


def _connect(gw: Gateway, body: dict, rid: str) -> dict:
    if not isinstance(body.get("invite_code"), str):
        raise InvalidInput("invite_code is required")
    return gw.call(
        C.GATEWAY_SERVICE,
        C.METHOD_CONNECT_FED,
        {"invite_code": body["invite_code"]},
        request_id=rid,
        timeout=120,
    )


def _leave(gw: Gateway, body: dict, rid: str) -> dict:
    fed = _hex32(body.get("federation_id"), "federation_id")
    return gw.call(
        C.GATEWAY_SERVICE,
        C.METHOD_LEAVE_FED,
        {"federation_id": fed, "force": bool(body.get("force"))},
        request_id=rid,
    )


def _set_fees(gw: Gateway, body: dict, rid: str) -> dict:
    fees = {k: body.get(k) for k in ("base_msat", "proportional_millionths")}
    for k, v in fees.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise InvalidInput(f"{k} must be a non-negative integer")
    feds = (
        [gw.federation(body, rid)]
        if body.get("federation_id") is not None
        else [f["federation_id"] for f in gw.federations(rid) if f["state"] == "running"]
    )
    return {
        fed: gw.call(fed, C.METHOD_ACTOR_SET_FEES, fees, request_id=rid)["fees"] for fed in feds
    }


def _config(gw: Gateway, body: dict, rid: str) -> dict:
    s = gw.settings
    return {
        "bind": s.bind,
        "bus_timeout_s": s.bus_timeout_s,
        "pay_timeout_s": s.pay_timeout_s,
        "max_body_bytes": s.max_body_bytes,
        "public_rate_per_s": s.public_rate_per_s,
        "version_hash": VERSION_HASH,
    }


def _log(gw: Gateway, body: dict, rid: str) -> list[dict]:
    limit = body.get("limit", 50)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
        raise InvalidInput("limit must be 1..1000")
    kinds = body.get("kinds")
    if kinds is not None and (
        not isinstance(kinds, list) or not all(k in ("outgoing", "incoming", "swap") for k in kinds)
    ):
        raise InvalidInput("kinds: a list of outgoing, incoming, swap")
    query = {
        "limit": limit,
        **{k: body[k] for k in ("since", "before") if isinstance(body.get(k), (int, float))},
    }
    feds = (
        [gw.federation(body, rid)]
        if body.get("federation_id") is not None
        else [f["federation_id"] for f in gw.federations(rid) if f["state"] == "running"]
    )
    rows = []
    for fed in feds:
        with _suppress_bus():
            rows += gw.call(fed, C.METHOD_ACTOR_PAYMENT_LOG, query, request_id=rid)["payments"]
    rows = [r for r in rows if kinds is None or r["direction"] in kinds]
    rows.sort(key=lambda r: -r["created"])
    return rows[:limit]


def _payment_log(gw: Gateway, body: dict, rid: str) -> dict:
    return {"payments": _log(gw, body, rid)}


def _summary(gw: Gateway, body: dict, rid: str) -> dict:
    def number(name: str, default: float) -> float:
        value = body.get(name, default)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1e11:
            raise InvalidInput(f"{name} must be a Unix time")
        return float(value)

    end = number("end", time.time())
    start = number("start", end - 86_400)
    if start > end:
        raise InvalidInput("start must not be after end")
    rows = [r for r in _log(gw, {"limit": 1000, "since": start}, rid) if r["created"] <= end]
    out: dict = {"start": start, "end": end, "directions": {}}
    for direction in ("outgoing", "incoming", "swap"):
        mine = [r for r in rows if r["direction"] == direction]
        settled = [r for r in mine if r["status"] == "settled"]
        lat = sorted(r["latency_s"] for r in settled if r["latency_s"] is not None)
        out["directions"][direction] = {
            "count": len(mine),
            "settled": len(settled),
            "failed": sum(r["status"] == "failed" for r in mine),
            "pending": sum(r["status"] == "pending" for r in mine),
            "volume_msat": sum(r["amount_msat"] for r in settled),
            "fees_earned_msat": sum(r["fee_earned_msat"] for r in settled),
            "latency_p50_s": lat[len(lat) // 2] if lat else None,
            "latency_p90_s": lat[min(len(lat) - 1, int(0.9 * len(lat)))] if lat else None,
        }
    out["fees_earned_msat"] = sum(d["fees_earned_msat"] for d in out["directions"].values())
    return out


ADMIN_ROUTES: dict[str, Callable[[Gateway, dict, str], Any]] = {
    C.PATH_PAYMENT_LOG: _payment_log,
    C.PATH_PAYMENT_SUMMARY: _summary,
    C.PATH_INFO: _info,
    C.PATH_BALANCE: _balance,
    C.PATH_BALANCES: _balances,
    C.PATH_ADDRESS: _fed_call(C.METHOD_ACTOR_ADDRESS),
    C.PATH_DEPOSIT: _fed_call(C.METHOD_ACTOR_DEPOSIT, ("operation_id", "timeout_s"), timeout=60),
    C.PATH_WITHDRAW: lambda gw, body, rid: _fed_call(
        C.METHOD_ACTOR_WITHDRAW, ("amount_sat", "address"), timeout=90
    )(gw, {**body, "amount_sat": body.get("amount", body.get("amount_sat"))}, rid),
    C.PATH_CONNECT_FED: _connect,
    C.PATH_LEAVE_FED: _leave,
    C.PATH_SET_FEES: _set_fees,
    C.PATH_BACKUP: _fed_call(C.METHOD_ACTOR_BACKUP, timeout=60),
    C.PATH_RESTORE: _fed_call(C.METHOD_ACTOR_RESTORE, timeout=120),
    C.PATH_CONFIG: _config,
}


class Health:
    public = True

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            listed = self.gw.call(
                C.GATEWAY_SERVICE,
                C.METHOD_LIST_FEDS,
                {},
                request_id=req.context.request_id,
                timeout=3,
            )
        except GatewayError:
            resp.status, resp.media = falcon.HTTP_503, {"status": "unavailable", "router": False}
            return
        feds = {f["federation_id"]: f["state"] for f in listed["federations"]}
        ready = listed["extension_connected"] and all(s == "running" for s in feds.values())
        resp.status = falcon.HTTP_200 if ready else falcon.HTTP_503
        resp.media = {
            "status": "ready" if ready else "degraded",
            "router": True,
            "extension": listed["extension_connected"],
            "federations": feds,
        }


class Metrics:
    public = True

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = generate_latest(self.registry)


class OpenApi:
    public = True

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = openapi_document(VERSION_HASH)


class CountRequests:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        if req_succeeded:
            self.gw.requests.labels(
                req.path,
                resp.status.split()[0] if isinstance(resp.status, str) else str(resp.status),
            ).inc()


def create_app(settings: ApiSettings, bus: BusCaller) -> falcon.App:
    registry = CollectorRegistry()
    gw = Gateway(settings, bus, registry)
    app = falcon.App(
        middleware=[
            RequestId(),
            Auth(settings.password_hash.get_secret_value()),
            RateLimit(settings.public_rate_per_s),
            CountRequests(gw),
        ]
    )
    app.add_error_handler(Exception, _error_handler(gw))
    app.add_route(C.PATH_PAY_INVOICE, PayInvoice(gw))
    for path, handler in ADMIN_ROUTES.items():
        app.add_route(path, Admin(gw, handler))
    app.add_route(C.PATH_HEALTH, Health(gw))
    app.add_route(C.PATH_METRICS, Metrics(registry))
    app.add_route(C.PATH_OPENAPI, OpenApi())
    add_dashboard(app, gw, ADMIN_ROUTES, settings.password_hash.get_secret_value())
    return app


def get_app() -> falcon.App:
    """For gunicorn: `services.api.app:get_app()`."""
    settings = ApiSettings()
    return create_app(settings, BusBridge(ipc_endpoint(settings.run_dir, C.ROUTER_ENDPOINT_NAME)))
