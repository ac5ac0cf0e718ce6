"""Hold invoices of the Core Lightning plugin (Core Lightning has none of its own).

Owns the plugin's hold invoices: building each BOLT11, having lightningd sign it, keeping it in
lightningd's datastore, and judging a final-hop HTLC against it.

* `create`: the plugin builds the invoice itself (payment hash, a payment secret of its own,
  amount, description or description hash, date, expiry, min_final_cltv, features
  var_onion_optin + payment_secret, both required; no basic_mpp: one HTLC pays it) and lightningd
  signs it with the node key: `signinvoice invstring` (the invstring's own signature is ignored;
  lightningd neither stores the invoice nor needs the preimage; the result is `{"bolt11"}`).
  Idempotent per payment hash: the record is stored before signing, so the same request always
  builds, and gets signed, the same invoice; another request for that hash, or a hash lightningd
  has an ordinary invoice for (`listinvoices payment_hash`), is `InvoiceExists`.
* Records live in lightningd's database, `datastore` key
  `["fm-gateway", "holdinvoices", <payment hash hex>]`, a JSON string written with
  `create-or-replace` and read back at start with `listdatastore` (its immediate children), so a
  restarted plugin knows them when lightningd replays the HTLCs it still holds.
* States: open -> accepted (an HTLC is held) -> settled (the preimage is kept, so an HTLC
  lightningd replays after a restart is resolved again) | canceled (any later HTLC is failed).
* `refusal`: the BOLT-4 checks of a final hop (payment secret, amount at least the invoice's and
  at most twice it, no multi-part, not expired, CLTV not below min_final_cltv); any failure is
  answered with incorrect_or_unknown_payment_details by the caller.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bolt11 import Bolt11, MilliSatoshi
from bolt11 import decode as bolt11_decode
from bolt11 import encode as bolt11_encode
from bolt11.models.features import Feature, Features, FeatureState
from bolt11.models.tags import TagChar, Tags

from .backend import BackendError, InvoiceExists
from .cln_values import msat

log = logging.getLogger(__name__)
DATASTORE_KEY = ["fm-gateway", "holdinvoices"]
MIN_FINAL_CLTV = 18  # BOLT 11's default for `c` (what payers assume without one), stated
CURRENCIES = {
    "bitcoin": "bc",
    "testnet": "tb",
    "testnet4": "tb",
    "signet": "tbs",
    "regtest": "bcrt",
}
# signinvoice ignores the invstring's signature: any key makes a well-formed one
_THROWAWAY_KEY = hashlib.sha256(b"fm-gateway: signed again by lightningd").hexdigest()

FINAL = ("settled", "canceled")
Call = Callable[..., Awaitable[Any]]


@dataclass
class HoldInvoice:
    payment_hash: str  # hex, as everything here
    payment_secret: str
    amount_msat: int
    expiry: int
    description: str
    description_hash: str
    created: int
    min_final_cltv: int = MIN_FINAL_CLTV
    bolt11: str = ""  # signed by the node; "" until signinvoice has answered
    state: str = "open"  # open | accepted | settled | canceled
    preimage: str = ""  # once settled

    def same_request(
        self, amount_msat: int, expiry: int, memo: str, description_hash: bytes
    ) -> bool:
        return (
            self.amount_msat == amount_msat
            and self.expiry == expiry
            and self.description_hash == description_hash.hex()
            and self.description == ("" if description_hash else memo)
        )

    def invstring(self, currency: str) -> str:
        """The invoice, signed with a throwaway key (signinvoice replaces the signature)."""
        tags = Tags()
        tags.add(TagChar.payment_hash, self.payment_hash)
        tags.add(TagChar.payment_secret, self.payment_secret)
        if self.description_hash:
            tags.add(TagChar.description_hash, self.description_hash)
        else:
            tags.add(TagChar.description, self.description)
        tags.add(TagChar.expire_time, self.expiry)
        tags.add(TagChar.min_final_cltv_expiry, self.min_final_cltv)
        features = {
            Feature.var_onion_optin: FeatureState.required,
            Feature.payment_secret: FeatureState.required,
        }
        tags.add(TagChar.features, Features.from_feature_list(features))
        inv = Bolt11(currency, self.created, tags, MilliSatoshi(self.amount_msat))
        return bolt11_encode(inv, _THROWAWAY_KEY)

    def refusal(self, onion: dict, amount_msat: int, cltv_relative: int) -> str:
        """Why a final-hop HTLC of this invoice must be failed ("" if it may be held)."""
        if self.state == "canceled":
            return "the invoice is canceled"
        if onion.get("payment_secret") != self.payment_secret:
            return "wrong payment secret"
        if not self.amount_msat <= amount_msat <= 2 * self.amount_msat:
            return f"{amount_msat} msat does not pay {self.amount_msat} msat"
        total = onion.get("total_msat")
        if total is not None and msat(total) > amount_msat:
            return "multi-part payments are not accepted"
        if self.state == "open":  # (a replayed, already accepted HTLC was checked on arrival)
            if time.time() > self.created + self.expiry:
                return "the invoice has expired"
            if cltv_relative < self.min_final_cltv:
                return f"CLTV {cltv_relative} below min_final_cltv {self.min_final_cltv}"
        return ""


class HoldInvoices:
    """The records (a copy in memory, read by the hook's thread), kept in lightningd's datastore."""

    def __init__(self, call: Call) -> None:
        self._call = call  # lightningd's JSON-RPC: await call(method, **params)
        self._by_hash: dict[str, HoldInvoice] = {}
        self._lock = threading.Lock()
        self._writing = asyncio.Lock()  # one read-modify-write of the records at a time
        self._currency = "bcrt"
        self._node_id = ""

    async def load(self) -> None:
        info = await self._call("getinfo")
        self._node_id = info["id"]
        self._currency = CURRENCIES.get(info.get("network", "bitcoin"), "bc")
        entries = (await self._call("listdatastore", key=DATASTORE_KEY)).get("datastore", [])
        fields = {f.name for f in dataclasses.fields(HoldInvoice)}
        loaded = {}
        for e in entries:
            try:
                data = json.loads(e["string"])
                inv = HoldInvoice(**{k: v for k, v in data.items() if k in fields})
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("unreadable hold invoice record %s: %s", e.get("key"), exc)
                continue
            loaded[inv.payment_hash] = inv
        with self._lock:
            self._by_hash.update(loaded)
        log.info("%d hold invoices known", len(loaded))

    def get(self, payment_hash: str) -> HoldInvoice | None:
        with self._lock:
            inv = self._by_hash.get(payment_hash)
            return None if inv is None else dataclasses.replace(inv)

    async def _save(self, inv: HoldInvoice) -> None:
        await self._call(
            "datastore",
            key=[*DATASTORE_KEY, inv.payment_hash],
            string=json.dumps(dataclasses.asdict(inv), sort_keys=True),
            mode="create-or-replace",
        )
        with self._lock:
            self._by_hash[inv.payment_hash] = dataclasses.replace(inv)

    async def update(self, payment_hash: str, state: str, preimage: str = "") -> None:
        """Move a record on (open -> accepted -> settled | canceled; never back), in the
        datastore and here."""
        async with self._writing:
            inv = self.get(payment_hash)
            if inv is None or inv.state in FINAL or (state == "accepted" and inv.state != "open"):
                return
            await self._save(dataclasses.replace(inv, state=state, preimage=preimage))

    async def create(
        self,
        payment_hash: bytes,
        amount_msat: int,
        expiry_secs: int,
        memo: str,
        description_hash: bytes,
    ) -> str:
        if amount_msat <= 0 or expiry_secs <= 0 or len(payment_hash) != 32:
            raise BackendError("bad hold invoice request", invalid_input=True)
        async with self._writing:
            inv = self.get(payment_hash.hex())
            if inv is not None and not inv.same_request(
                amount_msat, expiry_secs, memo, description_hash
            ):
                raise InvoiceExists()
            if inv is None:
                own = await self._call("listinvoices", payment_hash=payment_hash.hex())
                if own.get("invoices"):
                    raise InvoiceExists("lightningd has an invoice with this payment hash")
                inv = HoldInvoice(
                    payment_hash=payment_hash.hex(),
                    payment_secret=os.urandom(32).hex(),
                    amount_msat=amount_msat,
                    expiry=expiry_secs,
                    description="" if description_hash else memo,
                    description_hash=description_hash.hex(),
                    created=int(time.time()),
                )
                await self._save(inv)  # before signing: a retry builds the very same invoice
            if inv.bolt11:
                return inv.bolt11
            signed = (await self._call("signinvoice", invstring=inv.invstring(self._currency)))[
                "bolt11"
            ]
            try:
                got = bolt11_decode(signed)
            except Exception as exc:  # the decoder raises many kinds
                raise BackendError(f"signinvoice returned no invoice: {exc}") from None
            if (
                got.payment_hash != inv.payment_hash
                or got.payment_secret != inv.payment_secret
                or (self._node_id and got.payee != self._node_id)
            ):
                raise BackendError("signinvoice returned another invoice")
            inv.bolt11 = signed
            await self._save(inv)
            return signed
