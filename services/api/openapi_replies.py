"""What the routes answer (200), as JSON Schema for the OpenAPI document: the fields a client may
count on. Objects stay open (a new field is not a breaking change); amounts are integer msat
or sat as their names say. The fuzz test over the real front checks every 200 against these."""

from __future__ import annotations

from typing import Any

from gwcore import constants as C

HEX32 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
MSAT = {"type": "integer", "minimum": 0}
TIME = {"type": "number", "minimum": 0}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


FEES = obj({"base_msat": MSAT, "proportional_millionths": MSAT})
NODE = obj(
    {
        "pub_key": {"type": "string"},
        "alias": {"type": "string"},
        "network": {"type": "string"},
        "block_height": {"type": "integer"},
        "synced": {"type": "boolean"},
    }
)
CHANNEL = obj(
    {
        "peer_id": {"type": "string"},
        "short_channel_id": {"type": "integer", "minimum": 0},
        "local_msat": MSAT,
        "remote_msat": MSAT,
        "active": {"type": "boolean"},
    },
    {"capacity_sat": {"type": "integer", "minimum": 0}},
)
LIGHTNING_BALANCES = {
    "onchain_balance_sat": {"type": "integer", "minimum": 0},
    "lightning_balance_msat": MSAT,
    "inbound_lightning_liquidity_msat": MSAT,
}
FEDERATION = obj(
    {
        "federation_id": HEX32,
        "name": {"type": "string"},
        "scid": {"type": "integer", "minimum": 1},
        "state": {"type": "string"},
    },
    {
        "balance_msat": MSAT,
        "fees": FEES,
        "in_flight": {"type": "integer", "minimum": 0},
        # what is in flight, by kind (lnv2_send, lnv2_receive, withdrawal, deposit, …)
        "in_flight_kinds": {"type": "object", "additionalProperties": MSAT},
    },
)
PAYMENT = obj(
    {
        "id": {"type": "string"},
        "federation_id": HEX32,
        "direction": {"enum": list(C.PAYMENT_DIRECTIONS)},
        "status": {"enum": list(C.PAYMENT_STATUSES)},
        "amount_msat": MSAT,
        "fee_earned_msat": {"type": "integer"},
        "created": TIME,
    },
    {
        "finished": nullable(TIME),
        "latency_s": nullable(TIME),
        "payment_hash": nullable({"type": "string"}),
        # why a failed payment failed (a refused duplicate: "payment hash already paid or being
        # paid by this gateway"; a Lightning failure; the chain's refusal of a peg-out)
        "error": nullable({"type": "string"}),
        # withdrawals (peg-outs): where to, the on-chain txid, the chain's refusal and refund
        "address": {"type": "string"},
        "txid": nullable(HEX32),
        "onchain_fee_sat": MSAT,
        "refunded_msat": MSAT,
    },
)
DIRECTION_SUMMARY = obj(
    {
        "count": MSAT,
        "settled": MSAT,
        "failed": MSAT,
        "pending": MSAT,
        "volume_msat": MSAT,
        "fees_earned_msat": {"type": "integer"},
    },
    {"latency_p50_s": nullable(TIME), "latency_p90_s": nullable(TIME)},
)

REPLIES: dict[str, dict] = {
    C.PATH_PAY_INVOICE: {"description": "the preimage, hex", **HEX32},
    C.PATH_GATEWAY_ID: {"description": "our node's public key, hex", "type": "string"},
    C.PATH_INFO: obj(
        {
            "version_hash": {"type": "string"},
            "node": nullable(NODE),
            "programs": {"type": "array"},
            "federations": {"type": "array", "items": FEDERATION},
            "gateway_state": {"type": "string"},
        }
    ),
    C.PATH_BALANCE: obj({"federation_id": HEX32, "balance_msat": MSAT}),
    C.PATH_BALANCES: obj(
        {"balances_msat": {"type": "object", "additionalProperties": MSAT}, "total_msat": MSAT},
        LIGHTNING_BALANCES,
    ),
    C.PATH_ADDRESS: obj({"operation_id": {"type": "string"}, "address": {"type": "string"}}),
    C.PATH_DEPOSIT: obj(
        {
            "operation_id": {"type": "string"},
            "txid": nullable(HEX32),
            "credited_msat": MSAT,
            "already_credited": {"type": "boolean"},
            "balance_msat": MSAT,
        }
    ),
    C.PATH_WITHDRAW: {
        "anyOf": [
            obj(
                {
                    "operation_id": {"type": "string"},
                    "status": {"const": "sent"},
                    "txid": HEX32,
                    "fee_sat": MSAT,
                    "amount_sat": MSAT,
                    "address": {"type": "string"},
                }
            ),
            obj({"preview": {"const": True}, "amount_sat": MSAT, "fee_sat": MSAT}),
            # saved and going out, not sent yet: never to be sent again by the caller
            obj(
                {
                    "operation_id": {"type": "string"},
                    "status": {"const": "pending"},
                    "txid": {"type": "null"},
                    "fee_sat": MSAT,
                },
                {"detail": {"type": "string"}},
            ),
        ]
    },
    C.PATH_CONNECT_FED: FEDERATION,
    C.PATH_LEAVE_FED: obj({"left": HEX32}),
    C.PATH_SEED: obj({"words": {"type": "string", "pattern": "^[a-z]+( [a-z]+){11}$"}}),
    C.PATH_SET_FEES: {"type": "object", "additionalProperties": FEES},
    C.PATH_LIGHTNING: obj(
        {
            "node": NODE,
            "balances": obj(
                {**LIGHTNING_BALANCES, "channels": {"type": "array", "items": CHANNEL}}
            ),
        }
    ),
    C.PATH_PAYMENT_LOG: obj(
        {"payments": {"type": "array", "items": PAYMENT}},
        {"missing_federations": {"type": "array", "items": HEX32}},
    ),
    C.PATH_PAYMENT_SUMMARY: obj(
        {
            "start": TIME,
            "end": TIME,
            "bucket_s": {"type": "integer", "minimum": 60},
            "directions": obj({d: DIRECTION_SUMMARY for d in C.PAYMENT_DIRECTIONS}),
            "series": {"type": "array"},
            "missing_federations": {"type": "array", "items": HEX32},
        }
    ),
    C.PATH_HEALTH: obj(
        {"status": {"enum": ["ready", "degraded", "unavailable"]}, "router": {"type": "boolean"}}
    ),
    C.PATH_HEALTH_LIVE: obj({"status": {"const": "live"}}),
}


def add_replies(paths: dict) -> None:
    """Put each route's reply schema into its 200 response (every method of the path)."""
    for path, schema in REPLIES.items():
        for op in paths.get(path, {}).values():
            op["responses"]["200"]["content"] = {"application/json": {"schema": schema}}
