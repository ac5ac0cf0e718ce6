"""The wallet module of the federation: peg-in addresses and deposits, peg-out fee quotes, the
reserve check, and the sender that pays accepted peg-outs on chain. Mixed into `Federation`."""

from __future__ import annotations

import logging
import time
from typing import Any

from .chain import ChainError, btc_to_sat
from .validation import FedError, _int, _key

log = logging.getLogger(__name__)
PEGOUT_VSIZE = 141  # 1 P2WPKH input, 2 outputs


class WalletModule:
    """Needs `self.chain`, `self.db`, `self.deposit_confirmations`, `self.notify()`."""

    chain: Any
    db: Any
    deposit_confirmations: int

    def _check_reserves(self, conn, outputs: list[dict]) -> None:  # type: ignore[no-untyped-def]
        """The federation never pays out more than its wallet holds (minus peg-outs not yet sent)."""
        wanted = sum(o["amount_sat"] + o["fee_sat"] for o in outputs if o.get("kind") == "pegout")
        if not wanted:
            return
        try:
            balance = btc_to_sat(self.chain.call("getbalance", wallet=True))
        except ChainError as exc:
            raise FedError("chain_unavailable", exc.message, 503) from None
        pending = conn.execute(
            "SELECT COALESCE(SUM(amount_sat + fee_sat), 0) AS s FROM pegouts WHERE state = 'pending'"
        ).fetchone()["s"]
        if wanted > balance - pending:
            raise FedError(
                "insufficient_reserves",
                f"the federation holds {balance - pending} sat on chain, {wanted} sat asked",
                409,
            )

    # --- wallet -------------------------------------------------------------------------------
    def pegin_address(self, user_key: Any) -> dict:
        key = _key(user_key, "user_key")
        try:
            address = self.chain.call("getnewaddress", "pegin", wallet=True)
        except ChainError as exc:
            raise FedError("chain_unavailable", exc.message, 503) from None
        with self.db.tx() as c:
            c.execute(
                "INSERT INTO pegin_addresses (address, user_key, created) VALUES (?, ?, ?)",
                (address, key, int(time.time())),
            )
        return {"address": address}

    def _deposit(self, btxid: str, vout: int) -> dict | None:
        try:
            tx = self.chain.call("gettransaction", btxid, wallet=True)
        except ChainError:
            return None
        for d in tx.get("details", []):
            if d.get("vout") == vout and d.get("category") == "receive":
                owner = self.db.one(
                    "SELECT user_key FROM pegin_addresses WHERE address = ?", d.get("address")
                )
                if owner is None:
                    return None
                return {
                    "amount_sat": btc_to_sat(d["amount"]),
                    "confirmations": int(tx.get("confirmations", 0)),
                    "user_key": owner["user_key"],
                    "address": d["address"],
                }
        return None

    def deposits(self, address: Any) -> list[dict]:
        if (
            not isinstance(address, str)
            or self.db.one("SELECT 1 FROM pegin_addresses WHERE address = ?", address) is None
        ):
            raise FedError("unknown_address", "not a peg-in address of this federation", 404)
        try:
            coins = self.chain.call("listunspent", 0, 9_999_999, [address], wallet=True)
        except ChainError as exc:
            raise FedError("chain_unavailable", exc.message, 503) from None
        out = []
        for coin in coins:
            claimed = self.db.one(
                "SELECT claimed_by FROM pegins WHERE txid = ? AND vout = ?",
                coin["txid"],
                coin["vout"],
            )
            out.append(
                {
                    "txid": coin["txid"],
                    "vout": coin["vout"],
                    "amount_sat": btc_to_sat(coin["amount"]),
                    "confirmations": coin["confirmations"],
                    "claimable": coin["confirmations"] >= self.deposit_confirmations
                    and not claimed,
                    "claimed_by": claimed["claimed_by"] if claimed else None,
                }
            )
        return out

    def pegout_fee(self, address: Any, amount_sat: Any) -> dict:
        if not isinstance(address, str) or not address.startswith("bcrt1"):
            raise FedError("invalid_address", "not a regtest address")
        _int(amount_sat, "amount_sat", 546)
        try:
            rate = self.chain.call("estimatesmartfee", 2)
        except ChainError as exc:
            raise FedError("chain_unavailable", exc.message, 503) from None
        sat_per_vb = max(1, -(-btc_to_sat(rate.get("feerate", "0.00001")) // 1000))
        return {"fee_sat": sat_per_vb * PEGOUT_VSIZE, "fee_rate_sat_vb": sat_per_vb}

    def send_pending_pegouts(self) -> int:
        """Pay accepted peg-outs with sendtoaddress; return how many were sent. Before paying, a
        peg-out whose payment is already in the wallet (a crash after sending, before recording)
        is recognised by its address and amount and only recorded."""
        sent = 0
        for p in self.db.all("SELECT * FROM pegouts WHERE state = 'pending' ORDER BY created"):
            try:
                btxid = self._find_sent(p["address"], p["amount_sat"])
                if btxid is None:
                    btxid = self.chain.call(
                        "sendtoaddress", p["address"], f"{p['amount_sat'] / 1e8:.8f}", wallet=True
                    )
            except ChainError as exc:
                log.warning("peg-out %s not sent yet: %s", p["id"], exc.message)
                continue
            with self.db.tx() as c:
                c.execute(
                    "UPDATE pegouts SET state = 'sent', btc_txid = ? WHERE id = ?", (btxid, p["id"])
                )
            sent += 1
        if sent:
            self.notify()
        return sent

    def _find_sent(self, address: str, amount_sat: int) -> str | None:
        recorded = {
            r["btc_txid"]
            for r in self.db.all("SELECT btc_txid FROM pegouts WHERE btc_txid IS NOT NULL")
        }
        for t in self.chain.call("listtransactions", "*", 1000, wallet=True):
            if (
                t.get("category") == "send"
                and t.get("address") == address
                and -btc_to_sat(t["amount"]) == amount_sat
                and t["txid"] not in recorded
            ):
                return t["txid"]
        return None
