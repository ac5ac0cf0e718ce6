"""`POST /receive_ecash` (public, rate limited), as fedimint's gatewayd has it: someone gives the
gateway e-cash (`{notes, federation_id?, wait?}` -> `{amount, amount_msat, federation_id,
operation_id}`); the notes are reissued into the gateway's wallet of their federation (named by
the notes themselves), and the same notes again credit nothing and answer the same.

Every kind of notes is read here only to find their federation (Fedimint's mintv2 `fedimint…`
strings and mint v1 `OOBNotes`); the actor checks them in full. Mint v1 notes without an invite name
only the first 4 bytes of their federation's id, as gatewayd reads them: the served federation with
that prefix takes them."""

from __future__ import annotations

import hashlib

import falcon

from fmclient.ecash import EcashError
from fmclient.ecash_dialects import read_ecash
from gwcore import constants as C
from gwcore.errors import InvalidInput, NotFound
from gwcore.logging import log_context
from gwcore.values import hex32

from .gateway import Gateway, PublicRoute, read_body

MAX_NOTES_CHARS = 1_000_000


def notes_federation(notes: str) -> str:
    """The federation id the notes name (for mint v1 notes without an invite, only its first 8
    hex digits); InvalidInput if they are no e-cash string."""
    try:
        _, received = read_ecash(notes)
    except EcashError as exc:
        raise InvalidInput(f"invalid notes: {exc}") from None
    return str(received.federation)


def _served_with_prefix(gw: Gateway, prefix: str, rid: str) -> str:
    """The one served federation whose id starts with `prefix`, else NotFound."""
    feds = [
        f["federation_id"]
        for f in gw.federations(rid)
        if f["state"] != "left" and f["federation_id"].startswith(prefix)
    ]
    if len(feds) != 1:
        raise NotFound(f"this gateway does not serve a federation {prefix}…")
    return str(feds[0])


class ReceiveEcash(PublicRoute):
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.public = True
        with self.said_in_full(resp):  # the giver's own mistake: said in full
            resp.media = self._receive(req)

    def _receive(self, req: falcon.Request) -> dict:
        body = read_body(req, self.gw.settings.max_body_bytes)
        return receive_ecash(self.gw, body, req.context.request_id)


def receive_ecash(gw: Gateway, body: dict, rid: str) -> dict:
    """The route's work (the dashboard calls it too): check, find the federation, reissue."""
    unknown = sorted(set(body) - {"notes", "federation_id", "wait"})
    if unknown:
        raise InvalidInput(f"unknown field(s) {', '.join(unknown)[:200]}")
    notes = body.get("notes")
    if not isinstance(notes, str) or not notes.strip() or len(notes) > MAX_NOTES_CHARS:
        raise InvalidInput("notes must be an e-cash string")
    if not isinstance(body.get("wait", True), bool):
        raise InvalidInput("wait must be true or false")
    notes = notes.strip()
    fed = notes_federation(notes)
    if len(fed) < 64:
        fed = _served_with_prefix(gw, fed, rid)
    if body.get("federation_id") is not None:
        given = hex32(body["federation_id"], "federation_id")
        if given != fed:
            raise InvalidInput(f"the notes are of federation {fed}, not {given}")
    if not gw.serves(fed, rid):
        raise NotFound(f"this gateway does not serve federation {fed}")
    digest = hashlib.sha256(notes.encode()).hexdigest()
    with log_context(federation_id=fed, request_id=rid):
        out = gw.call(
            fed,
            C.METHOD_ACTOR_RECEIVE_ECASH,
            {"notes": notes},
            request_id=rid,
            timeout=gw.settings.pay_timeout_s,
            idempotent=False,
            # the notes name the request: a repeat joins or replays the first
            message_id=f"ecash-{fed[:16]}-{digest[:40]}",
        )
    return {
        "amount": out["amount_msat"],  # gatewayd's field: msat
        "amount_msat": out["amount_msat"],
        "federation_id": fed,
        "operation_id": out["operation_id"],
    }
