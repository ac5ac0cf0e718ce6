"""The federation's rules: keys and config, transaction validation and atomic application, the
Lightning module's contracts and offers, the wallet module's peg-ins and peg-outs, gateways.

`submit` checks a whole transaction before it writes anything, then applies it in one SQLite
transaction under the lock; a rejected transaction changes nothing. Resubmitting an accepted
transaction returns its stored outcome. The engine knows nothing of HTTP (api.py does).

Contract states:
  outgoing:  funded --claim(preimage, gateway key, height < timelock)--> claimed
                    --cancel_outgoing(gateway signature)--> cancelled --refund(user key)--> refunded
                    --refund(user key, height >= timelock)--> refunded
  incoming:  funded against an offer, decrypted at once:
                    valid   --incoming_claim(key whose x-only key is the preimage)--> claimed
                    invalid --incoming_refund(gateway key)--> refunded
  peg-out:   pending --sendtoaddress--> sent
                     --the chain refuses it (a definite RPC error)--> failed
             failed  --pegout_refund(refund key)--> refunded (the e-cash back, once)
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from typing import Any

from coincurve import PrivateKey

from devworld.fedlib import crypto
from devworld.fedlib.tx import (
    DENOMINATIONS,
    cancel_message,
    canonical,
    contract_id,
    txid,
)

from .chain import ChainError, ChainRpc
from .registry_module import GATEWAY_TTL_S, RegistryModule
from .store import FedDB
from .validation import FedError, Spend, _hex, _int, _key
from .wallet_module import WalletModule

log = logging.getLogger(__name__)

TIMED_KINDS = frozenset({"outgoing_claim", "outgoing_refund", "outgoing_contract"})
MAX_ITEMS = 1000


class Federation(WalletModule, RegistryModule):
    def __init__(
        self,
        db: FedDB,
        chain: ChainRpc,
        *,
        name: str,
        api_url: str,
        deposit_confirmations: int = 1,
        input_fee_msat: int = 0,
        output_fee_msat: int = 0,
    ) -> None:
        self.db, self.chain = db, chain
        self.deposit_confirmations = deposit_confirmations
        self.input_fee, self.output_fee = input_fee_msat, output_fee_msat
        self.network = "regtest"
        self.changed = threading.Condition()
        secret = db.meta("guardian_secret")
        if secret is None:
            secret = PrivateKey().secret.hex()
            db.set_meta("guardian_secret", secret)
            db.set_meta("name", name)
            db.set_meta("created", str(int(time.time())))
        seed = bytes.fromhex(secret)
        self.mint_keys = {
            d: PrivateKey(hashlib.sha256(seed + b"mint" + d.to_bytes(8, "big")).digest())
            for d in DENOMINATIONS
        }
        self.encryption_key = PrivateKey(hashlib.sha256(seed + b"offer-encryption").digest())
        self.name = db.meta("name") or name
        public = {
            "name": self.name,
            "network": self.network,
            "modules": {
                "mint": {
                    "denominations": {
                        str(d): k.public_key.format().hex() for d, k in self.mint_keys.items()
                    }
                },
                "ln": {
                    "encryption_key": self.encryption_key.public_key.format().hex(),
                    "gateway_ttl_s": GATEWAY_TTL_S,
                },
                "wallet": {"deposit_confirmations": deposit_confirmations, "network": "regtest"},
            },
            "fees": {"input_msat": input_fee_msat, "output_msat": output_fee_msat},
        }
        self.federation_id = hashlib.sha256(
            canonical({k: public[k] for k in ("name", "modules")})
        ).hexdigest()
        self.config = {"federation_id": self.federation_id, "api_url": api_url, **public}

    def notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def wait_until(self, check, timeout: float):  # type: ignore[no-untyped-def]
        """Long-poll helper: call `check()` until it returns something, or `timeout` passes."""
        deadline = time.monotonic() + max(0.0, min(timeout, 60.0))
        while True:
            result = check()
            left = deadline - time.monotonic()
            if result is not None or left <= 0:
                return result
            with self.changed:
                self.changed.wait(min(left, 0.5))

    def height(self, *, fresh: bool = False) -> int:
        try:
            return self.chain.height(max_age_s=0.0 if fresh else 0.25)
        except ChainError as exc:
            raise FedError("chain_unavailable", exc.message, 503) from None

    # --- transactions -------------------------------------------------------------------------
    def submit(self, tx: Any) -> dict:
        if (
            not isinstance(tx, dict)
            or not isinstance(tx.get("inputs"), list)
            or not isinstance(tx.get("outputs"), list)
        ):
            raise FedError(
                "invalid_input",
                "a transaction is {inputs: [...], outputs: [...], signatures: [...]}",
            )
        inputs, outputs = tx["inputs"], tx["outputs"]
        sigs = tx.get("signatures", [])
        if not inputs and not outputs:
            raise FedError("invalid_input", "empty transaction")
        if len(inputs) > MAX_ITEMS or len(outputs) > MAX_ITEMS:
            raise FedError("invalid_input", f"at most {MAX_ITEMS} inputs and outputs")
        if not isinstance(sigs, list) or len(sigs) != len(inputs):
            raise FedError("invalid_input", "one signature per input ('' where none is needed)")
        if not all(isinstance(x, dict) for x in inputs + outputs):
            raise FedError("invalid_input", "inputs and outputs are objects")
        tid = txid(tx)
        with self.db.tx() as conn:
            row = conn.execute("SELECT outcome FROM txs WHERE txid = ?", (tid,)).fetchone()
            if row is not None:
                return {"txid": tid, "status": "accepted", "outcome": json.loads(row["outcome"])}
            # timelocks are judged against the chain as it is now, not a cached height
            timed = any(x.get("kind") in TIMED_KINDS for x in inputs + outputs)
            height, now = self.height(fresh=timed), int(time.time())
            spends = [self._check_input(conn, i, inp, height) for i, inp in enumerate(inputs)]
            msg = bytes.fromhex(tid)
            for i, (spend, sig) in enumerate(zip(spends, sigs, strict=True)):
                if spend.signer is not None and not (
                    isinstance(sig, str) and crypto.schnorr_verify(spend.signer, msg, sig)
                ):
                    raise FedError(
                        "invalid_signature", f"input {i}: missing or wrong signature", 400
                    )
            makes = [self._check_output(conn, i, out, height, now) for i, out in enumerate(outputs)]
            fees = self.input_fee * len(inputs) + self.output_fee * len(outputs)
            total_in, total_out = sum(s.amount for s in spends), sum(m[0] for m in makes)
            if total_in != total_out + fees:
                raise FedError(
                    "unbalanced",
                    f"inputs {total_in} msat != outputs {total_out} msat + fees {fees} msat",
                )
            self._check_reserves(conn, outputs)
            for spend in spends:
                spend.apply(conn, tid)
            outcome = [make(conn, tid, i) for i, (_, make) in enumerate(makes)]
            conn.execute(
                "INSERT INTO txs (txid, tx, outcome, created) VALUES (?, ?, ?, ?)",
                (tid, json.dumps(tx), json.dumps(outcome), now),
            )
            if fees:
                prev = int(self.db.meta("fees_msat") or 0)
                self.db.set_meta("fees_msat", str(prev + fees))
        self.notify()
        return {"txid": tid, "status": "accepted", "outcome": outcome}

    def transaction(self, tid: str) -> dict | None:
        row = self.db.one("SELECT outcome FROM txs WHERE txid = ?", tid)
        if row is None:
            return None
        outcome = json.loads(row["outcome"])
        for item in outcome:  # peg-outs learn their bitcoin txid after acceptance
            if "pegout_id" in item:
                p = self.db.one(
                    "SELECT state, btc_txid, error, spent_by FROM pegouts WHERE id = ?",
                    item["pegout_id"],
                )
                item.update(
                    state=p["state"],
                    txid=p["btc_txid"],
                    error=p["error"],
                    refunded_by=p["spent_by"],
                )
        return {"txid": tid, "status": "accepted", "outcome": outcome}

    # --- inputs -------------------------------------------------------------------------------
    def _check_input(self, conn, i: int, inp: dict, height: int) -> Spend:  # type: ignore[no-untyped-def]
        kind = inp.get("kind")
        if kind == "note":
            amount = inp.get("amount")
            if amount not in self.mint_keys:
                raise FedError("invalid_input", f"input {i}: {amount!r} is not a denomination")
            nonce = _key(inp.get("nonce"), f"input {i} nonce")
            try:
                sig = crypto.point(_hex(inp.get("signature"), 33, f"input {i} signature"))
            except crypto.CryptoError:
                raise FedError(
                    "invalid_note", f"input {i}: note signature is not a point"
                ) from None
            if not crypto.verify_note(self.mint_keys[amount], bytes.fromhex(nonce), sig):
                raise FedError("invalid_note", f"input {i}: note was not issued by this federation")
            if conn.execute("SELECT 1 FROM spent_notes WHERE nonce = ?", (nonce,)).fetchone():
                raise FedError("double_spend", f"input {i}: note already spent", 409)

            def apply(c, tid, nonce=nonce, amount=amount):  # type: ignore[no-untyped-def]
                try:
                    c.execute(
                        "INSERT INTO spent_notes (nonce, amount, txid) VALUES (?, ?, ?)",
                        (nonce, amount, tid),
                    )
                except Exception:
                    raise FedError(
                        "double_spend", "a note is spent twice in this transaction", 409
                    ) from None

            return Spend(amount, nonce, apply)
        if kind in ("outgoing_claim", "outgoing_refund"):
            cid = _hex(inp.get("contract_id"), 32, f"input {i} contract_id")
            row = conn.execute("SELECT * FROM outgoing WHERE contract_id = ?", (cid,)).fetchone()
            if row is None:
                raise FedError("unknown_contract", f"input {i}: no outgoing contract {cid}", 404)
            if row["spent_by"]:
                raise FedError(
                    "contract_spent", f"input {i}: contract already claimed or refunded", 409
                )
            if kind == "outgoing_claim":
                pre = _hex(inp.get("preimage"), 32, f"input {i} preimage")
                if hashlib.sha256(bytes.fromhex(pre)).hexdigest() != row["payment_hash"]:
                    raise FedError(
                        "wrong_preimage", f"input {i}: preimage does not match the payment hash"
                    )
                if height >= row["timelock"]:
                    raise FedError(
                        "timelock_passed",
                        f"input {i}: timelock {row['timelock']} reached (height {height})",
                        409,
                    )
                if row["cancelled"]:
                    raise FedError(
                        "contract_cancelled", f"input {i}: the gateway cancelled this contract", 409
                    )
                signer = row["gateway_key"]
            else:
                if height < row["timelock"] and not row["cancelled"]:
                    raise FedError(
                        "timelock_not_reached",
                        f"input {i}: refund possible at height {row['timelock']} (now {height})",
                        409,
                    )
                pre, signer = None, row["user_key"]

            def apply(c, tid, cid=cid, pre=pre):  # type: ignore[no-untyped-def]
                c.execute(
                    "UPDATE outgoing SET spent_by = ?, preimage = ? WHERE contract_id = ?",
                    (tid, pre, cid),
                )

            return Spend(row["amount"], signer, apply)
        if kind in ("incoming_claim", "incoming_refund"):
            cid = _hex(inp.get("contract_id"), 32, f"input {i} contract_id")
            row = conn.execute("SELECT * FROM incoming WHERE contract_id = ?", (cid,)).fetchone()
            if row is None:
                raise FedError("unknown_contract", f"input {i}: no incoming contract {cid}", 404)
            if row["spent_by"]:
                raise FedError(
                    "contract_spent", f"input {i}: contract already claimed or refunded", 409
                )
            if kind == "incoming_claim":
                if not row["valid"]:
                    raise FedError(
                        "invalid_preimage",
                        f"input {i}: the offer's preimage was invalid: only the gateway can refund",
                        409,
                    )
                signer = row["preimage"]
            else:
                if row["valid"]:
                    raise FedError(
                        "contract_valid",
                        f"input {i}: the preimage was valid: the receiver claims it",
                        409,
                    )
                signer = row["gateway_key"]

            def apply(c, tid, cid=cid):  # type: ignore[no-untyped-def]
                c.execute("UPDATE incoming SET spent_by = ? WHERE contract_id = ?", (tid, cid))

            return Spend(row["amount"], signer, apply)
        if kind == "pegin":
            btxid = _hex(inp.get("txid"), 32, f"input {i} txid")
            vout = _int(inp.get("vout"), f"input {i} vout")
            if conn.execute(
                "SELECT 1 FROM pegins WHERE txid = ? AND vout = ?", (btxid, vout)
            ).fetchone():
                raise FedError("double_spend", f"input {i}: deposit already claimed", 409)
            deposit = self._deposit(btxid, vout)
            if deposit is None:
                raise FedError(
                    "unknown_deposit",
                    f"input {i}: no deposit {btxid}:{vout} to this federation",
                    404,
                )
            if deposit["confirmations"] < self.deposit_confirmations:
                raise FedError(
                    "unconfirmed_deposit",
                    f"input {i}: {deposit['confirmations']} of {self.deposit_confirmations} confirmations",
                    409,
                )

            def apply(c, tid, btxid=btxid, vout=vout, sats=deposit["amount_sat"]):  # type: ignore[no-untyped-def]
                c.execute(
                    "INSERT INTO pegins (txid, vout, amount_sat, claimed_by) VALUES (?, ?, ?, ?)",
                    (btxid, vout, sats, tid),
                )

            return Spend(deposit["amount_sat"] * 1000, deposit["user_key"], apply)
        if kind == "pegout_refund":
            return self._check_pegout_refund(conn, i, inp)
        raise FedError("invalid_input", f"input {i}: unknown kind {kind!r}")

    # --- outputs ------------------------------------------------------------------------------
    def _check_output(self, conn, i: int, out: dict, height: int, now: int):  # type: ignore[no-untyped-def]
        """(amount msat, make(conn, txid, index) -> outcome) for a checked output."""
        kind = out.get("kind")
        if kind == "note":
            amount = out.get("amount")
            if amount not in self.mint_keys:
                raise FedError("invalid_input", f"output {i}: {amount!r} is not a denomination")
            try:
                blinded = crypto.point(_hex(out.get("blinded"), 33, f"output {i} blinded"))
            except crypto.CryptoError:
                raise FedError(
                    "invalid_blind_message", f"output {i}: blinded message is not a point"
                ) from None

            def make(c, tid, idx, amount=amount, blinded=blinded):  # type: ignore[no-untyped-def]
                c_, e, s = crypto.sign_blinded(self.mint_keys[amount], blinded)
                c.execute(
                    "INSERT INTO issued_notes (txid, idx, amount) VALUES (?, ?, ?)",
                    (tid, idx, amount),
                )
                return {
                    "blind_signature": c_.format().hex(),
                    "dleq_e": f"{e:064x}",
                    "dleq_s": f"{s:064x}",
                }

            return amount, make
        if kind == "outgoing_contract":
            amount = _int(out.get("amount"), f"output {i} amount", 1)
            ph = _hex(out.get("payment_hash"), 32, f"output {i} payment_hash")
            gw, user = (
                _key(out.get("gateway_key"), "gateway_key"),
                _key(out.get("user_key"), "user_key"),
            )
            timelock = _int(out.get("timelock"), f"output {i} timelock")
            if timelock <= height:
                raise FedError(
                    "invalid_input", f"output {i}: timelock {timelock} is not above height {height}"
                )
            invoice = out.get("invoice", "")
            if not isinstance(invoice, str) or len(invoice) > 4096:
                raise FedError(
                    "invalid_input",
                    f"output {i}: invoice must be a string of at most 4096 characters",
                )

            def make(c, tid, idx):  # type: ignore[no-untyped-def]
                cid = contract_id(tid, idx)
                c.execute(
                    "INSERT INTO outgoing (contract_id, amount, payment_hash, gateway_key, user_key, timelock, invoice, txid)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (cid, amount, ph, gw, user, timelock, invoice, tid),
                )
                return {"contract_id": cid}

            return amount, make
        if kind == "cancel_outgoing":
            cid = _hex(out.get("contract_id"), 32, f"output {i} contract_id")
            row = conn.execute("SELECT * FROM outgoing WHERE contract_id = ?", (cid,)).fetchone()
            if row is None:
                raise FedError("unknown_contract", f"output {i}: no outgoing contract {cid}", 404)
            if row["spent_by"]:
                raise FedError(
                    "contract_spent", f"output {i}: contract already claimed or refunded", 409
                )
            sig = out.get("gateway_signature")
            if not (
                isinstance(sig, str)
                and crypto.schnorr_verify(row["gateway_key"], cancel_message(cid), sig)
            ):
                raise FedError(
                    "invalid_signature",
                    f"output {i}: cancellation not signed by the contract's gateway",
                )

            def make(c, tid, idx, cid=cid):  # type: ignore[no-untyped-def]
                c.execute("UPDATE outgoing SET cancelled = 1 WHERE contract_id = ?", (cid,))
                return {"cancelled": cid}

            return 0, make
        if kind == "offer":
            amount = _int(out.get("amount"), f"output {i} amount", 1)
            ph = _hex(out.get("payment_hash"), 32, f"output {i} payment_hash")
            enc = _hex(out.get("encrypted_preimage"), None, f"output {i} encrypted_preimage")
            if not 33 + 16 < len(enc) // 2 <= 256:
                raise FedError(
                    "invalid_input", f"output {i}: encrypted_preimage has the wrong size"
                )
            expiry = _int(out.get("expiry"), f"output {i} expiry")
            if expiry <= now:
                raise FedError("invalid_input", f"output {i}: offer expiry is in the past")
            if conn.execute("SELECT 1 FROM offers WHERE payment_hash = ?", (ph,)).fetchone():
                raise FedError(
                    "offer_exists", f"output {i}: an offer for this payment hash exists", 409
                )

            def make(c, tid, idx):  # type: ignore[no-untyped-def]
                c.execute(
                    "INSERT INTO offers (payment_hash, amount, encrypted_preimage, expiry, txid) VALUES (?, ?, ?, ?, ?)",
                    (ph, amount, enc, expiry, tid),
                )
                return {"offer": ph}

            return 0, make
        if kind == "incoming_contract":
            amount = _int(out.get("amount"), f"output {i} amount", 1)
            ph = _hex(out.get("payment_hash"), 32, f"output {i} payment_hash")
            gw = _key(out.get("gateway_key"), "gateway_key")
            offer = conn.execute("SELECT * FROM offers WHERE payment_hash = ?", (ph,)).fetchone()
            if offer is None:
                raise FedError("unknown_offer", f"output {i}: no offer for this payment hash", 404)
            if offer["funded_by"]:
                raise FedError("offer_funded", f"output {i}: offer already funded", 409)
            if offer["expiry"] <= now:
                raise FedError("offer_expired", f"output {i}: offer expired", 409)
            if amount < offer["amount"]:
                raise FedError(
                    "underfunded",
                    f"output {i}: {amount} msat is below the offer's {offer['amount']} msat",
                )
            try:
                pre = crypto.ecies_decrypt(
                    self.encryption_key, bytes.fromhex(offer["encrypted_preimage"])
                )
            except crypto.CryptoError:
                pre = b""
            valid = (
                len(pre) == 32
                and hashlib.sha256(pre).hexdigest() == ph
                and crypto.valid_xonly(pre.hex())
            )

            def make(c, tid, idx):  # type: ignore[no-untyped-def]
                cid = contract_id(tid, idx)
                c.execute(
                    "INSERT INTO incoming (contract_id, amount, payment_hash, gateway_key, preimage, valid, txid)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (cid, amount, ph, gw, pre.hex() if valid else None, int(valid), tid),
                )
                c.execute("UPDATE offers SET funded_by = ? WHERE payment_hash = ?", (cid, ph))
                return {
                    "contract_id": cid,
                    "valid": valid,
                    "preimage": pre.hex() if valid else None,
                }

            return amount, make
        if kind == "pegout":
            sats = _int(out.get("amount_sat"), f"output {i} amount_sat", 546)
            fee = _int(out.get("fee_sat"), f"output {i} fee_sat")
            address = self.parse_pegout_address(out.get("address"), f"output {i}: ")
            refund_key = _key(out.get("refund_key"), f"output {i} refund_key")
            quote = self.pegout_fee(address, sats)["fee_sat"]
            if fee < quote:
                raise FedError(
                    "fee_too_low", f"output {i}: fee {fee} sat is below the quote {quote} sat"
                )

            def make(c, tid, idx):  # type: ignore[no-untyped-def]
                pid = contract_id(tid, idx)
                c.execute(
                    "INSERT INTO pegouts (id, address, amount_sat, fee_sat, state, created, refund_key)"
                    " VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                    (pid, address, sats, fee, now, refund_key),
                )
                return {"pegout_id": pid}

            return (sats + fee) * 1000, make
        raise FedError("invalid_input", f"output {i}: unknown kind {kind!r}")
