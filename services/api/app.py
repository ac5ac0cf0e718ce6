"""The HTTP front: a Falcon (WSGI) app built by `create_app(settings, bus)`; `get_app()` is what
gunicorn loads (bus connection made lazily in each worker, after fork).

Responders are thin: validate the JSON body, make one bus request, map the reply. Errors come
from gwcore.errors' one table: `{error, code}` with its HTTP status; public routes
(/pay_invoice) show the redacted public message, admin routes the full one. Every response
carries the request id (X-Request-Id, taken from the request or made), which travels in the bus
envelope into the router and the actors' logs.
"""

from __future__ import annotations

import hmac
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable
from secrets import token_hex
from typing import Any

import falcon
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bus import ipc_endpoint
from bus.endpoints import ensure_run_dir
from gwcore import constants as C
from gwcore.errors import (
    GatewayError,
    InternalError,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
)
from gwcore.logging import log_context
from gwcore.secretfile import secret_file
from gwcore.values import hex32
from gwcore.version import version_hash

from .admin import ADMIN_ROUTES
from .auth import PasswordCheck
from .backups import add_data_backup
from .bridge import BusBridge
from .clients import ClientAddress, client_of
from .dashboard import Dashboard, add_dashboard
from .ecash import ReceiveEcash, receive_ecash
from .gateway import BusCaller, Gateway, PublicRoute, read_body
from .limits import LIMITS_FILE, SharedLimits
from .lnv2 import add_lnv2_routes
from .metrics import FrontMetrics, scrape
from .openapi import body_fields, openapi_document
from .sessions import RevokedSessions, Sessions
from .settings import ApiSettings

log = logging.getLogger(__name__)


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
    """Admin routes need `Authorization: Bearer <password>` (see auth.PasswordCheck)."""

    def __init__(self, passwords: PasswordCheck) -> None:
        self.passwords = passwords

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict
    ) -> None:
        if resource is None or getattr(resource, "public", False):
            return
        header = req.get_header("Authorization") or ""
        if not header.startswith("Bearer ") or not self.passwords.hash:
            raise Unauthorized("missing or wrong password")
        if not self.passwords.verify(header[7:], client_of(req)):
            raise Unauthorized("missing or wrong password")


class RateLimit:
    """A token bucket per client (all workers together: limits.SharedLimits), for the public
    routes; an empty bucket is a 429 with Retry-After."""

    def __init__(self, limits: SharedLimits, rate_per_s: float, burst: float = 40) -> None:
        self.limits, self.rate, self.burst = limits, rate_per_s, burst

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict
    ) -> None:
        if resource is None or not getattr(resource, "rate_limited", False):
            return
        try:
            wait = self.limits.take(client_of(req), self.rate, self.burst)
        except sqlite3.Error:  # never refuse payments because the counter file failed
            log.exception("the rate limit's counts could not be read: request let through")
            return
        if wait:
            raise RateLimited("too many requests", retry_after_s=wait)


# Falcon's own answers (no such route, wrong method, …) in the words of gwcore.errors
HTTP_CODES = {
    400: "invalid_input",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "invalid_input",
}


def _error_handler(gw: Gateway, ui: Dashboard | None = None) -> Callable[..., None]:
    """Errors as JSON `{error, code}` (public routes redacted); under /ui as Mintgate pages."""

    def handle(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict) -> None:
        dashboard = ui is not None and req.path.startswith("/ui/")
        if isinstance(ex, RateLimited):
            resp.set_header("Retry-After", str(ex.retry_after_s))
        if isinstance(ex, falcon.HTTPError):
            if dashboard:
                assert ui is not None
                ui.render_error(req, resp, ex.status_code, ex.title)
                return
            code = HTTP_CODES.get(ex.status_code, "http_error")
            resp.status, resp.media = ex.status, {"error": ex.title, "code": code}
            return
        if not isinstance(ex, GatewayError):
            log.exception("unhandled error")
            ex = InternalError(f"{type(ex).__name__}: {ex}")
        if dashboard:  # an operator's page: full detail, as the admin API gives
            assert ui is not None
            ui.render_error(req, resp, ex.http_status, ex.message)
            return
        public = getattr(req.context, "public", False)
        resp.status = falcon.code_to_http_status(ex.http_status)
        resp.media = {"error": ex.public_message if public else ex.message, "code": ex.code}

    return handle


# --- resources --------------------------------------------------------------------------------
class PayInvoice(PublicRoute):
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.public = True
        body = read_body(req, self.gw.settings.max_body_bytes)
        fed = hex32(body.get("federation_id"), "federation_id")
        cid = hex32(body.get("contract_id"), "contract_id")
        if not self.gw.serves(fed, req.context.request_id):
            raise NotFound(f"this gateway does not serve federation {fed}")
        start = time.perf_counter()
        with log_context(federation_id=fed, request_id=req.context.request_id):
            try:
                out = self.gw.call(
                    fed,
                    C.METHOD_ACTOR_PAY,
                    # LNv1's whole PayInvoicePayload: what to pay (the contract names only its
                    # hash); the actor checks the federation id the payload names too
                    {"federation_id": fed, "contract_id": cid}
                    | {k: body[k] for k in ("payment_data", "preimage_auth") if k in body},
                    request_id=req.context.request_id,
                    timeout=self.gw.settings.pay_timeout_s,
                    idempotent=False,
                    # one id per (federation, contract): a repeat joins the first attempt
                    message_id=f"pay-{fed[:32]}-{cid}",
                )
            except GatewayError as exc:
                self.gw.metrics.pay_results.labels(exc.code).inc()
                raise
        self.gw.metrics.pay_results.labels("settled").inc()
        self.gw.metrics.pay_latency.observe(time.perf_counter() - start)
        resp.media = out["preimage"]  # as the 2023 API: the preimage as a hex JSON string


class GatewayId(PublicRoute):
    """LNv1 clients ask `GET /id` of a gateway before funding a contract for it (fedimint-ln-
    client's verify_gateway_availability: any JSON will do): our node's public key, as
    gatewayd answers its id."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.public = True
        node = self.gw.call(
            C.GATEWAY_SERVICE, C.METHOD_LIGHTNING, {}, request_id=req.context.request_id, timeout=8
        )["node"]
        resp.media = node["pub_key"]


class Admin:
    """One class per route would repeat itself: the admin routes are a table (see create_app)."""

    def __init__(
        self,
        gw: Gateway,
        handler: Callable[[Gateway, dict, str], Any],
        fields: frozenset[str] = frozenset(),
    ) -> None:
        self.gw, self.handler, self.fields = gw, handler, fields

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_body(req, self.gw.settings.max_body_bytes)
        unknown = sorted(set(body) - self.fields)
        if unknown:  # strict: a misspelt field must not be silently ignored
            allowed = ", ".join(sorted(self.fields)) or "none"
            raise InvalidInput(f"unknown field(s) {', '.join(unknown)[:200]} (allowed: {allowed})")
        with log_context(request_id=req.context.request_id):
            resp.media = self.handler(self.gw, body, req.context.request_id)

    on_get = on_post


class Live:
    """Liveness: the front answers. Nothing else is asked (a router restart must not get the
    front restarted too)."""

    public = True

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "live"}


class Health:
    """Readiness: 200 when the router answers, the extension is connected and every connected
    federation's actor answers on the bus; 503 with what is missing otherwise."""

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
        # a federation is served when its actor answers the bus now, not when the registry
        # last saw it running (a router restarted beside a lost run folder would say so)
        feds = {
            f["federation_id"]: "actor not answering"
            if f["state"] == "running" and not f.get("actor_answers")
            else f["state"]
            for f in listed["federations"]
        }
        ready = listed["extension_connected"] and all(s == "running" for s in feds.values())
        resp.status = falcon.HTTP_200 if ready else falcon.HTTP_503
        resp.media = {
            "status": "ready" if ready else "degraded",
            "router": True,
            "extension": listed["extension_connected"],
            "federations": feds,
        }


class Metrics:
    """Prometheus scrapes with `Authorization: Bearer <metrics token>` (GATEWAY_API_METRICS_TOKEN)
    or the admin password: the figures include balances, volumes and fees."""

    public = True  # its own check, below

    def __init__(self, gw: Gateway, passwords: PasswordCheck) -> None:
        self.gw, self.passwords = gw, passwords
        self.token = gw.settings.metrics_token.get_secret_value().encode()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        header = req.get_header("Authorization") or ""
        given = header[7:].encode() if header.startswith("Bearer ") else b""
        if not given or not (
            (self.token and hmac.compare_digest(given, self.token))
            or (len(given) <= C.MAX_PASSWORD_BYTES and self.passwords.verify(given, client_of(req)))
        ):
            raise Unauthorized("/metrics needs the metrics token or the admin password")
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = scrape(self.gw, req.context.request_id)


class OpenApi:
    public = True

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = openapi_document(version_hash())


def _route(req: falcon.Request) -> str:
    """The matched route's template (bounded label values), not the raw path."""
    return req.uri_template or "unmatched"


class CountRequests:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        # errors too: the error handlers have set the status by now
        status = resp.status.split()[0] if isinstance(resp.status, str) else str(resp.status)
        self.gw.metrics.requests.labels(_route(req), status).inc()


def create_app(settings: ApiSettings, bus: BusCaller) -> falcon.App:
    gw = Gateway(settings, bus, FrontMetrics(CollectorRegistry()))
    # the counts every worker shares (rate limit, wrong passwords), in the run directory
    limits = SharedLimits(ensure_run_dir(settings.run_dir) / LIMITS_FILE)
    passwords = PasswordCheck(
        settings.password_hash.get_secret_value(),
        settings.password_max_failures,
        settings.password_window_s,
        limits,
    )
    app = falcon.App(
        middleware=[
            RequestId(),
            ClientAddress(settings.trusted_proxies),
            Auth(passwords),
            RateLimit(limits, settings.public_rate_per_s, settings.public_burst),
            CountRequests(gw),
        ]
    )
    ui = add_dashboard(
        app,
        gw,
        {**ADMIN_ROUTES, C.PATH_RECEIVE_ECASH: receive_ecash},
        _sessions(settings, passwords),
        settings.secure_cookies,
    )
    app.add_error_handler(Exception, _error_handler(gw, ui))
    app.add_error_handler(falcon.HTTPError, _error_handler(gw, ui))  # the same {error, code} shape
    app.add_route(C.PATH_PAY_INVOICE, PayInvoice(gw))
    app.add_route(C.PATH_GATEWAY_ID, GatewayId(gw))
    app.add_route(C.PATH_RECEIVE_ECASH, ReceiveEcash(gw))
    add_lnv2_routes(app, gw)
    fields = body_fields(openapi_document(version_hash()))
    for path, handler in ADMIN_ROUTES.items():
        app.add_route(path, Admin(gw, handler, fields.get(path, frozenset())))
    add_data_backup(app, gw)
    app.add_route(C.PATH_HEALTH, Health(gw))
    app.add_route(C.PATH_HEALTH_LIVE, Live())
    app.add_route(C.PATH_METRICS, Metrics(gw, passwords))
    app.add_route(C.PATH_OPENAPI, OpenApi())
    return app


def _sessions(settings: ApiSettings, passwords: PasswordCheck) -> Sessions:
    """Dashboard sessions: signed with the configured secret, or one kept in the run directory
    (the same for every worker); logouts recorded there for every worker."""
    run_dir = ensure_run_dir(settings.run_dir)
    secret = settings.session_secret.get_secret_value()
    if not secret:
        # no password: no session can be made at all, any key will do
        secret = secret_file(run_dir / "session-secret", 32) if passwords.hash else token_hex(32)
    return Sessions(passwords, secret, RevokedSessions(run_dir / "dashboard-sessions.sqlite"))


def get_app() -> falcon.App:
    """For gunicorn: `services.api.app:get_app()`."""
    settings = ApiSettings()
    return create_app(settings, BusBridge(ipc_endpoint(settings.run_dir, C.ROUTER_ENDPOINT_NAME)))
