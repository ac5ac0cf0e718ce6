"""Queries of the Lightning module, the gateway registry, e-cash backups and the audit of the
federation's books. Mixed into `Federation`."""

from __future__ import annotations

import json
import time
from typing import Any

from devworld.fedlib import crypto
from devworld.fedlib.tx import registration_message, removal_message

from .validation import FedError, _hex, _int, _key

GATEWAY_TTL_S = 600


class RegistryModule:
    """Needs `self.db` and `self.federation_id`."""

    db: Any
    federation_id: str

    # --- Lightning module queries -------------------------------------------------------------
    def contract(self, cid: str) -> dict:
        _hex(cid, 32, "contract id")
        row = self.db.one("SELECT * FROM outgoing WHERE contract_id = ?", cid)
        if row is not None:
            return {
                "kind": "outgoing",
                **dict(row),
                "cancelled": bool(row["cancelled"]),
            }
        row = self.db.one("SELECT * FROM incoming WHERE contract_id = ?", cid)
        if row is not None:
            return {
                "kind": "incoming",
                **dict(row),
                "valid": bool(row["valid"]),
            }
        raise FedError("unknown_contract", "no such contract", 404)

    def offer(self, payment_hash: str) -> dict | None:
        _hex(payment_hash, 32, "payment hash")
        row = self.db.one("SELECT * FROM offers WHERE payment_hash = ?", payment_hash)
        return None if row is None else dict(row)

    # --- gateways -----------------------------------------------------------------------------
    def register_gateway(self, body: Any) -> dict:
        if not isinstance(body, dict) or not isinstance(body.get("registration"), dict):
            raise FedError("invalid_input", "body is {registration: {...}, signature}")
        reg = body["registration"]
        key = _key(reg.get("gateway_key"), "gateway_key")
        _int(reg.get("scid"), "scid", 1)
        if not isinstance(reg.get("node_pubkey"), str) or len(reg["node_pubkey"]) != 66:
            raise FedError("invalid_input", "node_pubkey must be a 33-byte public key (hex)")
        if not isinstance(reg.get("api_url"), str) or not reg["api_url"].startswith(
            ("http://", "https://")
        ):
            raise FedError("invalid_input", "api_url must be http(s)")
        fees = reg.get("fees")
        if not isinstance(fees, dict):
            raise FedError("invalid_input", "fees is {base_msat, proportional_millionths}")
        _int(fees.get("base_msat"), "fees.base_msat")
        _int(fees.get("proportional_millionths"), "fees.proportional_millionths")
        if not isinstance(reg.get("route_hints", []), list):
            raise FedError("invalid_input", "route_hints must be a list")
        now = int(time.time())
        valid_until = _int(reg.get("valid_until"), "valid_until")
        if not now < valid_until <= now + GATEWAY_TTL_S + 5:
            raise FedError(
                "invalid_input", f"valid_until must be within the next {GATEWAY_TTL_S} s"
            )
        if reg.get("federation_id") != self.federation_id:
            raise FedError("invalid_input", "registration is for another federation")
        sig = body.get("signature")
        if not (
            isinstance(sig, str) and crypto.schnorr_verify(key, registration_message(reg), sig)
        ):
            raise FedError("invalid_signature", "registration not signed by the gateway key")
        with self.db.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO gateways (gateway_key, registration, valid_until) VALUES (?, ?, ?)",
                (key, json.dumps(reg), valid_until),
            )
        return {"registered": key, "valid_until": valid_until}

    def gateways(self) -> list[dict]:
        rows = self.db.all(
            "SELECT registration FROM gateways WHERE valid_until > ? ORDER BY gateway_key",
            int(time.time()),
        )
        return [json.loads(r["registration"]) for r in rows]

    def remove_gateway(self, gateway_key: str, body: Any) -> dict:
        key = _key(gateway_key, "gateway_key")
        sig = body.get("signature") if isinstance(body, dict) else None
        if not (
            isinstance(sig, str)
            and crypto.schnorr_verify(key, removal_message(self.federation_id, key), sig)
        ):
            raise FedError("invalid_signature", "removal not signed by the gateway key")
        with self.db.tx() as c:
            gone = c.execute("DELETE FROM gateways WHERE gateway_key = ?", (key,)).rowcount
        if not gone:
            raise FedError("unknown_gateway", "no such gateway", 404)
        return {"removed": key}

    # --- backups and audit --------------------------------------------------------------------
    def put_backup(self, body: Any) -> dict:
        from devworld.fedlib.tx import backup_message

        if not isinstance(body, dict):
            raise FedError("invalid_input", "body is {user_key, data, signature}")
        key = _key(body.get("user_key"), "user_key")
        data = _hex(body.get("data"), None, "data")
        if len(data) > 2 * 256 * 1024:
            raise FedError("too_large", "backups are at most 256 KiB", 413)
        sig = body.get("signature")
        if not (
            isinstance(sig, str) and crypto.schnorr_verify(key, backup_message(key, data), sig)
        ):
            raise FedError("invalid_signature", "backup not signed by the user key")
        with self.db.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO backups (user_key, data, updated) VALUES (?, ?, ?)",
                (key, data, int(time.time())),
            )
        return {"stored": key}

    def get_backup(self, user_key: str) -> dict:
        row = self.db.one(
            "SELECT data, updated FROM backups WHERE user_key = ?", _key(user_key, "user_key")
        )
        if row is None:
            raise FedError("unknown_backup", "no backup for this key", 404)
        return {"user_key": user_key, "data": row["data"], "updated": row["updated"]}

    def audit(self) -> dict:
        """Liabilities and assets, for the conservation check:
        pegins - pegouts (pending, sent) - fees
            == notes outstanding + open contracts + failed peg-outs not yet refunded."""
        one = lambda sql: int(self.db.one(sql)["s"])  # noqa: E731
        issued = one("SELECT COALESCE(SUM(amount), 0) AS s FROM issued_notes")
        redeemed = one("SELECT COALESCE(SUM(amount), 0) AS s FROM spent_notes")
        return {
            "notes_outstanding_msat": issued - redeemed,
            "outgoing_open_msat": one(
                "SELECT COALESCE(SUM(amount), 0) AS s FROM outgoing WHERE spent_by IS NULL"
            ),
            "incoming_open_msat": one(
                "SELECT COALESCE(SUM(amount), 0) AS s FROM incoming WHERE spent_by IS NULL"
            ),
            "pegin_msat": one("SELECT COALESCE(SUM(amount_sat), 0) * 1000 AS s FROM pegins"),
            "pegout_msat": one(
                "SELECT COALESCE(SUM(amount_sat + fee_sat), 0) * 1000 AS s FROM pegouts"
                " WHERE state IN ('pending', 'sent')"
            ),
            "pegout_failed_open_msat": one(
                "SELECT COALESCE(SUM(amount_sat + fee_sat), 0) * 1000 AS s FROM pegouts"
                " WHERE state = 'failed'"
            ),
            "fees_msat": int(self.db.meta("fees_msat") or 0),
        }
