"""The admin routes as a table: path -> handler(gateway, body, request id) -> JSON-able.

Each handler validates its body, makes its bus requests and shapes the reply; errors are
GatewayErrors mapped to HTTP by app.py's error handler (full messages: admin routes are
authenticated)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from gwcore import constants as C
from gwcore.bitcoin_address import AddressError, parse_address
from gwcore.errors import GatewayError, InvalidAddress, InvalidInput, ServiceUnavailable
from gwcore.invites import parse_invite
from gwcore.values import fees as checked_fees
from gwcore.values import flag, hex32, is_hex
from gwcore.version import version_hash

from .gateway import Gateway
from .reports import payment_log, payment_summary

IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{8,64}")


def _info(gw: Gateway, body: dict, rid: str) -> dict:
    feds = []
    for f in gw.federations(rid):
        entry = {k: f[k] for k in ("federation_id", "name", "scid", "state")}
        if f["state"] == "running":
            with _suppress_bus():
                entry.update(gw.call(f["federation_id"], C.METHOD_ACTOR_INFO, {}, request_id=rid))
        feds.append(entry)
    listed = gw.call(C.GATEWAY_SERVICE, C.METHOD_LIST_FEDS, {}, request_id=rid)
    node = None
    with _suppress_bus():  # the extension down: the rest of /info still answers
        node = gw.call(C.GATEWAY_SERVICE, C.METHOD_LIGHTNING, {}, request_id=rid, timeout=8)["node"]
    return {
        "version_hash": version_hash(),
        "node": node,
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
    result: dict = {"balances_msat": out, "total_msat": sum(out.values())}
    with _suppress_bus():  # Lightning side as the original gateway's get_balances has it
        ln = gw.call(C.GATEWAY_SERVICE, C.METHOD_LIGHTNING, {}, request_id=rid, timeout=8)
        result.update({k: v for k, v in ln["balances"].items() if k != "channels"})
    return result


def _lightning(gw: Gateway, body: dict, rid: str) -> dict:
    """The node: identity, sync, on-chain funds and every channel's liquidity."""
    return gw.call(C.GATEWAY_SERVICE, C.METHOD_LIGHTNING, {}, request_id=rid, timeout=8)


def _fed_call(
    method: str, fields: tuple[str, ...] = (), timeout: float | None = None
) -> Callable[[Gateway, dict, str], Any]:
    def handler(gw: Gateway, body: dict, rid: str) -> Any:
        fed = gw.federation(body, rid)
        return gw.call(
            fed, method, {k: body[k] for k in fields if k in body}, request_id=rid, timeout=timeout
        )

    return handler


def _deposit(gw: Gateway, body: dict, rid: str) -> dict:
    """{federation_id} and at most one of: txid, transaction (raw hex, the 2023 form, with an
    optional txout_proof), operation_id (an address from /address); none = the newest address."""
    named = [k for k in ("txid", "transaction", "operation_id") if body.get(k) is not None]
    if len(named) > 1:
        raise InvalidInput(f"give one of txid, transaction, operation_id (not {', '.join(named)})")
    if "txid" in named:
        body["txid"] = hex32(body["txid"], "txid")
    for k in ("transaction", "txout_proof", "operation_id"):
        v = body.get(k)
        if v is not None and (not isinstance(v, str) or not v or len(v) > 400_000):
            raise InvalidInput(f"{k} must be a non-empty string")
    for k in ("transaction", "txout_proof"):
        if body.get(k) is not None and not is_hex(body[k]):
            raise InvalidInput(f"{k} must be hex")
    timeout = body.get("timeout_s", 10)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 <= timeout <= 50:
        raise InvalidInput("timeout_s must be 0..50")
    fed = gw.federation(body, rid)
    query = {k: body[k] for k in ("txid", "transaction", "operation_id") if k in named}
    return gw.call(
        fed,
        C.METHOD_ACTOR_DEPOSIT,
        {**query, "timeout_s": timeout},
        request_id=rid,
        timeout=70,
        idempotent=False,  # a bus retry must not start a second, racing claim
    )


def _idempotency_key(body: dict) -> str | None:
    key = body.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not IDEMPOTENCY_KEY.fullmatch(key)):
        raise InvalidInput("idempotency_key: 8 to 64 letters, digits, - or _")
    return key


def _withdraw(gw: Gateway, body: dict, rid: str) -> dict:
    """{federation_id, amount (sat or "all"), address, preview?} -> {operation_id, status
    (sent | pending), txid, fee_sat, ...}, or with `preview` the quote only."""
    amount = body.get("amount", body.get("amount_sat"))
    if amount != "all" and (not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0):
        raise InvalidInput('amount must be a positive number of sats or "all"')
    try:  # the format here; its network by the actor, which knows the federation's
        parse_address(body.get("address"), None)
    except AddressError as exc:
        raise InvalidAddress(f"invalid address: {exc}") from None
    if not isinstance(body.get("preview", False), bool):
        raise InvalidInput("preview must be true or false")
    key = _idempotency_key(body)
    fed = gw.federation(body, rid)
    query = {
        "amount_sat": amount,
        "address": body["address"],
        "preview": body.get("preview", False),
    }
    if key:
        query["operation_id"] = f"withdraw-{key}"
    # runs once: bus retries reuse the message id; a repeated idempotency_key gets the first reply
    return gw.call(
        fed,
        C.METHOD_ACTOR_WITHDRAW,
        query,
        request_id=rid,
        timeout=90,
        idempotent=False,
        message_id=f"withdraw:{fed[:16]}:{key}" if key else None,
    )


def _spend_ecash(gw: Gateway, body: dict, rid: str) -> dict:
    """{federation_id, amount_msat, idempotency_key?} -> {operation_id, notes, amount_msat,
    balance_msat}: the same key answers the same notes."""
    amount = body.get("amount_msat")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidInput("amount_msat must be a positive integer")
    key = _idempotency_key(body)
    fed = gw.federation(body, rid)
    query: dict = {"amount_msat": amount}
    if key:
        query["operation_id"] = f"spend-{key}"
    return gw.call(
        fed,
        C.METHOD_ACTOR_SPEND_ECASH,
        query,
        request_id=rid,
        timeout=90,
        idempotent=False,
        message_id=f"spend:{fed[:16]}:{key}" if key else None,
    )


def _seed(gw: Gateway, body: dict, rid: str) -> dict:
    """The gateway's 12 seed words (every federation's keys and e-cash come back with them):
    write them down offline."""
    return gw.call(C.GATEWAY_SERVICE, C.METHOD_SEED, {}, request_id=rid)


def _connect(gw: Gateway, body: dict, rid: str) -> dict:
    # checked here too: a bad invite is a 400 at once, and never reaches the router
    parse_invite(body.get("invite_code"), body.get("api_urls"))
    query = {"invite_code": body["invite_code"]}
    if body.get("api_urls") is not None:
        query["api_urls"] = body["api_urls"]
    if flag(body.get("recover"), "recover"):
        query["recover"] = True
    return gw.call(
        C.GATEWAY_SERVICE,
        C.METHOD_CONNECT_FED,
        query,
        request_id=rid,
        timeout=gw.settings.long_timeout_s,
        idempotent=False,
    )


def _leave(gw: Gateway, body: dict, rid: str) -> dict:
    fed = hex32(body.get("federation_id"), "federation_id")
    return gw.call(
        C.GATEWAY_SERVICE,
        C.METHOD_LEAVE_FED,
        {"federation_id": fed, "force": flag(body.get("force"), "force")},
        request_id=rid,
    )


def _set_fees(gw: Gateway, body: dict, rid: str) -> dict:
    fees = checked_fees(body.get("base_msat"), body.get("proportional_millionths"))
    if body.get("federation_id") is not None:
        fed = gw.federation(body, rid)
        return {fed: gw.call(fed, C.METHOD_ACTOR_SET_FEES, fees, request_id=rid)["fees"]}
    applied: dict[str, dict] = {}
    failed: dict[str, str] = {}  # federation id -> why not
    feds = [f for f in gw.federations(rid) if f["state"] != "left"]
    names = {f["federation_id"]: f.get("name") or f["federation_id"][:16] for f in feds}
    for f in feds:
        fid = f["federation_id"]
        if f["state"] != "running":  # not asked (it would only time out): said below
            failed[fid] = f"its actor is {f['state']}"
            continue
        try:
            applied[fid] = gw.call(fid, C.METHOD_ACTOR_SET_FEES, fees, request_id=rid)["fees"]
        except GatewayError as exc:
            failed[fid] = exc.message
    if failed:  # said in full: which took the new fees and which did not (setting again is safe)
        done = ", ".join(names[fid] for fid in applied) or "none"
        raise ServiceUnavailable(
            f"fees applied to {done}; not to "
            + "; ".join(f"{names[fid]} ({why})" for fid, why in failed.items())
            + ": set them again"
        )
    return applied


def _config(gw: Gateway, body: dict, rid: str) -> dict:
    s = gw.settings
    return {
        "bind": s.bind,
        "bus_timeout_s": s.bus_timeout_s,
        "pay_timeout_s": s.pay_timeout_s,
        "long_timeout_s": s.long_timeout_s,
        "worker_timeout_s": s.worker_timeout_s(),
        "max_body_bytes": s.max_body_bytes,
        "public_rate_per_s": s.public_rate_per_s,
        "public_burst": s.public_burst,
        "trusted_proxies": [str(n) for n in s.trusted_proxies],
        "header_timeout_s": s.header_timeout_s,
        "body_timeout_s": s.body_timeout_s,
        "version_hash": version_hash(),
    }


ADMIN_ROUTES: dict[str, Callable[[Gateway, dict, str], Any]] = {
    C.PATH_PAYMENT_LOG: payment_log,
    C.PATH_PAYMENT_SUMMARY: payment_summary,
    C.PATH_INFO: _info,
    C.PATH_BALANCE: _balance,
    C.PATH_BALANCES: _balances,
    C.PATH_ADDRESS: _fed_call(C.METHOD_ACTOR_ADDRESS, timeout=90),  # Fedimint's may grind
    C.PATH_DEPOSIT: _deposit,
    C.PATH_WITHDRAW: _withdraw,
    C.PATH_SPEND_ECASH: _spend_ecash,
    C.PATH_CONNECT_FED: _connect,
    C.PATH_LEAVE_FED: _leave,
    C.PATH_SET_FEES: _set_fees,
    C.PATH_SEED: _seed,
    C.PATH_CONFIG: _config,
    C.PATH_LIGHTNING: _lightning,
}
