"""What every responder shares: the `Gateway` (settings, bus, metrics), body parsing and the
small validators. The admin handlers (admin.py), the dashboard and app.py build on it."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import falcon

from gwcore import constants as C
from gwcore.errors import InvalidInput, NotFound, TooLarge
from gwcore.values import hex32

from .metrics import FrontMetrics
from .settings import ApiSettings

SERVED_CACHE_S = 5.0


class BusCaller(Protocol):
    def call(
        self, service: str, method: str, payload: bytes, *, timeout: float, **kwargs: Any
    ) -> bytes: ...


def read_body(req: falcon.Request, max_bytes: int) -> dict:
    body = read_json(req, max_bytes)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidInput("body must be a JSON object")
    return body


def read_json(req: falcon.Request, max_bytes: int) -> object:
    """Any JSON value (None for an empty body), bounded in size and depth."""
    if req.content_length and req.content_length > max_bytes:
        raise TooLarge(f"body over {max_bytes} bytes")
    # a chunked body has no Content-Length (Falcon's bounded stream would read nothing); the
    # server marks its end (wsgi.input_terminated), and our worker has it whole and bounded
    chunked = req.content_length is None and req.env.get("wsgi.input_terminated")
    raw = (req.stream if chunked else req.bounded_stream).read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise TooLarge(f"body over {max_bytes} bytes")
    if not raw:
        return None
    try:
        return json.loads(raw, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("body is not valid JSON") from None
    except RecursionError:  # "[[[[…" thousands deep
        raise InvalidInput("body is nested too deeply") from None


class PublicRoute:
    """A route federation clients call: no auth, rate limited per client, errors redacted
    (each responder sets `req.context.public`) — except the caller's own bad input, which
    `said_in_full` answers with its reason (nothing secret in it)."""

    public = True
    rate_limited = True

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    @staticmethod
    @contextmanager
    def said_in_full(resp: falcon.Response) -> Iterator[None]:
        try:
            yield
        except InvalidInput as exc:
            resp.status = falcon.code_to_http_status(exc.spec().http_status)
            resp.media = {"error": exc.message, "code": exc.code}


# A long non-idempotent request (a payment, a receive) is sent again this often while it waits:
# one lost with a restarted router is back within it, and the actor joins a repeat that reaches
# it while the first runs (same message id), or replays its stored answer.
RESEND_S = 10.0


class Gateway:
    """Everything the responders need: the bus, the settings, metrics."""

    def __init__(self, settings: ApiSettings, bus: BusCaller, metrics: FrontMetrics) -> None:
        self.settings, self.bus, self.metrics = settings, bus, metrics
        self._served: tuple[float, frozenset[str]] = (0.0, frozenset())
        self._served_lock = threading.Lock()

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
        timeout = timeout or self.settings.bus_timeout_s
        if kw.get("idempotent") is False and timeout > 3 * RESEND_S and "retries" not in kw:
            kw.update(attempt_timeout=RESEND_S, retries=math.ceil(timeout / RESEND_S))
        raw = self.bus.call(
            service,
            method,
            json.dumps(body).encode(),
            timeout=timeout,
            request_id=request_id,
            **kw,
        )
        return json.loads(raw)

    def federations(self, request_id: str) -> list[dict]:
        return self.call(C.GATEWAY_SERVICE, C.METHOD_LIST_FEDS, {}, request_id=request_id)[
            "federations"
        ]

    def serves(self, fed: str, request_id: str) -> bool:
        """Is `fed` connected (not left)? From a list kept for SERVED_CACHE_S, asked again at
        once when `fed` is not in it (so a federation connected a moment ago is served). The
        public route asks this first, so that a made-up federation id is a quick 404 rather
        than a request the bus keeps queued, holding a server thread, until its deadline."""
        at, known = self._served
        if fed in known and time.monotonic() - at < SERVED_CACHE_S:
            return True
        feds = frozenset(
            f["federation_id"] for f in self.federations(request_id) if f["state"] != "left"
        )
        with self._served_lock:
            self._served = (time.monotonic(), feds)
        return fed in feds

    def federation(self, body: dict, request_id: str) -> str:
        fed = hex32(body.get("federation_id"), "federation_id")
        if fed not in {
            f["federation_id"] for f in self.federations(request_id) if f["state"] != "left"
        }:
            raise NotFound(f"no federation {fed} is connected")
        return fed
