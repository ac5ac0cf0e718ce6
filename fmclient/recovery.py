"""Recovery of one federation's e-cash and peg-in keys from the gateway's seed alone, as fedimint
0.13's client recovers each module (`ClientModuleInit::recover`): every guardian keeps a log of
each module's outputs and inputs (`recovery_count`, `recovery_slice`, `recovery_slice_hash`),
the client reads it in slices and finds what its secrets made (fmclient/recovery_scan.py).

Per module (`ModuleRecovery`: a scan, where its slices come from, what it leaves behind):

- mint v1 (`mint`): slices of 10,000 items, each checked against the hash `threshold` guardians
  agree on (one guardian serves it, base64 of its consensus encoding); at the end the outpoints
  of our unspent notes (`recovery_blind_nonce_outpoints`), one `recovery` operation per run of
  outputs of a transaction (its shares fetched as any issuance's: `await_outputs_outcomes`), and
  each tier's next note index (`key_indexes`), as fedimint-mint-client lib.rs:598-750.
- mintv2: the same slices (JSON, hashed as their consensus encoding), its notes' shares asked by
  blinded message (`recovery_signature_shares`), as fedimint-mintv2-client lib.rs:215-330.
- wallet v1 (`wallet`): slices of 1,000 claimed peg-ins agreed by `threshold` guardians; the
  addresses of tweak indexes up to the last used + 8 are watched again on chain (a deposit not
  yet claimed is found and claimed), the outpoints claimed before are never claimed again, the
  next tweak index set past them (fedimint-wallet-client lib.rs:212-275).

Persisted in the wallet's SQLite file (`recovery`: per module the next item, the total fixed at
the start, the scan's state, done), committed after every slice: a crash resumes from the last
slice, and a module's results are written in the same transaction that marks it done, so they
are never written twice; the notes are then issued by the wallet's own operations (by id, each
note stored once: nothing is credited twice).

Never: serve or spend while a recovery runs (the caller's rule: new notes would reuse indexes),
or trust one guardian's slice without the agreed hash.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from coincurve import PrivateKey

from . import derive, mintv1, tbs
from .api import FederationApi
from .derive import DerivableSecret
from .encoding import DecodeError, Reader, encode
from .recovery_scan import (
    MintV1Input,
    MintV1Output,
    MintV1Scan,
    MintV2Input,
    MintV2Output,
    MintV2Scan,
    WalletV1Input,
    WalletV1Scan,
)
from .wallet import MintWallet
from .wallet_keys import NOTE_INDEX
from .walletv1 import new_peg_in_address

SCHEMA = """
CREATE TABLE IF NOT EXISTS recovery (
    module TEXT PRIMARY KEY, next_index INTEGER NOT NULL, total INTEGER NOT NULL,
    state TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0
);
"""
MINT_SLICE = 10_000  # fedimint-mint-client / -mintv2-client SLICE_SIZE
WALLET_SLICE = 1_000  # fedimint-wallet-client SLICE_SIZE
NOTES_PER_OPERATION = 100  # recovered mintv2 notes issued per request


class RecoveryError(Exception):
    """The federation's answers do not make a recovery (one line saying why); retried later."""


class Scan(Protocol):
    def start(self) -> None: ...
    def handle(self, items: list[Any]) -> None: ...
    def to_json(self) -> dict: ...
    def load(self, state: dict) -> None: ...


class Slices(Protocol):
    size: int

    async def count(self) -> int: ...
    async def slice(self, start: int, end: int) -> list[Any]: ...


# -- the modules' recovery items, as the guardians serve them -------------------------------------


def mint_v1_items(data: bytes) -> list[object]:
    """`Vec<RecoveryItem>` of mint v1, consensus-encoded: Output {amount, hash160} = 0,
    Input {hash160} = 1."""
    r = Reader(data, "mint v1 recovery items")

    def item(r2: Reader) -> object:
        tag, body = r2.framed()
        if tag == 0:
            out: object = MintV1Output(body.varint(), body.raw(20))
        elif tag == 1:
            out = MintV1Input(body.raw(20))
        else:
            raise body.fail(f"unknown recovery item {tag}")
        body.done()
        return out

    items = r.vec(item)
    r.done()
    return items


def mint_v2_items(answer: object) -> tuple[list[object], bytes]:
    """mintv2's slice (serde JSON) and its consensus encoding (what the agreed hash covers)."""
    if not isinstance(answer, list):
        raise ValueError("a slice is a list")
    items: list[object] = []
    for raw in answer:
        if not isinstance(raw, dict) or len(raw) != 1:
            raise ValueError(f"not a recovery item: {str(raw)[:80]}")
        if "Output" in raw:
            o = raw["Output"]
            tweak = bytes(o["tweak"])
            nonce = bytes.fromhex(o["nonce_hash"])
            if len(tweak) != 16 or len(nonce) != 20 or not 0 <= o["denomination"] < 256:
                raise ValueError("a mintv2 output item of the wrong shape")
            items.append(MintV2Output(int(o["denomination"]), nonce, tweak))
        elif "Input" in raw:
            nonce = bytes.fromhex(raw["Input"]["nonce_hash"])
            if len(nonce) != 20:
                raise ValueError("a mintv2 input item of the wrong shape")
            items.append(MintV2Input(nonce))
        else:
            raise ValueError(f"unknown recovery item {sorted(raw)}")

    def put(w: Any, item: object) -> None:
        if isinstance(item, MintV2Output):
            w.framed(0, bytes([item.denomination]) + item.nonce_hash + item.tweak)
        else:
            assert isinstance(item, MintV2Input)
            w.framed(1, item.nonce_hash)

    return items, encode(lambda w: w.vec(items, put))


def wallet_v1_items(answer: object) -> list[object]:
    """wallet v1's slice (serde JSON): Input {outpoint "txid:vout", script hex}."""
    if not isinstance(answer, list):
        raise RecoveryError("the wallet's recovery slice is not a list")
    items: list[object] = []
    for raw in answer:
        try:
            body = raw["Input"]
            txid, vout = str(body["outpoint"]).split(":")
            items.append(WalletV1Input(f"{txid}:{int(vout)}", bytes.fromhex(body["script"])))
        except (KeyError, TypeError, ValueError):
            raise RecoveryError(f"not a wallet recovery item: {str(raw)[:80]}") from None
    return items


class HashedSlices:
    """A mint module's slices: the hash agreed by `threshold` guardians, the slice from the
    first guardian whose answer has that hash (fedimint's download_slice_with_hash)."""

    size = MINT_SLICE

    def __init__(
        self, api: FederationApi, module: int, read: Callable[[object], tuple[list, bytes]]
    ) -> None:
        """`read(answer)`: (items, their consensus encoding); ValueError/DecodeError if bad."""
        self.api, self.module, self._read = api, module, read

    def _method(self, name: str) -> str:
        return f"module_{self.module}_{name}"

    async def count(self) -> int:
        return int(await self.api.current_consensus(self._method("recovery_count")))  # type: ignore[call-overload]

    async def slice(self, start: int, end: int) -> list[Any]:
        agreed = await self.api.current_consensus(self._method("recovery_slice_hash"), [start, end])

        def verify(peer: int, answer: object) -> list | None:
            try:
                items, encoded = self._read(answer)
            except (DecodeError, ValueError, TypeError, KeyError):
                return None
            return items if hashlib.sha256(encoded).hexdigest() == agreed else None

        return await self.api.first_verified(
            self._method("recovery_slice"), [start, end], verify, timeout=120
        )


def _base64_serde(answer: object) -> bytes:
    """`SerdeModuleEncodingBase64`: `[base64url (no padding) of the length-prefixed bytes]`."""
    if not (isinstance(answer, list) and len(answer) == 1 and isinstance(answer[0], str)):
        raise ValueError("not a SerdeModuleEncodingBase64")
    text = answer[0]
    r = Reader(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "slice")
    data = r.bytes()
    r.done()
    return data


def mint_v1_slices(api: FederationApi, module: int) -> HashedSlices:
    def read(answer: object) -> tuple[list, bytes]:
        data = _base64_serde(answer)
        return mint_v1_items(data), data

    return HashedSlices(api, module, read)


def mint_v2_slices(api: FederationApi, module: int) -> HashedSlices:
    return HashedSlices(api, module, mint_v2_items)


class WalletV1Slices:
    """wallet v1's slices, each agreed by `threshold` guardians (request_current_consensus)."""

    size = WALLET_SLICE

    def __init__(self, api: FederationApi, module: int) -> None:
        self.api, self.module = api, module

    async def count(self) -> int:
        answer = await self.api.current_consensus(f"module_{self.module}_recovery_count")
        return int(answer)  # type: ignore[call-overload]

    async def slice(self, start: int, end: int) -> list[Any]:
        answer = await self.api.current_consensus(
            f"module_{self.module}_recovery_slice", [start, end]
        )
        return wallet_v1_items(answer)


# -- one module's recovery ------------------------------------------------------------------------


@dataclass
class ModuleRecovery:
    """`name`: its row in `recovery`; `results(scan)`: what the finished scan leaves behind,
    prepared (it may ask the federation) as a function writing it in the closing transaction."""

    name: str
    scan: Scan
    slices: Slices
    results: Callable[[Any], Awaitable[Callable[[sqlite3.Connection], None]]]


class Recovery:
    """The recovery of one federation's modules, in the wallet's SQLite file."""

    def __init__(self, wallet: MintWallet) -> None:
        self.wallet = wallet
        wallet.db.executescript(SCHEMA)

    def progress(self) -> dict[str, dict]:
        """{module: {items_done, items_total, done}} of every module begun."""
        rows = self.wallet.db.execute("SELECT module, next_index, total, done FROM recovery")
        return {
            r[0]: {"items_done": r[1], "items_total": r[2], "done": bool(r[3])}
            for r in rows.fetchall()
        }

    def done(self, name: str) -> bool:
        return bool(self.progress().get(name, {}).get("done"))

    async def run(self, part: ModuleRecovery) -> None:
        """Scan the module's log from where the last run stopped to the total fixed at its
        start, committing after each slice; then its results and `done` in one transaction."""
        db = self.wallet.db
        row = db.execute(
            "SELECT next_index, total, state, done FROM recovery WHERE module = ?", (part.name,)
        ).fetchone()
        if row is not None and row[3]:
            return
        if row is None:
            # the total is fixed now: what the federation logs later is not ours (we serve
            # nothing until the recovery ends)
            total = await part.slices.count()
            await asyncio.to_thread(part.scan.start)
            db.execute(
                "INSERT INTO recovery VALUES (?, 0, ?, ?, 0)",
                (part.name, total, json.dumps(part.scan.to_json())),
            )
            next_index = 0
        else:
            next_index, total = int(row[0]), int(row[1])
            part.scan.load(json.loads(row[2]))
        while next_index < total:
            end = min(next_index + part.slices.size, total)
            items = await part.slices.slice(next_index, end)
            if not items:
                raise RecoveryError(f"{part.name}: the federation served no items {next_index}..")
            await asyncio.to_thread(part.scan.handle, items)  # may derive many nonces
            next_index += len(items)
            db.execute(
                "UPDATE recovery SET next_index = ?, state = ? WHERE module = ?",
                (next_index, json.dumps(part.scan.to_json()), part.name),
            )
        write = await part.results(part.scan)
        with self.wallet.transaction() as tx:
            write(tx)
            tx.execute("UPDATE recovery SET done = 1 WHERE module = ?", (part.name,))


# -- what each module leaves behind ---------------------------------------------------------------


def _output(d: int, spend: bytes, r: int, message: tbs.G1Point, **extra: object) -> dict:
    blinded = tbs.to_bytes(tbs.blind(message, r)).hex()
    return {
        "d": d,
        "secret": spend.hex(),
        "r": tbs.scalar_to_le(r).hex(),
        "blinded": blinded,
        **extra,
    }


def mint_v1_recovery(wallet: MintWallet, module: DerivableSecret) -> ModuleRecovery:
    tiers = sorted(wallet.mint.config.tbs_pks)  # type: ignore[attr-defined]

    async def results(scan: MintV1Scan) -> Callable[[sqlite3.Connection], None]:
        notes = []
        for amount, index in scan.unspent():
            spend, r = derive.mint_v1_note_keys(derive.mint_v1_note_secret(module, amount, index))
            nonce = PrivateKey(spend).public_key.format(compressed=True)
            d = amount.bit_length() - 1
            notes.append(_output(d, spend, r, tbs.message_v1(nonce), note_index=index))
        points = []
        if notes:
            points = await wallet.api.current_consensus(
                f"module_{wallet.module}_recovery_blind_nonce_outpoints",
                [n["blinded"] for n in notes],
            )
            if not isinstance(points, list) or len(points) != len(notes):
                raise RecoveryError("the federation did not say where each recovered note is")
        by_tx: dict[str, list[dict]] = {}
        for note, point in zip(notes, points, strict=True):
            by_tx.setdefault(str(point["txid"]), []).append(note | {"idx": int(point["out_idx"])})
        operations = []
        for txid, outs in sorted(by_tx.items()):
            outs.sort(key=lambda o: o["idx"])
            run: list[dict] = []
            for o in outs:  # one operation per run of consecutive outputs of the transaction
                if run and o["idx"] != run[-1]["idx"] + 1:
                    operations.append((f"recovery-{txid}-{run[0]['idx']}", txid, run))
                    run = []
                run.append(o)
            operations.append((f"recovery-{txid}-{run[0]['idx']}", txid, run))

        def write(db: sqlite3.Connection) -> None:
            for op_id, txid, outs in operations:
                wallet.record_issuance(db, op_id, txid, outs)
            for amount, nxt in scan.next_indexes().items():
                db.execute(
                    "INSERT INTO key_indexes VALUES (?, ?) ON CONFLICT(name) DO UPDATE"
                    " SET next = MAX(next, excluded.next)",
                    (f"{NOTE_INDEX}{amount}", nxt),
                )

        return write

    return ModuleRecovery(
        mintv1.KIND, MintV1Scan(module, tiers), mint_v1_slices(wallet.api, wallet.module), results
    )


def mint_v2_recovery(wallet: MintWallet, module: DerivableSecret) -> ModuleRecovery:
    async def results(scan: MintV2Scan) -> Callable[[sqlite3.Connection], None]:
        notes = []
        for d, tweak in scan.unspent():
            spend, r = derive.mintv2_note_keys(module, d, tweak)
            nonce = PrivateKey(spend).public_key.format(compressed=True)
            notes.append(_output(d, spend, r, tbs.message_sha256(nonce), tweak=tweak.hex(), idx=0))

        def write(db: sqlite3.Connection) -> None:
            for i in range(0, len(notes), NOTES_PER_OPERATION):
                wallet.record_issuance(
                    db, f"recovery-mintv2-{i // NOTES_PER_OPERATION}", None,
                    notes[i : i + NOTES_PER_OPERATION],
                )  # fmt: skip

        return write

    return ModuleRecovery(
        "mintv2", MintV2Scan(module), mint_v2_slices(wallet.api, wallet.module), results
    )


def ecash_recovery(wallet: MintWallet) -> ModuleRecovery | None:
    """The recovery of the wallet's e-cash module (its version's), or None without a seed."""
    module = wallet.keys.module_secret(wallet.mint.kind)
    if module is None:
        return None
    if wallet.mint.kind == mintv1.KIND:
        return mint_v1_recovery(wallet, module)
    return mint_v2_recovery(wallet, module)


def wallet_v1_recovery(onchain: Any, module: DerivableSecret) -> ModuleRecovery:
    """wallet v1's: `onchain` is the federation's `OnchainWalletV1`."""

    def script_of(index: int) -> bytes:
        secret = derive.wallet_v1_tweak_secret(module, index)
        return new_peg_in_address(onchain.config, secret).script_pubkey

    async def results(scan: WalletV1Scan) -> Callable[[sqlite3.Connection], None]:
        def write(db: sqlite3.Connection) -> None:
            onchain.recovered(db, module, scan.new_start_index(), scan.claimed_outpoints())

        return write

    return ModuleRecovery(
        "wallet", WalletV1Scan(script_of), WalletV1Slices(onchain.api, onchain.module), results
    )
