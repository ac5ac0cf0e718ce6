"""The LNv2 gateway API that fedimint clients call (public, no auth, rate limited), served at
`/` and at `/v1/` as fedimint's gatewayd serves it (clients join the route onto the gateway's
URL, dropping its path). Reference: ../shared/reference/fedimint-0.13.md §6.2.

    POST /routing_info   body: a bare federation id (hex JSON string) -> RoutingInfo, or null
                         for a federation this gateway does not serve (or not by LNv2)
    POST /send_payment   SendPaymentPayload -> {"Ok": preimage bytes} | {"Err": forfeit sig};
                         one bus request per contract: a repeat joins or replays the first
    POST /create_bolt11_invoice  CreateBolt11InvoicePayload -> the BOLT11 (JSON string) of our
                         node's hold invoice for the incoming contract's payment hash
    GET  /verify/{payment_hash}[?wait]  LUD-21: {status: "OK", settled, preimage} (wait: up to
                         30 s for the payment to end), {status: "ERROR", reason} otherwise
"""

from __future__ import annotations

import time

import falcon

from fmclient.lnv2 import IncomingContract, Lnv2Error, OutgoingContract
from gwcore import constants as C
from gwcore.errors import GatewayError, InvalidInput, NotFound
from gwcore.logging import log_context
from gwcore.values import hex32

from .gateway import Gateway, PublicRoute, read_body, read_json


class RoutingInfo(PublicRoute):
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.public = True
        with self.said_in_full(resp):
            self._routing_info(req, resp)

    def _routing_info(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json(req, self.gw.settings.max_body_bytes)
        if not isinstance(body, str):
            raise InvalidInput("the body is a federation id: a JSON string of 64 hex digits")
        fed = hex32(body, "federation_id")
        rid = req.context.request_id
        if not self.gw.serves(fed, rid):
            _null(resp)
            return
        with log_context(federation_id=fed, request_id=rid):
            try:
                resp.media = self.gw.call(fed, C.METHOD_ACTOR_ROUTING_INFO, {}, request_id=rid)
            except GatewayError as exc:
                if exc.code != "not_found":  # a federation without LNv2
                    raise
                _null(resp)


def _null(resp: falcon.Response) -> None:
    """JSON `null` (Falcon sends no body at all for media None)."""
    resp.content_type = falcon.MEDIA_JSON
    resp.text = "null"


class SendPayment(PublicRoute):
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.public = True
        with self.said_in_full(resp):  # a contract we refuse: the client learns why
            self._send(req, resp)

    def _send(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_body(req, self.gw.settings.max_body_bytes)
        fed = hex32(body.get("federation_id"), "federation_id")
        try:
            cid = OutgoingContract.from_json(body.get("contract")).contract_id.hex()
        except Lnv2Error as exc:
            raise InvalidInput(f"contract: {exc}") from None
        rid = req.context.request_id
        if not self.gw.serves(fed, rid):
            raise NotFound(f"this gateway does not serve federation {fed}")
        with log_context(federation_id=fed, request_id=rid):
            resp.media = self.gw.call(
                fed,
                C.METHOD_ACTOR_LNV2_SEND,
                body,
                request_id=rid,
                timeout=self.gw.settings.pay_timeout_s,
                idempotent=False,
                message_id=f"lnv2-send-{fed[:16]}-{cid}",
            )


class CreateBolt11Invoice(PublicRoute):
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.public = True
        with self.said_in_full(resp):  # a contract we refuse: the client learns why
            self._create(req, resp)

    def _create(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_body(req, self.gw.settings.max_body_bytes)
        fed = hex32(body.get("federation_id"), "federation_id")
        try:
            IncomingContract.from_json(body.get("contract"))
        except Lnv2Error as exc:
            raise InvalidInput(f"contract: {exc}") from None
        rid = req.context.request_id
        if not self.gw.serves(fed, rid):
            raise InvalidInput(f"Federation {fed} does not exist")
        with log_context(federation_id=fed, request_id=rid):
            resp.media = self.gw.call(fed, C.METHOD_ACTOR_LNV2_INVOICE, body, request_id=rid)


class Verify(PublicRoute):
    """LUD-21 verify of an LNv2 receive, as gatewayd answers it (LnurlResponse: the answer, or
    {status: ERROR, reason})."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, payment_hash: str) -> None:
        req.context.public = True
        rid = req.context.request_id
        try:
            ph = hex32(payment_hash, "payment_hash")
            wait_until = time.monotonic() + (30 if "wait" in req.params else 0)
            while True:
                answer = self._ask(ph, rid)
                if answer["settled"] or time.monotonic() >= wait_until:
                    break
                time.sleep(0.5)
            resp.media = answer
        except GatewayError as exc:
            if exc.code != "invalid_input":
                raise
            resp.media = {"status": "ERROR", "reason": exc.message}

    def _ask(self, ph: str, rid: str) -> dict:
        feds = [
            f["federation_id"]
            for f in self.gw.federations(rid)
            if f["state"] != "left" and f.get("kind") == "fedimint"
        ]
        for fed in feds:
            try:
                return dict(
                    self.gw.call(
                        fed, C.METHOD_ACTOR_LNV2_VERIFY, {"payment_hash": ph}, request_id=rid
                    )
                )
            except NotFound:  # not this federation's
                continue
        raise InvalidInput("Unknown payment hash")


def add_lnv2_routes(app: falcon.App, gw: Gateway) -> None:
    routing, send = RoutingInfo(gw), SendPayment(gw)
    invoice, verify = CreateBolt11Invoice(gw), Verify(gw)
    for prefix in ("", "/v1"):
        app.add_route(prefix + C.PATH_ROUTING_INFO, routing)
        app.add_route(prefix + C.PATH_SEND_PAYMENT, send)
        app.add_route(prefix + C.PATH_CREATE_BOLT11_INVOICE, invoice)
        app.add_route(prefix + C.PATH_VERIFY, verify)
