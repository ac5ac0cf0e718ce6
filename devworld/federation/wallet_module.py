"""The wallet module of the federation: peg-in addresses and deposits, peg-out fee quotes, the
reserve check, and the sender that pays accepted peg-outs on chain. Mixed into `Federation`.

A peg-out the chain definitely refuses (an RPC error that means "not sent", see
`DEFINITE_REFUSALS`) ends `failed` with the chain's reason; its refund key may then take the
e-cash back once with a `pegout_refund` input. Any other trouble (the chain unreachable, a
wallet busy) leaves it `pending` and the sender tries again: only a definite refusal is failed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from gwcore.bitcoin_address import AddressError, parse_address

from .chain import ChainError, btc_to_sat
from .validation import FedError, Spend, _hex, _int, _key

log = logging.getLogger(__name__)
PEGOUT_VSIZE = 141  # 1 P2WPKH input, 2 outputs
# bitcoind's answers to sendtoaddress that mean no transaction was made: type error, invalid
# address, insufficient funds / amount too small (CreateTransaction's errors), invalid parameter,
# rejected by the mempool (-26) or already on chain as something else (-25)
DEFINITE_REFUSALS = frozenset({-3, -5, -6, -8, -25, -26})


class WalletModule:
    """Needs `self.chain`, `self.db`, `self.deposit_confirmations`, `self.notify()`."""

    chain: Any
    db: Any
    deposit_confirmations: int
    network: str

    def parse_pegout_address(self, address: Any, where: str = "") -> str:
        """The canonical spelling of a payable address of our network; invalid_address if not."""
        try:
            return parse_address(address, self.network).text
        except AddressError as exc:
            raise FedError("invalid_address", f"{where}{exc}") from None

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
        self.parse_pegout_address(address)
        _int(amount_sat, "amount_sat", 546)
        try:
            rate = self.chain.call("estimatesmartfee", 2)
        except ChainError as exc:
            raise FedError("chain_unavailable", exc.message, 503) from None
        sat_per_vb = max(1, -(-btc_to_sat(rate.get("feerate", "0.00001")) // 1000))
        return {"fee_sat": sat_per_vb * PEGOUT_VSIZE, "fee_rate_sat_vb": sat_per_vb}

    def send_pending_pegouts(self) -> int:
        """Pay accepted peg-outs with sendtoaddress; return how many were sent or failed. Before
        paying, a peg-out whose payment is already in the wallet (a crash after sending, before
        recording) is recognised by its address and amount and only recorded."""
        done = 0
        for p in self.db.all("SELECT * FROM pegouts WHERE state = 'pending' ORDER BY created"):
            try:
                btxid = self._find_sent(p["address"], p["amount_sat"])
                if btxid is None:
                    btxid = self.chain.call(
                        "sendtoaddress", p["address"], f"{p['amount_sat'] / 1e8:.8f}", wallet=True
                    )
            except ChainError as exc:
                if exc.code not in DEFINITE_REFUSALS:
                    log.warning("peg-out %s not sent yet: %s", p["id"], exc.message)
                    continue
                log.warning("peg-out %s refused by the chain: %s", p["id"], exc.message)
                with self.db.tx() as c:
                    c.execute(
                        "UPDATE pegouts SET state = 'failed', error = ? WHERE id = ? AND state = 'pending'",
                        (f"the chain refused the payment: {exc.message}", p["id"]),
                    )
                done += 1
                continue
            with self.db.tx() as c:
                c.execute(
                    "UPDATE pegouts SET state = 'sent', btc_txid = ? WHERE id = ?", (btxid, p["id"])
                )
            done += 1
        if done:
            self.notify()
        return done

    def _check_pegout_refund(self, conn, i: int, inp: dict) -> Spend:  # type: ignore[no-untyped-def]
        """A `pegout_refund {pegout_id}` input: a failed peg-out's e-cash back, once, to its
        refund key."""
        pid = _hex(inp.get("pegout_id"), 32, f"input {i} pegout_id")
        row = conn.execute("SELECT * FROM pegouts WHERE id = ?", (pid,)).fetchone()
        if row is None:
            raise FedError("unknown_pegout", f"input {i}: no peg-out {pid}", 404)
        if row["spent_by"]:
            raise FedError("double_spend", f"input {i}: peg-out already refunded", 409)
        if row["state"] != "failed" or not row["refund_key"]:
            raise FedError(
                "pegout_not_failed",
                f"input {i}: peg-out is {row['state']}: only a failed one is refunded",
                409,
            )

        def apply(c, tid, pid=pid):  # type: ignore[no-untyped-def]
            cur = c.execute(
                "UPDATE pegouts SET state = 'refunded', spent_by = ? WHERE id = ? AND spent_by IS NULL",
                (tid, pid),
            )
            if cur.rowcount != 1:
                raise FedError("double_spend", "peg-out refunded twice in this transaction", 409)

        return Spend((row["amount_sat"] + row["fee_sat"]) * 1000, row["refund_key"], apply)

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
