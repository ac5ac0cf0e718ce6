"""A fake bus for the API front's tests: the router's and actors' answers, canned."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from gwcore import constants as C
from gwcore import summary
from gwcore.errors import DepositPending, InvalidInput, NotFound

FED = "ab" * 32
CID = "cd" * 32
PASSWORD = "correct horse"
SEED_WORDS = "legal winner thank year wave sausage worth useful legal winner thank yellow"

ADDRESS = "bcrt1qdavt4j2sd7dlhqsavtnfxvzppw6k7qy97tmnu9"  # a regtest P2WPKH address (one of Bitcoin Core's vectors)


LIGHTNING = {
    "node": {
        "pub_key": "02" + "11" * 32,
        "alias": "gateway",
        "network": "regtest",
        "block_height": 150,
        "synced": True,
    },
    "balances": {
        "onchain_balance_sat": 5000,
        "lightning_balance_msat": 7_000_000,
        "inbound_lightning_liquidity_msat": 3_000_000,
        "channels": [
            {
                "peer_id": "03" + "22" * 32,
                "short_channel_id": 1 << 40,
                "capacity_sat": 10_000,
                "local_msat": 7_000_000,
                "remote_msat": 3_000_000,
                "active": True,
            }
        ],
    },
}

BACKUP_BYTES = b"FMGWDATA sealed backup bytes" * 1000


class FakeBus:
    def __init__(self, run_dir: Path | None = None) -> None:
        self.run_dir = run_dir  # the front's (default: GATEWAY_API_RUN_DIR)
        self.calls: list[tuple[str, str, dict, dict]] = []
        self.fail: Exception | None = None
        self.connect_progress: dict | None = None  # what the router says of a connect
        self.fail_on: dict[str, Exception] = {}  # method -> the error it answers with
        self.down: Exception | None = None  # everything fails (the router is gone)

    def call(
        self, service: str, method: str, payload: bytes, *, timeout: float, **kw: Any
    ) -> bytes:
        body = json.loads(payload)
        self.calls.append((service, method, body, kw | {"timeout": timeout}))
        if self.down is not None:
            raise self.down
        if method in self.fail_on:
            raise self.fail_on[method]
        if self.fail is not None and method != C.METHOD_LIST_FEDS:
            raise self.fail
        if method == C.METHOD_LIST_FEDS:
            return json.dumps(
                {
                    "federations": [
                        {"federation_id": FED, "name": "alpha", "scid": 1, "state": "running"}
                        | {"kind": "fedimint", "actor_answers": True}
                    ],
                    "extension_connected": True,
                    "programs": [
                        {"name": "gateway-router", "state": "RUNNING", "description": "pid 7"},
                        {"name": "gateway-actor-abab", "state": "BACKOFF", "description": "x"},
                        {"name": "gateway-lnrpc-extension", "state": "FATAL", "description": "y"},
                    ],
                }
            ).encode()
        if method == C.METHOD_LIGHTNING:
            return json.dumps(LIGHTNING).encode()
        if method == C.METHOD_CONNECT_STATUS:
            if self.connect_progress is None:
                raise NotFound("no connect of it")
            return json.dumps(self.connect_progress).encode()
        if method == C.METHOD_DATA_BACKUP:  # as the router: a file in the run folder's backups/
            run_dir = self.run_dir or Path(os.environ[C.ENV_PREFIX_API + "RUN_DIR"])
            folder = run_dir / C.BACKUPS_DIR_NAME
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "b1.fmgwdata").write_bytes(BACKUP_BYTES)
            return json.dumps(
                {"file": "b1.fmgwdata", "size": len(BACKUP_BYTES), "files": 3}
                | {"sha256": hashlib.sha256(BACKUP_BYTES).hexdigest(), "created": 1}
            ).encode()
        if method == C.METHOD_ACTOR_LNV2_SEND:
            return json.dumps({"Err": "ab" * 64}).encode()
        if method == C.METHOD_ACTOR_LNV2_INVOICE:
            return json.dumps("lnbcrt1fakeinvoice").encode()
        if method == C.METHOD_ACTOR_LNV2_VERIFY:
            if body["payment_hash"] == "dd" * 32:
                raise InvalidInput("Payment has been refunded")
            if body["payment_hash"] != "aa" * 32:
                raise NotFound("Unknown payment hash")
            return json.dumps({"status": "OK", "settled": True, "preimage": "bb" * 32}).encode()
        if method == C.METHOD_ACTOR_ROUTING_INFO:
            return json.dumps({"module_public_key": "02" + "33" * 32}).encode()
        if method == C.METHOD_ACTOR_RECEIVE_ECASH:
            return json.dumps(
                {"operation_id": "op-r", "amount_msat": 63_000, "balance_msat": 64_234}
            ).encode()
        if method == C.METHOD_ACTOR_SPEND_ECASH:
            notes = "fedimint" + "q" * 40
            return json.dumps(
                {"operation_id": body.get("operation_id", "op-s"), "notes": notes}
                | {"amount_msat": body["amount_msat"], "balance_msat": 1000}
            ).encode()
        if method == C.METHOD_ACTOR_PAY:
            return json.dumps({"preimage": "11" * 32, "contract_id": body["contract_id"]}).encode()
        if method == C.METHOD_ACTOR_INFO:
            return json.dumps(
                {
                    "balance_msat": 1234,
                    "modules": ["ln", "lnv2", "meta", "mint", "wallet"],
                    "fees": {"base_msat": 0, "proportional_millionths": 10_000},
                    "registration": {"valid_until": time.time() + 540},
                    "lnv2_gateway_url": "http://gw.example:8175/",
                }
            ).encode()
        if method == C.METHOD_ACTOR_PAYMENT_SUMMARY:  # the actor's own summary of its payments
            rows = json.loads(self.call(service, C.METHOD_ACTOR_PAYMENT_LOG, b"{}", timeout=1))
            return json.dumps(
                summary.partial(rows["payments"], body["start"], body["end"], body["bucket_s"])
            ).encode()
        if method == C.METHOD_ACTOR_PAYMENT_LOG:
            now = 1_800_000_000
            return json.dumps(
                {
                    "payments": [
                        {
                            "id": "a",
                            "federation_id": FED,
                            "direction": "incoming",
                            "status": "settled",
                            "amount_msat": 1000,
                            "fee_earned_msat": 10,
                            "payment_hash": "00",
                            "created": now,
                            "finished": now + 1,
                            "latency_s": 1.0,
                        },
                        {
                            "id": "b",
                            "federation_id": FED,
                            "direction": "outgoing",
                            "status": "failed",
                            "amount_msat": 5000,
                            "fee_earned_msat": 0,
                            "payment_hash": "11",
                            "created": now + 5,
                            "finished": now + 6,
                            "latency_s": 1.0,
                            "error": C.DUPLICATE_PAYMENT_REASON,
                        },
                    ]
                }
            ).encode()
        if method == C.METHOD_ACTOR_ADDRESS:
            return json.dumps({"operation_id": "op1", "address": ADDRESS}).encode()
        if method == C.METHOD_ACTOR_METRICS:
            zero = {"settled": 0, "failed": 0, "pending": 0, "volume_msat": 0}
            return json.dumps(
                {
                    "federation_id": FED,
                    "balance_msat": 1234,
                    "latency_bounds_s": [0.5, 1.0],
                    "directions": {
                        "outgoing": {
                            **zero,
                            "settled": 2,
                            "failed": 1,
                            "volume_msat": 30_000,
                            "fees_earned_msat": 300,
                            "latency_buckets": [1, 1, 0],
                            "latency_sum_s": 1.25,
                        },
                        "incoming": {
                            **zero,
                            "pending": 1,
                            "fees_earned_msat": 0,
                            "latency_buckets": [0, 0, 0],
                            "latency_sum_s": 0.0,
                        },
                    },
                }
            ).encode()
        if method == C.METHOD_ACTOR_WITHDRAW and body.get("preview"):
            amount = 9000 if body["amount_sat"] == "all" else body["amount_sat"]
            return json.dumps(
                {
                    "preview": True,
                    "address": body["address"],
                    "amount_sat": amount,
                    "fee_sat": 150,
                    "total_sat": amount + 150,
                    "balance_msat": 1234,
                }
            ).encode()
        if method == C.METHOD_ACTOR_WITHDRAW:
            return json.dumps(
                {
                    "operation_id": "op2",
                    "status": "sent",
                    "txid": "ee" * 32,
                    "fee_sat": 150,
                    "amount_sat": 1000,
                    "address": body["address"],
                }
            ).encode()
        if method == C.METHOD_ACTOR_DEPOSIT and body.get("operation_id") == "unconfirmed-op":
            raise DepositPending("deposit 77… has 0 confirmation(s); mine blocks or wait")
        if method == C.METHOD_ACTOR_DEPOSIT and "operation_id" in body:
            return json.dumps(
                {
                    "operation_id": body["operation_id"],
                    "txid": "77" * 32,
                    "credited_msat": 5_000_000,
                    "already_credited": False,
                    "balance_msat": 5_001_234,
                }
            ).encode()
        if method == C.METHOD_SEED:
            return json.dumps({"words": SEED_WORDS}).encode()
        if method == C.METHOD_ACTOR_SET_FEES:
            return json.dumps({"fees": body}).encode()
        return json.dumps({"ok": method, "body": body}).encode()
