"""The guardian's HTTP+JSON API (Falcon, WSGI, served by gunicorn). Thin responders: parse and
validate the request, call the engine, map `FedError`s to `{error, code}` with their status.
Documented in docs/federation-api.md."""

from __future__ import annotations

import json
from typing import Any

import falcon

from .engine import Federation, FedError


def _float(req: falcon.Request, name: str, default: float, maximum: float = 60.0) -> float:
    raw = req.get_param(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise FedError("invalid_input", f"{name} must be a number") from None
    if not 0 <= value <= maximum:
        raise FedError("invalid_input", f"{name} must be between 0 and {maximum}")
    return value


def _media(req: falcon.Request) -> Any:
    """The body as JSON, whatever the Content-Type says (strict: no NaN, UTF-8)."""
    raw = req.bounded_stream.read()
    if not raw:
        raise FedError("invalid_json", "a JSON body is required")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError):
        raise FedError("invalid_json", "body is not valid JSON") from None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


class LimitBody:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.content_length is not None and req.content_length > self.max_bytes:
            raise FedError("too_large", f"body over {self.max_bytes} bytes", 413)


def _handle_fed_error(
    req: falcon.Request, resp: falcon.Response, ex: FedError, params: dict
) -> None:
    resp.status = falcon.code_to_http_status(ex.status)
    resp.media = {"error": ex.message, "code": ex.code}


def _handle_http_error(
    req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: dict
) -> None:
    resp.status = ex.status
    resp.media = {
        "error": ex.title + (f": {ex.description}" if ex.description else ""),
        "code": "http_error",
    }


class Config:
    def __init__(self, fed: Federation) -> None:
        self.fed = fed

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.fed.config


class Transactions:
    def __init__(self, fed: Federation) -> None:
        self.fed = fed

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.fed.submit(_media(req))

    def on_get_one(self, req: falcon.Request, resp: falcon.Response, txid: str) -> None:
        wait = _float(req, "wait", 0.0)
        found = self.fed.wait_until(lambda: self.fed.transaction(txid), wait)
        if found is None:
            raise FedError("unknown_transaction", "no such transaction", 404)
        resp.media = found


class BlockHeight:
    def __init__(self, fed: Federation) -> None:
        self.fed = fed

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        target = req.get_param_as_int("wait_for", min_value=0)
        timeout = _float(req, "timeout", 30.0)
        if target is None:
            resp.media = {"height": self.fed.height()}
            return
        h = self.fed.wait_until(
            lambda: (lambda x: x if x >= target else None)(self.fed.height()), timeout
        )
        resp.media = {"height": h if h is not None else self.fed.height(), "reached": h is not None}


class Lightning:
    def __init__(self, fed: Federation) -> None:
        self.fed = fed

    def on_get_contract(self, req: falcon.Request, resp: falcon.Response, cid: str) -> None:
        resp.media = self.fed.contract(cid)

    def on_get_offer(self, req: falcon.Request, resp: falcon.Response, payment_hash: str) -> None:
        found = self.fed.wait_until(lambda: self.fed.offer(payment_hash), _float(req, "wait", 0.0))
        if found is None:
            raise FedError("unknown_offer", "no offer for this payment hash", 404)
        resp.media = found

    def on_get_gateways(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.fed.gateways()

    def on_post_gateways(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.fed.register_gateway(_media(req))

    def on_post_remove(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        resp.media = self.fed.remove_gateway(key, _media(req))


class Wallet:
    def __init__(self, fed: Federation) -> None:
        self.fed = fed

    def on_post_address(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = _media(req)
        resp.media = self.fed.pegin_address(
            body.get("user_key") if isinstance(body, dict) else None
        )

    def on_get_deposits(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.fed.deposits(req.get_param("address"))

    def on_get_fees(self, req: falcon.Request, resp: falcon.Response) -> None:
        amount = req.get_param_as_int("amount_sat", required=True)
        resp.media = self.fed.pegout_fee(req.get_param("address"), amount)


class Backup:
    def __init__(self, fed: Federation) -> None:
        self.fed = fed

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.fed.put_backup(_media(req))

    def on_get_one(self, req: falcon.Request, resp: falcon.Response, user_key: str) -> None:
        resp.media = self.fed.get_backup(user_key)


class Misc:
    def __init__(self, fed: Federation) -> None:
        self.fed = fed

    def on_get_audit(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.fed.audit()

    def on_get_health(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {
            "ok": True,
            "federation_id": self.fed.federation_id,
            "height": self.fed.height(),
        }


def create_api(fed: Federation, *, max_body_bytes: int = 1 << 20) -> falcon.App:
    app = falcon.App(middleware=[LimitBody(max_body_bytes)])
    app.add_error_handler(falcon.HTTPError, _handle_http_error)
    app.add_error_handler(FedError, _handle_fed_error)
    app.add_route("/v1/config", Config(fed))
    tx = Transactions(fed)
    app.add_route("/v1/transactions", tx)
    app.add_route("/v1/transactions/{txid}", tx, suffix="one")
    app.add_route("/v1/block_height", BlockHeight(fed))
    ln = Lightning(fed)
    app.add_route("/v1/ln/contracts/{cid}", ln, suffix="contract")
    app.add_route("/v1/ln/offers/{payment_hash}", ln, suffix="offer")
    app.add_route("/v1/ln/gateways", ln, suffix="gateways")
    app.add_route("/v1/ln/gateways/{key}/remove", ln, suffix="remove")
    w = Wallet(fed)
    app.add_route("/v1/wallet/peg_in_address", w, suffix="address")
    app.add_route("/v1/wallet/deposits", w, suffix="deposits")
    app.add_route("/v1/wallet/peg_out_fees", w, suffix="fees")
    b = Backup(fed)
    app.add_route("/v1/backup", b)
    app.add_route("/v1/backup/{user_key}", b, suffix="one")
    m = Misc(fed)
    app.add_route("/v1/audit", m, suffix="audit")
    app.add_route("/health", m, suffix="health")
    return app
