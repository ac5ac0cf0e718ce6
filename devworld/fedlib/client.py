"""Module operations of a federation wallet: peg-in, peg-out, Lightning receive and pay, and the
gateway role (claim/cancel outgoing contracts, fund/refund incoming ones, register).

Lightning receive (as in Fedimint): the receiver makes a key k; the preimage is k's x-only public
key, the payment hash its SHA-256; the preimage goes into an offer encrypted to the federation;
the invoice's last route hint is the gateway's virtual channel for this federation. When a
gateway funds the incoming contract the federation decrypts the preimage, and only k can claim.

Lightning pay: the payer locks invoice amount + gateway fee in an outgoing contract (timelock =
height + 500) that the gateway can claim with the preimage, then asks the gateway to pay. If the
gateway fails it cancels the contract and the payer refunds at once; otherwise the payer refunds
after the timelock.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import httpx
from bolt11 import Bolt11, MilliSatoshi
from bolt11 import decode as bolt11_decode
from bolt11 import encode as bolt11_encode
from bolt11.models.features import Feature, Features, FeatureState
from bolt11.models.routehint import Route, RouteHint
from bolt11.models.tags import TagChar, Tags
from coincurve import PrivateKey

from . import crypto
from .api import FedApiError
from .gateway_role import DEFAULT_CLTV_DELTA, GatewayRole
from .notes import encode_notes
from .pegout import PegOuts
from .tx import backup_message
from .wallet import WalletError

OUTGOING_TIMELOCK_DELTA = 500


def _scid_str(scid: int) -> str:
    return f"{scid >> 40}x{(scid >> 16) & 0xFFFFFF}x{scid & 0xFFFF}"


class FederationClient(GatewayRole, PegOuts):
    """A federation user's wallet (peg-in, peg-out (PegOuts), Lightning receive and pay,
    backups), and the gateway role its actors use (GatewayRole)."""

    _gateway_http: httpx.Client | None = None

    @property
    def gateway_http(self) -> httpx.Client:
        """One pooled HTTP client for the gateways this wallet pays through (made on first use;
        a new TLS context per /pay_invoice cost ~17 ms). Separate from the federation's client,
        which may be bound to the federation's own transport."""
        if self._gateway_http is None:
            self._gateway_http = httpx.Client()
        return self._gateway_http

    # --- peg-in -------------------------------------------------------------------------------
    def deposit_address(self) -> tuple[str, str]:
        """(operation id, a new peg-in address). Coins sent there become notes after the
        federation's required confirmations (`await_deposit`)."""
        key = PrivateKey()
        op = self._new_op("pegin", {"user_key": key.secret.hex(), "claimed": []})
        try:
            address = self.api.pegin_address(crypto.xonly(key))
        except FedApiError as exc:
            self._update_op(op, "failed", error=exc.message)
            raise WalletError(exc.code, exc.message) from None
        self._update_op(op, "waiting", address=address)
        return op, address

    def pegin_addresses(self, limit: int = 10_000) -> dict[str, str]:
        """{peg-in address: its operation id} of this wallet's newest `limit` addresses."""
        return {
            o["data"]["address"]: o["id"]
            for o in self.operations_of("pegin", limit)
            if o["data"].get("address")
        }

    def find_deposit(self, txid: str) -> str | None:
        """The peg-in operation whose address received transaction `txid` (seen by the
        federation's chain, confirmed or not); None if it paid none of ours."""
        for address, op_id in self.pegin_addresses().items():
            try:
                if any(d["txid"] == txid for d in self.api.deposits(address)):
                    return op_id
            except FedApiError as exc:
                code = "federation_unreachable" if exc.unreachable else exc.code
                raise WalletError(code, exc.message) from None
        return None

    def credited_by(self, txid: str) -> int:
        """msat already credited to this wallet by claims of transaction `txid`."""
        return sum(
            o["data"].get("amount_msat", 0)
            for o in self.operations_of("pegin-claim", 100_000)
            if o["data"].get("txid") == txid and o["state"] == "done"
        )

    def await_deposit(self, op_id: str, timeout: float = 60.0, txid: str | None = None) -> int:
        """Claim the deposits to this operation's address once confirmed (only those of
        transaction `txid` if given); the msat credited. Raises WalletError("pending") if none
        is confirmed before `timeout`."""
        op = self.operation(op_id)
        if op["kind"] != "pegin":
            raise WalletError("invalid_input", f"{op_id} is not a deposit")
        key = PrivateKey(bytes.fromhex(op["data"]["user_key"]))
        deadline = time.monotonic() + timeout
        credited, seen = 0, None
        while True:
            try:
                deposits = self.api.deposits(op["data"]["address"])
            except FedApiError as exc:
                code = "federation_unreachable" if exc.unreachable else exc.code
                raise WalletError(code, exc.message) from None
            for d in deposits:
                if txid is not None and d["txid"] != txid:
                    continue
                seen = d
                if d["claimable"]:
                    change = self._change_outputs(d["amount_sat"] * 1000, 1, 0)
                    claim = self._new_op(
                        "pegin-claim",
                        {
                            "pegin_op": op_id,
                            "txid": d["txid"],
                            "vout": d["vout"],
                            "amount_msat": sum(change),
                        },
                    )
                    self._run(
                        claim,
                        [{"kind": "pegin", "txid": d["txid"], "vout": d["vout"]}],
                        [key],
                        [],
                        change,
                    )
                    credited += sum(change)
            if credited or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        if not credited:
            if seen is not None and seen.get("claimed_by"):
                raise WalletError("already_claimed", f"deposit {seen['txid']} was already claimed")
            if seen is None:
                what = f"transaction {txid} to {op['data']['address']}" if txid else "deposit"
                raise WalletError("pending", f"no {what} seen yet")
            raise WalletError(
                "pending",
                f"deposit {seen['txid']} has {seen['confirmations']} confirmation(s); "
                "mine blocks or wait, then ask again",
            )
        self._update_op(
            op_id, "waiting", credited_msat=op["data"].get("credited_msat", 0) + credited
        )
        return credited

    # --- Lightning: receive -------------------------------------------------------------------
    def pick_gateway(self, gateway_key: str | None = None) -> dict:
        gateways = self.api.gateways()
        if gateway_key:
            gateways = [g for g in gateways if g["gateway_key"] == gateway_key]
        if not gateways:
            raise WalletError(
                "no_gateway",
                "no gateway is registered with this federation"
                + (f" as {gateway_key}" if gateway_key else ""),
            )
        return gateways[0]

    def ln_receive(
        self,
        amount_msat: int,
        description: str = "",
        gateway_key: str | None = None,
        expiry_s: int = 3600,
    ) -> tuple[str, str]:
        """(operation id, BOLT11 invoice) to be paid through a gateway into this wallet."""
        if not isinstance(amount_msat, int) or amount_msat <= 0:
            raise WalletError("invalid_amount", "amount must be a positive number of msat")
        gw = self.pick_gateway(gateway_key)
        k = PrivateKey()
        preimage = bytes.fromhex(crypto.xonly(k))
        payment_hash = hashlib.sha256(preimage).hexdigest()
        enc = crypto.ecies_encrypt(
            crypto.point(self.cfg["modules"]["ln"]["encryption_key"]), preimage
        )
        node_key = PrivateKey()
        invoice = self._invoice(node_key, payment_hash, amount_msat, description, expiry_s, gw)
        op = self._new_op(
            "ln-receive",
            {
                "claim_key": k.secret.hex(),
                "payment_hash": payment_hash,
                "invoice": invoice,
                "amount_msat": amount_msat,
                "gateway": gw["gateway_key"],
            },
        )
        offer = {
            "kind": "offer",
            "amount": amount_msat,
            "payment_hash": payment_hash,
            "encrypted_preimage": enc.hex(),
            "expiry": int(time.time()) + expiry_s,
        }
        self._run_paid(op, [offer])  # an offer is worth nothing: only fees, if any
        self._update_op(op, "waiting")
        return op, invoice

    @staticmethod
    def _invoice(
        node_key: PrivateKey,
        payment_hash: str,
        amount: int,
        description: str,
        expiry_s: int,
        gw: dict,
    ) -> str:
        tags = Tags()
        tags.add(TagChar.payment_hash, payment_hash)
        tags.add(TagChar.payment_secret, os.urandom(32).hex())
        tags.add(TagChar.description, description)
        tags.add(TagChar.expire_time, expiry_s)
        tags.add(TagChar.min_final_cltv_expiry, 18)
        tags.add(
            TagChar.features,
            Features.from_feature_list(
                {
                    Feature.var_onion_optin: FeatureState.required,
                    Feature.payment_secret: FeatureState.required,
                }
            ),
        )
        last = Route(
            gw["node_pubkey"],
            _scid_str(gw["scid"]),
            gw["fees"]["base_msat"],
            gw["fees"]["proportional_millionths"],
            gw.get("cltv_delta", DEFAULT_CLTV_DELTA),
        )
        hints = gw.get("route_hints") or [[]]
        for hint in hints:
            routes = [
                Route(
                    h["pubkey"],
                    _scid_str(int(h["scid"])),
                    int(h["base_msat"]),
                    int(h["ppm"]),
                    int(h["cltv_delta"]),
                )
                for h in hint
            ]
            tags.add(TagChar.route_hint, RouteHint([*routes, last]))
        return bolt11_encode(
            Bolt11("bcrt", int(time.time()), tags, MilliSatoshi(amount)), node_key.secret.hex()
        )

    def await_ln_receive(self, op_id: str, timeout: float = 60.0) -> int:
        """Wait for the gateway to fund the incoming contract, then claim it; the msat received."""
        op = self.operation(op_id)
        if op["kind"] != "ln-receive":
            raise WalletError("invalid_input", f"{op_id} is not a Lightning receive")
        if op["state"] == "done" and op["data"].get("received_msat"):
            return op["data"]["received_msat"]
        deadline = time.monotonic() + timeout
        cid = None
        while time.monotonic() < deadline:
            offer = self.api.offer(
                op["data"]["payment_hash"], wait=min(10.0, max(0.0, deadline - time.monotonic()))
            )
            if offer.get("funded_by"):
                cid = offer["funded_by"]
                break
        if cid is None:
            raise WalletError("timeout", "the invoice has not been paid yet")
        contract = self.api.contract(cid)
        if not contract["valid"]:
            raise WalletError(
                "invalid_contract", "the federation could not decrypt a valid preimage"
            )
        k = PrivateKey(bytes.fromhex(op["data"]["claim_key"]))
        change = self._change_outputs(contract["amount"], 1, 0)
        if not contract["spent_by"]:
            self._run(op_id, [{"kind": "incoming_claim", "contract_id": cid}], [k], [], change)
        self._update_op(op_id, "done", contract_id=cid, received_msat=sum(change))
        return sum(change)

    # --- Lightning: pay -----------------------------------------------------------------------
    def ln_pay(
        self, bolt11: str, gateway_key: str | None = None, *, refund_wait_s: float = 0.0
    ) -> dict:
        """Pay a BOLT11 invoice through a gateway; {preimage} or a refund."""
        try:
            inv = bolt11_decode(bolt11)
        except Exception as exc:
            raise WalletError("invalid_invoice", f"cannot decode invoice: {exc}") from None
        if not inv.amount_msat:
            raise WalletError("invalid_invoice", "invoices without an amount are not supported")
        if inv.has_expired():
            raise WalletError("invalid_invoice", "invoice has expired")
        gw = self.pick_gateway(gateway_key)
        fee = (
            gw["fees"]["base_msat"]
            + inv.amount_msat * gw["fees"]["proportional_millionths"] // 1_000_000
        )
        amount = inv.amount_msat + fee
        user = PrivateKey()
        timelock = self.api.block_height() + OUTGOING_TIMELOCK_DELTA
        op = self._new_op(
            "ln-pay",
            {
                "user_key": user.secret.hex(),
                "invoice": bolt11,
                "gateway": gw["gateway_key"],
                "amount_msat": amount,
                "fee_msat": fee,
                "timelock": timelock,
            },
        )
        with self.lock:
            notes = self._select(op, amount)
        inputs, signers = self._note_inputs(notes)
        contract = {
            "kind": "outgoing_contract",
            "amount": amount,
            "payment_hash": inv.payment_hash,
            "gateway_key": gw["gateway_key"],
            "user_key": crypto.xonly(user),
            "timelock": timelock,
            "invoice": bolt11,
        }
        change = self._change_outputs(sum(n["amount"] for n in notes) - amount, len(inputs), 1)
        outcome = self._run(op, inputs, signers, [contract], change)
        cid = outcome[0]["contract_id"]
        self._update_op(op, "paying", contract_id=cid)
        try:
            r = self.gateway_http.post(
                gw["api_url"].rstrip("/") + "/pay_invoice",
                json={"federation_id": self.federation_id, "contract_id": cid},
                timeout=120,
            )
            if r.status_code == 200:
                data = r.json()  # the 2023 API answers the preimage as a JSON string
                preimage = data if isinstance(data, str) else data.get("preimage")
                if (
                    preimage
                    and hashlib.sha256(bytes.fromhex(preimage)).hexdigest() == inv.payment_hash
                ):
                    self._update_op(op, "done", preimage=preimage)
                    return {
                        "operation": op,
                        "contract_id": cid,
                        "preimage": preimage,
                        "fee_msat": fee,
                    }
            reason = f"gateway answered HTTP {r.status_code}: {r.text[:200]}"
        except httpx.HTTPError as exc:
            reason = f"gateway unreachable: {exc}"
        self._update_op(op, "failed-paying", error=reason)
        refunded = self.refund_outgoing(op, wait_s=refund_wait_s)
        return {
            "operation": op,
            "contract_id": cid,
            "preimage": None,
            "error": reason,
            "refunded_msat": refunded,
        }

    def refund_outgoing(self, op_id: str, wait_s: float = 0.0) -> int:
        """Refund an outgoing contract once cancelled or past its timelock (0 if not yet)."""
        op = self.operation(op_id)
        cid = op["data"]["contract_id"]
        deadline = time.monotonic() + wait_s
        while True:
            c = self.api.contract(cid)
            if c["spent_by"]:
                return 0 if c.get("preimage") else op["data"].get("refunded_msat", 0)
            if c["cancelled"] or self.api.block_height() >= c["timelock"]:
                break
            if time.monotonic() >= deadline:
                self._update_op(op_id, "awaiting-refund")
                return 0
            time.sleep(0.5)
        user = PrivateKey(bytes.fromhex(op["data"]["user_key"]))
        change = self._change_outputs(c["amount"], 1, 0)
        self._run(op_id, [{"kind": "outgoing_refund", "contract_id": cid}], [user], [], change)
        self._update_op(op_id, "refunded", refunded_msat=sum(change))
        return sum(change)

    # --- backup -------------------------------------------------------------------------------
    def backup(self, key: PrivateKey) -> dict:
        """Upload the unspent notes, encrypted to `key` (only its holder can read them)."""
        notes = [
            {"amount": n["amount"], "spend_key": n["spend_key"], "signature": n["signature"]}
            for n in self.db.execute("SELECT * FROM notes WHERE state = 'unspent'").fetchall()
        ]
        blob = crypto.ecies_encrypt(
            key.public_key, json.dumps({"notes": notes, "at": int(time.time())}).encode()
        ).hex()
        user = crypto.xonly(key)
        self.api.put_backup(user, blob, crypto.schnorr_sign(key, backup_message(user, blob)))
        return {"notes": len(notes), "amount_msat": sum(n["amount"] for n in notes)}

    def restore(self, key: PrivateKey) -> int:
        """Take back the notes of the backup made with `key` that are still unspent; the msat restored."""
        try:
            blob = self.api.get_backup(crypto.xonly(key))["data"]
            notes = json.loads(crypto.ecies_decrypt(key, bytes.fromhex(blob)))["notes"]
        except FedApiError as exc:
            raise WalletError(exc.code, exc.message) from None
        except (crypto.CryptoError, ValueError, KeyError):
            raise WalletError("invalid_backup", "the backup cannot be read with this key") from None
        restored = 0
        for n in notes:  # one by one: notes spent since the backup are refused, the rest come back
            nonce = crypto.xonly(PrivateKey(bytes.fromhex(n["spend_key"])))
            if self.db.execute(
                "SELECT 1 FROM notes WHERE nonce = ? AND state = 'unspent'", (nonce,)
            ).fetchone():
                continue  # already in this wallet
            try:
                restored += self.reissue(encode_notes(self.federation_id, [n]))
            except WalletError as exc:
                if exc.code != "double_spend":
                    raise
        return restored
