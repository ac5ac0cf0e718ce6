"""Fakes for the actor's LNv1 flows: a federation config with an `ln` module (the real crates'
config vector), a mint wallet that records the transactions the flows ask of it (their other
module's items and what they bring, exactly) and decides their fate, the guardians' answers by
endpoint, a Lightning node, and real signed BOLT11 invoices."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from bolt11 import Bolt11, MilliSatoshi
from bolt11 import encode as bolt11_encode
from bolt11.models.features import Feature, Features, FeatureState
from bolt11.models.routehint import Route, RouteHint
from bolt11.models.tags import TagChar, Tags
from coincurve import PrivateKey

from fmclient.config import ClientConfig, ModuleConfig
from fmclient.ecash import EcashError
from fmclient.wallet_operations import Foreign, Rejected
from gwproto import gateway_lnrpc_pb2 as lnpb

DATA = Path(__file__).parents[1] / "fmclient" / "data"
V = json.loads((DATA / "lnv1_vectors.json").read_text())
LN_CONFIG = bytes.fromhex(V["config"]["encoding"])  # contract_input 7 msat, contract_output 1300
NODE_KEY = PrivateKey(bytes([7] * 32))
NODE = NODE_KEY.public_key.format().hex()
PAYEE_KEY = PrivateKey(bytes([21] * 32))


def config() -> ClientConfig:
    endpoints = {0: ("ws://127.0.0.1:1/", "g0")}
    modules = {0: ModuleConfig(0, "ln", (2, 1), LN_CONFIG)}
    return ClientConfig(endpoints, modules, {}, {})


def invoice(
    preimage: bytes, amount_msat: int, key: PrivateKey = PAYEE_KEY, hint_scid: int | None = None
) -> str:
    """A real signed regtest invoice for sha256(preimage); with `hint_scid`, a route hint
    whose last hop is our node on that scid (an LNv1 invoice of a federation we serve)."""
    tags = Tags()
    tags.add(TagChar.payment_hash, hashlib.sha256(preimage).hexdigest())
    tags.add(TagChar.payment_secret, os.urandom(32).hex())
    tags.add(TagChar.description, "lnv1 test")
    tags.add(TagChar.expire_time, 3600)
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
    if hint_scid is not None:
        scid = f"{hint_scid >> 40}x{(hint_scid >> 16) & 0xFFFFFF}x{hint_scid & 0xFFFF}"
        tags.add(TagChar.route_hint, RouteHint([Route(NODE, scid, 0, 0, 144)]))
    inv = Bolt11("bcrt", int(time.time()), tags, MilliSatoshi(amount_msat))
    return str(bolt11_encode(inv, key.secret.hex()))


class FakeApi:
    """The guardians: `answers[endpoint]` (after `module_<id>_`), a value or a callable of the
    params; every call is recorded."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers, self.calls = answers, []

    async def current_consensus(self, method: str, params: Any = None, **kw: Any) -> Any:
        name = method.split("_", 2)[2]
        self.calls.append((name, params))
        answer = self.answers[name]
        if isinstance(answer, Exception):
            raise answer
        return answer(params) if callable(answer) else answer


class FakeMint:
    """The wallet calls the flows make: operations stored with the flow's own row change (the
    `also` callback) in one SQLite transaction; `finish` accepts unless the op id is in
    `refuse`; `balance_msat` bounds `choose`."""

    def __init__(self, path: Path, api: FakeApi, balance_msat: int = 10**9) -> None:
        self.config, self.api, self.balance = config(), api, balance_msat
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.ops: dict[str, dict] = {}
        self.refuse: set[str] = set()
        self.finished: list[str] = []

    def operation(self, op_id: str) -> dict | None:
        op = self.ops.get(op_id)
        return None if op is None else {"id": op_id, "txid": op["txid"], "state": op["state"]}

    def choose(self, need_msat: int) -> list[str]:
        if need_msat > self.balance:
            raise EcashError(f"the balance does not cover {need_msat} msat")
        return [f"notes for {need_msat}"]

    def create_operation(
        self,
        op_id: str,
        kind: str,
        notes: list,
        external: bool,
        wanted: list[int] | None = None,
        foreign: Foreign | None = None,
        also: Any = None,
    ) -> None:
        assert op_id not in self.ops, f"{op_id} created twice"
        self.db.execute("BEGIN IMMEDIATE")
        if also is not None:
            also(self.db)
        self.db.execute("COMMIT")
        txid = hashlib.sha256(op_id.encode()).hexdigest()
        self.ops[op_id] = {
            "kind": kind,
            "notes": notes,
            "foreign": foreign,
            "state": "created",
            "txid": txid,
        }

    async def finish(self, op_id: str) -> dict:
        self.finished.append(op_id)
        if op_id in self.refuse:
            self.ops[op_id]["state"] = "rejected"
            raise Rejected("rejected: the federation refused it")
        self.ops[op_id]["state"] = "done"
        return self.operation(op_id) or {}


class FakeLightning:
    """The extension: PayInvoice answers `status` (SETTLED with `preimage`), GetNodeInfo our
    node at `height`; every PayInvoice request is kept."""

    def __init__(
        self, status: int = lnpb.SETTLED, preimage: bytes = b"", height: int = 1000
    ) -> None:
        self.status, self.preimage, self.height = status, preimage, height
        self.paid: list[lnpb.PayInvoiceRequest] = []

    async def PayInvoice(self, req: lnpb.PayInvoiceRequest, timeout: float) -> Any:
        self.paid.append(req)
        return lnpb.PayInvoiceResponse(
            status=self.status, preimage=self.preimage, fee_msat=1_234, failure_reason="no route"
        )

    async def GetNodeInfo(self, req: Any, timeout: float) -> Any:
        return lnpb.GetNodeInfoResponse(
            pub_key=NODE_KEY.public_key.format(), block_height=self.height
        )


class Claims:
    """The router's claims of payment hashes, in memory: one contract per hash."""

    def __init__(self) -> None:
        self.held: dict[str, str] = {}
        self.released: list[str] = []

    async def claim(self, payment_hash: str, contract_id: str) -> bool:
        return self.held.setdefault(payment_hash, contract_id) == contract_id

    async def release(self, payment_hash: str, contract_id: str) -> None:
        if self.held.get(payment_hash) == contract_id:
            del self.held[payment_hash]
            self.released.append(payment_hash)
