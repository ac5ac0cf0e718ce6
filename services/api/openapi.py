"""The OpenAPI 3.1 document of the HTTP front (served at /openapi.json)."""

from __future__ import annotations

from gwcore import constants as C
from gwcore.values import MAX_FEE_BASE_MSAT, MAX_FEE_PPM

from .openapi_replies import add_replies

FED = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}
ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "code": {"type": "string"}},
    "required": ["error", "code"],
}


ERRORS = {
    "400": "invalid input",
    "404": "not found",
    "409": "not possible yet (e.g. deposit unconfirmed)",
    "413": "body too large",
    "429": "too many requests or wrong passwords: wait",
    "502": "payment failed (definitely: the contract is cancelled)",
    "503": "not ready",
    "504": "no answer in time (the work may still finish: ask again)",
}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


def _op(summary: str, body: dict | None, public: bool = False) -> dict:
    op: dict = {
        "summary": summary,
        "responses": {
            "200": {"description": "ok", "content": {"application/json": {"schema": {}}}},
            **{status: _error(text) for status, text in ERRORS.items()},
        },
    }
    if not public:
        op["security"] = [{"bearer": []}]
        op["responses"]["401"] = _error("unauthorized")
    if body is not None:
        # admin bodies are strict (a misspelt field is an error, not ignored); the public route
        # takes what federation clients of every version send
        strict = {} if public else {"additionalProperties": False}
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", **strict, **body}}},
        }
    return op


def _data_backup() -> dict:
    op = _op("The whole data folder, encrypted with the seed's file-backup key", None)
    op["responses"]["200"] = {
        "description": "the backup file (gateway-cli backup --to FILE keeps it)",
        "headers": {
            C.BACKUP_SHA256_HEADER: {"schema": {"type": "string"}},
            C.BACKUP_FILES_HEADER: {"schema": {"type": "integer"}},
        },
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
    return op


def body_fields(document: dict) -> dict[str, frozenset[str]]:
    """{path: the fields its body may have} of the strict (admin) routes: none for a route
    without a body."""
    out: dict[str, frozenset[str]] = {}
    for path, ops in document["paths"].items():
        for op in ops.values():
            if "bearer" not in str(op.get("security", "")):
                continue
            schema = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            fields = frozenset(schema.get("schema", {}).get("properties", {}))
            out[path] = out.get(path, frozenset()) | fields
    return out


def openapi_document(version: str) -> dict:
    fed_body = {"properties": {"federation_id": FED}, "required": ["federation_id"]}
    paths = {
        C.PATH_PAY_INVOICE: {
            "post": _op(
                "Pay the invoice of an outgoing contract (public)",
                {
                    "properties": {"federation_id": FED, "contract_id": FED},
                    "required": ["federation_id", "contract_id"],
                },
                public=True,
            )
        },
        C.PATH_ROUTING_INFO: {
            "post": _op(
                "LNv2: our routing info for a federation (public; also at /v1/routing_info);"
                " null for a federation not served by LNv2",
                {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                public=True,
            )
        },
        C.PATH_SEND_PAYMENT: {
            "post": _op(
                "LNv2: pay the invoice of a funded outgoing contract (public; also at"
                " /v1/send_payment) -> {Ok: preimage bytes} or {Err: forfeit signature}",
                {
                    "properties": {
                        "federation_id": FED,
                        "outpoint": {"type": "object"},
                        "contract": {"type": "object"},
                        "invoice": {"type": "object"},
                        "auth": {"type": "string"},
                    },
                    "required": ["federation_id", "outpoint", "contract", "invoice", "auth"],
                },
                public=True,
            )
        },
        C.PATH_CREATE_BOLT11_INVOICE: {
            "post": _op(
                "LNv2: our node's hold invoice for an incoming contract (public; also at"
                " /v1/create_bolt11_invoice) -> the BOLT11 as a JSON string",
                {
                    "properties": {
                        "federation_id": FED,
                        "contract": {"type": "object"},
                        "amount": {"type": "integer", "minimum": 1},
                        "description": {"type": "object"},
                        "expiry_secs": {"type": "integer", "minimum": 1, "maximum": 86_400},
                    },
                    "required": [
                        "federation_id",
                        "contract",
                        "amount",
                        "description",
                        "expiry_secs",
                    ],
                },
                public=True,
            )
        },
        C.PATH_VERIFY: {
            "get": {
                **_op(
                    "LNv2 (LUD-21): {status: OK, settled, preimage} of a receive, or {status:"
                    " ERROR, reason}; ?wait waits up to 30 s for it to end (also at /v1/verify)",
                    None,
                    public=True,
                ),
                "parameters": [
                    {
                        "name": "payment_hash",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    },
                    {"name": "wait", "in": "query", "required": False, "schema": {}},
                ],
            }
        },
        C.PATH_GATEWAY_ID: {
            "get": _op(
                "LNv1: the gateway's id (our node's public key, hex), asked by clients before"
                " they fund a contract for us",
                None,
                public=True,
            )
        },
        C.PATH_RECEIVE_ECASH: {
            "post": _op(
                "Give the gateway e-cash: reissued into its wallet, the same notes once (public)",
                {
                    "properties": {
                        "notes": {"type": "string", "minLength": 1},
                        "federation_id": FED,
                        "wait": {"type": "boolean"},
                    },
                    "required": ["notes"],
                },
                public=True,
            )
        },
        C.PATH_SPEND_ECASH: {
            "post": _op(
                "Out-of-band e-cash from the gateway's wallet (rounded up to the smallest note)",
                {
                    "properties": {
                        "federation_id": FED,
                        "amount_msat": {"type": "integer", "minimum": 1},
                        "idempotency_key": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"},
                    },
                    "required": ["federation_id", "amount_msat"],
                },
            )
        },
        C.PATH_INFO: {
            "post": _op("Gateway, node and federations", None),
            "get": _op("Gateway, node and federations", None),
        },
        C.PATH_BALANCE: {"post": _op("E-cash balance in one federation", fed_body)},
        C.PATH_BALANCES: {
            "post": _op("E-cash balances in every federation", None),
            "get": _op("Balances", None),
        },
        C.PATH_ADDRESS: {"post": _op("A peg-in address", fed_body)},
        C.PATH_DEPOSIT: {
            "post": _op(
                "Claim a confirmed deposit (by txid, raw transaction, or peg-in address)",
                {
                    "properties": {
                        "federation_id": FED,
                        "txid": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
                        "transaction": {"type": "string", "pattern": "^([0-9a-fA-F]{2})+$"},
                        "txout_proof": {"type": "string", "pattern": "^([0-9a-fA-F]{2})+$"},
                        "operation_id": {"type": "string", "minLength": 1},
                        "timeout_s": {"type": "number", "minimum": 0, "maximum": 50},
                    },
                    "required": ["federation_id"],
                },
            )
        },
        C.PATH_WITHDRAW: {
            "post": _op(
                "Peg out (or, with preview, quote the fee)",
                {
                    "properties": {
                        "federation_id": FED,
                        "amount": {"oneOf": [{"type": "integer", "minimum": 1}, {"const": "all"}]},
                        "amount_sat": {
                            "description": "the same as amount (either may be given)",
                            "oneOf": [{"type": "integer", "minimum": 1}, {"const": "all"}],
                        },
                        "address": {"type": "string", "minLength": 1},
                        "preview": {"type": "boolean"},
                        "idempotency_key": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"},
                    },
                    "required": ["federation_id", "amount", "address"],
                },
            )
        },
        C.PATH_CONNECT_FED: {
            "post": _op(
                "Connect a federation",
                {
                    "properties": {
                        "invite_code": {"type": "string"},
                        "api_urls": {
                            "description": "Fedimint only: the guardians' ws:// or wss:// API"
                            " URLs by peer id, for a federation that lists only iroh endpoints",
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                        "recover": {
                            "description": "Fedimint only: a federation this gateway served before"
                            " its data folder was lost; its e-cash and peg-in keys are recovered"
                            " from the seed before it serves (state `recovering` until then)",
                            "type": "boolean",
                        },
                    },
                    "required": ["invite_code"],
                },
            )
        },
        C.PATH_LEAVE_FED: {
            "post": _op(
                "Leave a federation",
                {
                    "properties": {"federation_id": FED, "force": {"type": "boolean"}},
                    "required": ["federation_id"],
                },
            )
        },
        C.PATH_SET_FEES: {
            "post": _op(
                "Set routing fees",
                {
                    "properties": {
                        "federation_id": FED,
                        "base_msat": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": MAX_FEE_BASE_MSAT,
                        },
                        "proportional_millionths": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": MAX_FEE_PPM,
                        },
                    },
                    "required": ["base_msat", "proportional_millionths"],
                },
            )
        },
        C.PATH_DATA_BACKUP: {"post": _data_backup()},
        C.PATH_SEED: {
            "post": _op(
                "The gateway's 12 seed words: every federation's keys and e-cash come back"
                " with them (a secret: write them down offline)",
                None,
            )
        },
        C.PATH_LIGHTNING: {
            "get": _op("The Lightning node: identity, balances, channel liquidity", None),
            "post": _op("The Lightning node: identity, balances, channel liquidity", None),
        },
        C.PATH_CONFIG: {
            "get": _op("Non-secret settings", None),
            "post": _op("Non-secret settings", None),
        },
        C.PATH_PAYMENT_LOG: {
            "post": _op(
                "Payments, newest first",
                {
                    "properties": {
                        "federation_id": FED,
                        "kinds": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"enum": list(C.PAYMENT_DIRECTIONS)},
                        },
                        "statuses": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"enum": list(C.PAYMENT_STATUSES)},
                        },
                        "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
                        "since": {"type": "number", "minimum": 0},
                        "before": {"type": "number", "minimum": 0},
                    }
                },
            )
        },
        C.PATH_PAYMENT_SUMMARY: {
            "post": _op(
                "Counts, volume, fees and latency per direction; volume per time bucket",
                {
                    "properties": {
                        "federation_id": FED,
                        "start": {
                            "type": "number",
                            "minimum": 0,
                            "description": "default: 24 hours before end, clamped at 0",
                        },
                        "end": {"type": "number", "minimum": 0, "description": "default: now"},
                        "bucket_s": {"type": "integer", "minimum": 60},
                    }
                },
            )
        },
        C.PATH_HEALTH: {
            "get": _op(
                "Readiness: router, Lightning extension, every federation's actor", None, True
            )
        },
        C.PATH_HEALTH_LIVE: {"get": _op("Liveness of the HTTP front", None, public=True)},
        C.PATH_METRICS: {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "text exposition"}},
            }
        },
        C.PATH_OPENAPI: {
            "get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI"}}}
        },
    }
    add_replies(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": "fmgw gateway API", "version": version},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
