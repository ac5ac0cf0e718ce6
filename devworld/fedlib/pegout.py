"""Peg-outs of a federation wallet: e-cash out to a Bitcoin address, and back if the chain
refuses the payment.

The address is parsed in full (gwcore.bitcoin_address, on the federation's network) before
anything is reserved, so a mistyped or wrong-network address costs nothing. A peg-out is an
operation of kind `pegout` whose `data["step"]` moves, each step persisted before the next:

    sending --the federation paid it on chain--> sent                  (state done)
            --the chain refused it--> refunding --refund accepted--> refunded   (state failed)

`refund_key` (kept in the operation) is the key the federation lets take a failed peg-out's
e-cash back, once; the refund is an ordinary transaction, so resubmitting it after a crash is
harmless. `settle_pegouts()` moves every unfinished peg-out on (the actor calls it in the
background, `resume()` callers may too).
"""

from __future__ import annotations

import time

from coincurve import PrivateKey

from gwcore.bitcoin_address import AddressError, parse_address

from . import crypto
from .api import FedApiError
from .wallet import FederationWallet, WalletError

FINISHED_STEPS = ("sent", "refunded")


class PegOuts(FederationWallet):
    def pegout_address(self, address: object) -> str:
        """The canonical spelling of `address` on this federation's network; WalletError
        `invalid_address` naming what is wrong if it is not one."""
        try:
            return parse_address(address, self.cfg.get("network", "regtest")).text
        except AddressError as exc:
            raise WalletError("invalid_address", str(exc)) from None

    def withdraw(self, amount_sat: int, address: str, timeout: float = 60.0) -> dict:
        """Send `amount_sat` on chain: its `pegout_status`, status `sent`, or `pending` when the
        federation has not paid it within `timeout` (it goes on: `settle_pegouts`). A refusal
        by the chain refunds the e-cash and raises WalletError `pegout_failed`."""
        if not isinstance(amount_sat, int) or isinstance(amount_sat, bool) or amount_sat <= 0:
            raise WalletError("invalid_amount", "amount must be a positive number of sats")
        address = self.pegout_address(address)
        try:
            fee = self.api.pegout_fees(address, amount_sat)["fee_sat"]
        except FedApiError as exc:
            raise WalletError(exc.code, exc.message) from None
        need = (amount_sat + fee) * 1000
        refund = PrivateKey()
        op = self._new_op(
            "pegout",
            {
                "amount_sat": amount_sat,
                "address": address,
                "fee_sat": fee,
                "refund_key": refund.secret.hex(),
                "step": "sending",
            },
        )
        with self.lock:
            notes = self._select(op, need)
        inputs, signers = self._note_inputs(notes)
        out = {
            "kind": "pegout",
            "amount_sat": amount_sat,
            "fee_sat": fee,
            "address": address,
            "refund_key": crypto.xonly(refund),
        }
        change = self._change_outputs(sum(n["amount"] for n in notes) - need, len(inputs), 1)
        self._run(op, inputs, signers, [out], change)
        deadline = time.monotonic() + timeout
        while True:
            status = self.settle_pegout(op)
            if status["status"] == "sent":
                return status
            if status["status"] == "failed":
                raise WalletError("pegout_failed", _failure_text(status))
            if time.monotonic() >= deadline:
                return {**status, "detail": "accepted by the federation, not yet sent on chain"}
            time.sleep(0.2)

    def pegout_status(self, op_id: str) -> dict:
        """{operation_id, status: pending | sent | failed, amount_sat, fee_sat, address, txid,
        error, refunded_msat} as last recorded (no federation call)."""
        op = self.operation(op_id)
        if op["kind"] != "pegout":
            raise WalletError("unknown_operation", f"operation {op_id} is not a peg-out")
        d = op["data"]
        step = d.get("step", "sent" if op["state"] == "done" and d.get("btc_txid") else "sending")
        status = {"sent": "sent", "refunded": "failed"}.get(step, "pending")
        if op["state"] == "failed" and step == "sending":  # refused before it was accepted
            status = "failed"
        return {
            "operation_id": op_id,
            "status": status,
            "amount_sat": d.get("amount_sat"),
            "fee_sat": d.get("fee_sat"),
            "address": d.get("address"),
            "txid": d.get("btc_txid"),
            "error": d.get("error"),
            "refunded_msat": d.get("refunded_msat", 0),
        }

    def settle_pegout(self, op_id: str) -> dict:
        """Move one peg-out on as far as the federation allows now; its `pegout_status`."""
        op = self.operation(op_id)
        d = op["data"]
        if d.get("step", "sending") in FINISHED_STEPS or op["state"] in ("created", "failed"):
            return self.pegout_status(op_id)
        if op["state"] == "submitted":  # a transaction of ours in flight: finish it first
            self.resume()
            op = self.operation(op_id)
            if op["state"] == "submitted":
                return self.pegout_status(op_id)
        tid = d["txs"][0]
        try:
            item = self.api.transaction(tid)["outcome"][0]
        except FedApiError:
            return self.pegout_status(op_id)  # asked again later
        step = d.get("step", "sending")
        if step == "sending" and item.get("state") == "sent" and item.get("txid"):
            self._update_op(op_id, "done", step="sent", btc_txid=item["txid"])
        elif step == "sending" and item.get("state") in ("failed", "refunded"):
            self._update_op(op_id, "waiting", step="refunding", error=item.get("error"))
            self._refund(op_id, item["pegout_id"])
        elif step == "refunding":
            self._refund(op_id, item["pegout_id"])
        return self.pegout_status(op_id)

    def _refund(self, op_id: str, pegout_id: str) -> None:
        """Take a refused peg-out's e-cash back (its second transaction: idempotent by id)."""
        d = self.operation(op_id)["data"]
        if len(d["txs"]) < 2:  # not yet built: build, persist and submit it
            value = (d["amount_sat"] + d["fee_sat"]) * 1000
            change = self._change_outputs(value, 1, 0)
            self._update_op(op_id, refund_msat=sum(change))
            inputs = [{"kind": "pegout_refund", "pegout_id": pegout_id}]
            key = PrivateKey(bytes.fromhex(d["refund_key"]))
            try:
                self._run(op_id, inputs, [key], [], change)
            except WalletError as exc:
                if exc.code != "federation_unreachable":
                    raise
                return  # persisted: resubmitted by the next call
        elif self.operation(op_id)["state"] == "submitted":
            self.resume()
        op = self.operation(op_id)
        if op["state"] == "done":  # the refund accepted: its notes are in the wallet
            self._update_op(
                op_id, "failed", step="refunded", refunded_msat=op["data"]["refund_msat"]
            )

    def settle_pegouts(self) -> list[dict]:
        """Move every unfinished peg-out on; the status of each one that finished now."""
        finished = []
        for op in self.operations_of("pegout", 100_000):
            d = op["data"]
            if op["state"] == "created" or d.get("step", "sending") in FINISHED_STEPS:
                continue
            if op["state"] == "failed" and d.get("step", "sending") == "sending":
                continue  # refused by the federation itself: nothing was taken
            status = self.settle_pegout(op["id"])
            if status["status"] != "pending":
                finished.append(status)
        return finished


def _failure_text(status: dict) -> str:
    return (
        f"{status['error'] or 'the chain refused the peg-out'}; "
        f"{status['refunded_msat']} msat came back to the wallet"
    )
