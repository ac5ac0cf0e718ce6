"""A wallet in one federation: notes and operations in SQLite, each operation a persisted state
machine that resumes after a crash. Users (fed-cli) and the gateway's actors (gateway role:
contract claims, cancellations, incoming-contract funding) share it.

Operation states:   created --(tx persisted)--> submitted --accepted--> done
                                                    \\--refused (4xx)--> failed (inputs released)
Lightning and peg-in operations keep their step in `data["step"]` and go through several
transactions; every transaction is persisted (with every secret needed to finish it) before it
is sent, and resending it is harmless (its id is its content), so `resume()` can always finish.

Notes: unspent --(selected by an op)--> spending --(its tx accepted)--> spent
                         \\--(its tx refused)--> unspent;   exported (given away in a notes string)
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from coincurve import PrivateKey

from gwcore.files import private_file
from gwcore.schema import Schema, upgrade

from . import crypto
from .api import FedApiError, FederationApi
from .notes import decode_notes, encode_notes
from .tx import DENOMINATIONS, decode_invite, decompose, txid

# a development federation's wallet: its schema's version and migrations (gwcore/schema.py)
DEV_WALLET_DB = Schema("wallet.sqlite")
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notes (
    nonce TEXT PRIMARY KEY, amount INTEGER NOT NULL, spend_key TEXT NOT NULL, signature TEXT NOT NULL,
    state TEXT NOT NULL, op_id TEXT, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pending_outputs (
    op_id TEXT NOT NULL, txid TEXT NOT NULL, idx INTEGER NOT NULL, amount INTEGER NOT NULL, spend_key TEXT NOT NULL,
    blinding TEXT NOT NULL, PRIMARY KEY (txid, idx));
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, data TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL);
"""


class WalletError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class FederationWallet:
    def __init__(self, path: str | Path, api: FederationApi | None = None) -> None:
        self.path = Path(path)
        self.db = sqlite3.connect(
            private_file(self.path), isolation_level=None, check_same_thread=False
        )
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        upgrade(self.db, self.path, DEV_WALLET_DB)
        self.db.executescript(SCHEMA)
        self.lock = threading.RLock()
        cfg = self._meta("config")
        self.config: dict | None = json.loads(cfg) if cfg else None
        self._api = api

    # --- setup --------------------------------------------------------------------------------
    @classmethod
    def join(
        cls, path: str | Path, invite_code: str, api: FederationApi | None = None
    ) -> FederationWallet:
        try:
            fed_id, url = decode_invite(invite_code)
        except ValueError as exc:
            raise WalletError("invalid_invite", str(exc)) from None
        w = cls(path, api)
        if w.config is not None:
            if w.config["federation_id"] != fed_id:
                raise WalletError(
                    "other_federation", "this wallet already belongs to another federation"
                )
            return w
        cfg = (api or FederationApi(url)).config()
        if cfg.get("federation_id") != fed_id:
            raise WalletError(
                "invite_mismatch", "the federation at this URL is not the one the invite names"
            )
        with w.lock:
            w._set_meta("config", json.dumps(cfg))
        w.config = cfg
        return w

    @property
    def api(self) -> FederationApi:
        if self._api is None:
            self._api = FederationApi(self.cfg["api_url"])
        return self._api

    @property
    def cfg(self) -> dict:
        if self.config is None:
            raise WalletError(
                "not_joined", "this wallet has not joined a federation: run join first"
            )
        return self.config

    @property
    def federation_id(self) -> str:
        return self.cfg["federation_id"]

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _mint_key(self, amount: int) -> crypto.PublicKey:
        return crypto.point(self.cfg["modules"]["mint"]["denominations"][str(amount)])

    # --- balance and notes --------------------------------------------------------------------
    def balance(self) -> int:
        row = self.db.execute(
            "SELECT COALESCE(SUM(amount), 0) AS s FROM notes WHERE state = 'unspent'"
        ).fetchone()
        return int(row["s"])

    def notes_by_denomination(self) -> dict[int, int]:
        rows = self.db.execute(
            "SELECT amount, COUNT(*) AS n FROM notes WHERE state = 'unspent' GROUP BY amount"
        )
        return {r["amount"]: r["n"] for r in rows}

    # --- operations ---------------------------------------------------------------------------
    def _new_op(self, kind: str, data: dict, op_id: str | None = None) -> str:
        op_id = op_id or uuid.uuid4().hex
        now = time.time()
        self.db.execute(
            "INSERT INTO operations (id, kind, state, data, created, updated) VALUES (?, ?, 'created', ?, ?, ?)",
            (op_id, kind, json.dumps(data), now, now),
        )
        return op_id

    def operation(self, op_id: str) -> dict:
        row = self.db.execute("SELECT * FROM operations WHERE id = ?", (op_id,)).fetchone()
        if row is None:
            raise WalletError("unknown_operation", f"no operation {op_id}")
        return {
            "id": row["id"],
            "kind": row["kind"],
            "state": row["state"],
            "data": json.loads(row["data"]),
            "created": row["created"],
            "updated": row["updated"],
        }

    def _update_op(self, op_id: str, state: str | None = None, **data: Any) -> None:
        op = self.operation(op_id)
        op["data"].update(data)
        self.db.execute(
            "UPDATE operations SET state = ?, data = ?, updated = ? WHERE id = ?",
            (state or op["state"], json.dumps(op["data"]), time.time(), op_id),
        )

    def operations_of(self, kind: str, limit: int = 50) -> list[dict]:
        """The newest `limit` operations of one kind."""
        rows = self.db.execute(
            "SELECT id FROM operations WHERE kind = ? ORDER BY created DESC LIMIT ?", (kind, limit)
        ).fetchall()
        return [self.operation(r["id"]) for r in rows]

    def operations(self, limit: int = 50) -> list[dict]:
        rows = self.db.execute(
            "SELECT id FROM operations ORDER BY created DESC LIMIT ?", (limit,)
        ).fetchall()
        return [self.operation(r["id"]) for r in rows]

    # --- building transactions ----------------------------------------------------------------
    def _fees(self, n_in: int, n_out: int) -> int:
        f = self.cfg.get("fees", {})
        return f.get("input_msat", 0) * n_in + f.get("output_msat", 0) * n_out

    def _select(self, op_id: str, amount: int) -> list[sqlite3.Row]:
        """Reserve unspent notes worth at least `amount` (+ their input fees) for `op_id`."""
        rows = self.db.execute(
            "SELECT * FROM notes WHERE state = 'unspent' ORDER BY amount DESC"
        ).fetchall()
        chosen, total = [], 0
        for r in rows:
            if total >= amount + self._fees(len(chosen), 0):
                break
            chosen.append(r)
            total += r["amount"]
        if total < amount + self._fees(len(chosen), 0):
            raise WalletError(
                "insufficient_funds", f"balance {self.balance()} msat is below {amount} msat"
            )
        for r in chosen:
            self.db.execute(
                "UPDATE notes SET state = 'spending', op_id = ? WHERE nonce = ?",
                (op_id, r["nonce"]),
            )
        return chosen

    def _change_outputs(self, available: int, n_in: int, n_fixed_out: int) -> list[int]:
        """Denominations of the change after every fee of the transaction: the fewest notes k
        such that the change c = available - fees(k notes more) splits into exactly k notes
        (possible iff popcount(c) <= k <= c)."""
        for k in range(0, 128):
            c = available - self._fees(n_in, n_fixed_out + k)
            if c < 0:
                break
            if c == 0 and k == 0:
                return []
            if bin(c).count("1") <= k <= c:
                notes = decompose(c)
                while len(notes) < k:  # split the largest splittable note in two
                    big = max(n for n in notes if n > 1)
                    notes.remove(big)
                    notes += [big // 2, big // 2]
                return sorted(notes)
        raise WalletError("insufficient_funds", "not enough to pay the federation's fees")

    def _run_paid(self, op_id: str, outputs: list[dict], value_msat: int = 0) -> list[dict]:
        """Submit `outputs` worth `value_msat` (offers and cancellations are worth nothing),
        paying that value and the federation's fees with our notes; no inputs when both are
        zero. The outcome of each output."""
        if value_msat == 0 and self._fees(0, len(outputs)) == 0:
            return self._run(op_id, [], [], outputs, [])
        with self.lock:  # room for the outputs' fees and one change note's
            notes = self._select(op_id, value_msat + self._fees(0, len(outputs) + 1))
        inputs, signers = self._note_inputs(notes)
        try:
            change = self._change_outputs(
                sum(n["amount"] for n in notes) - value_msat, len(inputs), len(outputs)
            )
        except WalletError:
            with self.lock:
                self.db.execute(
                    "UPDATE notes SET state = 'unspent', op_id = NULL WHERE op_id = ?"
                    " AND state = 'spending'",
                    (op_id,),
                )
                self._update_op(op_id, "failed")
            raise
        return self._run(op_id, inputs, signers, outputs, change)

    def _run(
        self,
        op_id: str,
        inputs: list[dict],
        signers: list[PrivateKey | None],
        outputs: list[dict],
        new_notes: list[int],
    ) -> dict:
        """Add `new_notes` outputs, persist the signed transaction with every secret, submit it,
        and take in its outcome. Returns the outcome; raises WalletError if refused."""
        note_secrets = [
            (amount, PrivateKey(), PrivateKey()) for amount in new_notes
        ]  # (amount, spend key, r)
        all_outputs = list(outputs)
        for amount, spend, r in note_secrets:
            blinded, _ = crypto.blind(bytes.fromhex(crypto.xonly(spend)), r)
            all_outputs.append(
                {"kind": "note", "amount": amount, "blinded": blinded.format().hex()}
            )
        tx = {"inputs": inputs, "outputs": all_outputs, "signatures": []}
        tid = txid(tx)
        tx["signatures"] = [
            crypto.schnorr_sign(k, bytes.fromhex(tid)) if k else "" for k in signers
        ]
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            for j, (amount, spend, r) in enumerate(note_secrets):
                self.db.execute(
                    "INSERT INTO pending_outputs (op_id, txid, idx, amount, spend_key, blinding) VALUES (?, ?, ?, ?, ?, ?)",
                    (op_id, tid, len(outputs) + j, amount, spend.secret.hex(), r.secret.hex()),
                )
            txs = self.operation(op_id)["data"].get("txs", [])
            self._update_op(op_id, "submitted", txs=[*txs, tid], pending_tx=tx)
            self.db.execute("COMMIT")
        return self._submit(op_id, tx)

    def _submit(self, op_id: str, tx: dict) -> dict:
        try:
            result = self.api.submit(tx)
        except FedApiError as exc:
            if exc.unreachable:
                raise WalletError(
                    "federation_unreachable", f"{exc.message} (the operation resumes later)"
                ) from None
            self._release(op_id, tx)
            raise WalletError(exc.code, exc.message) from None
        self._accept(op_id, result)
        return result["outcome"]

    def _release(self, op_id: str, tx: dict) -> None:
        tid = txid(tx)
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "UPDATE notes SET state = 'unspent', op_id = NULL WHERE op_id = ? AND state = 'spending'",
                (op_id,),
            )
            self.db.execute("DELETE FROM pending_outputs WHERE txid = ?", (tid,))
            self._update_op(op_id, "failed", pending_tx=None)
            self.db.execute("COMMIT")

    def _accept(self, op_id: str, result: dict) -> None:
        tid, outcome = result["txid"], result["outcome"]
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            for p in self.db.execute(
                "SELECT * FROM pending_outputs WHERE txid = ?", (tid,)
            ).fetchall():
                o = outcome[p["idx"]]
                spend, r = (
                    PrivateKey(bytes.fromhex(p["spend_key"])),
                    PrivateKey(bytes.fromhex(p["blinding"])),
                )
                nonce = crypto.xonly(spend)
                blinded, _ = crypto.blind(bytes.fromhex(nonce), r)
                c_ = crypto.point(o["blind_signature"])
                key = self._mint_key(p["amount"])
                if not crypto.verify_dleq(
                    blinded, c_, int(o["dleq_e"], 16), int(o["dleq_s"], 16), key
                ):
                    self.db.execute("ROLLBACK")
                    raise WalletError(
                        "bad_signature", "the federation's blind signature has no valid DLEQ proof"
                    )
                c = crypto.unblind(c_, r, key)
                self.db.execute(
                    "INSERT OR IGNORE INTO notes (nonce, amount, spend_key, signature, state, created)"
                    " VALUES (?, ?, ?, ?, 'unspent', ?)",
                    (nonce, p["amount"], p["spend_key"], c.format().hex(), time.time()),
                )
            self.db.execute("DELETE FROM pending_outputs WHERE txid = ?", (tid,))
            self.db.execute(
                "UPDATE notes SET state = 'spent' WHERE op_id = ? AND state = 'spending'", (op_id,)
            )
            self._update_op(op_id, "done", pending_tx=None, last_outcome=outcome)
            self.db.execute("COMMIT")

    def resume(self) -> list[str]:
        """Finish every operation a crash left with a transaction in flight, and release the
        notes of operations that reserved them but never saved a transaction (nothing of
        theirs can have reached the federation). Call it on start, before new operations."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            stale = self.db.execute(
                "SELECT DISTINCT n.op_id FROM notes n JOIN operations o ON o.id = n.op_id"
                " WHERE n.state = 'spending' AND o.state = 'created'"
            ).fetchall()
            for row in stale:
                self.db.execute(
                    "UPDATE notes SET state = 'unspent', op_id = NULL WHERE op_id = ?"
                    " AND state = 'spending'",
                    (row["op_id"],),
                )
                self._update_op(row["op_id"], "failed", error="interrupted before submitting")
            self.db.execute("COMMIT")
        done = []
        for row in self.db.execute(
            "SELECT id FROM operations WHERE state = 'submitted'"
        ).fetchall():
            op = self.operation(row["id"])
            tx = op["data"].get("pending_tx")
            if tx:
                try:
                    self._submit(op["id"], tx)
                    done.append(op["id"])
                except WalletError:
                    continue
        return done

    def _note_inputs(self, notes: list[sqlite3.Row]) -> tuple[list[dict], list[PrivateKey | None]]:
        inputs, signers = [], []
        for n in notes:
            key = PrivateKey(bytes.fromhex(n["spend_key"]))
            inputs.append(
                {
                    "kind": "note",
                    "amount": n["amount"],
                    "nonce": n["nonce"],
                    "signature": n["signature"],
                }
            )
            signers.append(key)
        return inputs, signers

    # --- e-cash -------------------------------------------------------------------------------
    def _done_before(self, op_id: str | None, kind: str) -> dict | None:
        """The operation `op_id` of `kind` if one ran (finished first if a crash left it in
        flight); WalletError if it was refused."""
        if op_id is None:
            return None
        row = self.db.execute("SELECT kind FROM operations WHERE id = ?", (op_id,)).fetchone()
        if row is None:
            return None
        if row["kind"] != kind:
            raise WalletError("invalid_operation", f"operation {op_id} is not a {kind}")
        state = self.operation(op_id)["state"]
        if state == "created":  # stopped before its transaction was stored: nothing happened
            self.db.execute("DELETE FROM operations WHERE id = ? AND state = 'created'", (op_id,))
            return None
        if state == "submitted":
            self.resume()
        op = self.operation(op_id)
        if op["state"] == "failed":
            raise WalletError("rejected", f"operation {op_id} was refused by the federation")
        return op

    def reissue(self, notes_text: str, op_id: str | None = None) -> int:
        """Take notes from a notes string into this wallet; returns the amount received. With
        `op_id`, asking again answers the first run's amount and takes nothing more."""
        done = self._done_before(op_id, "reissue")
        if done is not None:
            return int(done["data"].get("credited", 0))
        try:
            fed, notes = decode_notes(notes_text)
        except ValueError as exc:
            raise WalletError("invalid_notes", str(exc)) from None
        if fed != self.federation_id:
            raise WalletError("other_federation", "these notes belong to another federation")
        inputs, signers = [], []
        for n in notes:
            if n["amount"] not in DENOMINATIONS:
                raise WalletError("invalid_notes", f"{n['amount']} is not a denomination")
            try:
                key = PrivateKey(bytes.fromhex(n["spend_key"]))
            except ValueError:
                raise WalletError("invalid_notes", "a note's spend key is damaged") from None
            inputs.append(
                {
                    "kind": "note",
                    "amount": n["amount"],
                    "nonce": crypto.xonly(key),
                    "signature": n["signature"],
                }
            )
            signers.append(key)
        total = sum(n["amount"] for n in notes)
        change = self._change_outputs(total, len(inputs), 0)
        op = self._new_op("reissue", {"amount": total, "credited": sum(change)}, op_id)
        self._run(op, inputs, signers, [], change)
        return sum(change)

    def spend(self, amount_msat: int, op_id: str | None = None) -> str:
        """Take notes worth exactly `amount_msat` out of the wallet, as a notes string. With
        `op_id`, asking again answers the same notes."""
        done = self._done_before(op_id, "spend")
        if done is not None:
            if done["data"].get("amount") != amount_msat:
                raise WalletError("invalid_operation", f"operation {op_id} spent another amount")
            return str(done["data"]["notes"])
        if not isinstance(amount_msat, int) or amount_msat <= 0:
            raise WalletError("invalid_amount", "amount must be a positive number of msat")
        if amount_msat > self.balance():  # before any operation is recorded
            raise WalletError(
                "insufficient_funds", f"balance {self.balance()} msat is below {amount_msat} msat"
            )
        with self.lock:
            exact = self._exact_notes(amount_msat)
        if exact is None:  # split first: a transaction to ourselves making the exact notes
            op = self._new_op("split", {"amount": amount_msat})
            with self.lock:
                notes = self._select(op, amount_msat)
            inputs, signers = self._note_inputs(notes)
            total = sum(n["amount"] for n in notes)
            fixed = decompose(amount_msat)
            change = self._change_outputs(total - amount_msat, len(inputs), len(fixed))
            self._run(op, inputs, signers, [], fixed + change)
            with self.lock:
                exact = self._exact_notes(amount_msat)
            if exact is None:
                raise WalletError("internal", "could not make exact notes")
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")  # the operation and its notes, or nothing
            op = self._new_op("spend", {"amount": amount_msat}, op_id)
            for n in exact:
                self.db.execute(
                    "UPDATE notes SET state = 'exported', op_id = ? WHERE nonce = ?",
                    (op, n["nonce"]),
                )
            text = encode_notes(
                self.federation_id,
                [
                    {
                        "amount": n["amount"],
                        "spend_key": n["spend_key"],
                        "signature": n["signature"],
                    }
                    for n in exact
                ],
            )
            self._update_op(op, "done", notes=text)
            self.db.execute("COMMIT")
        return text

    def _exact_notes(self, amount: int) -> list[sqlite3.Row] | None:
        out = []
        for d in decompose(amount):
            # denominations in a decomposition are distinct, so each query finds another note
            row = self.db.execute(
                "SELECT * FROM notes WHERE state = 'unspent' AND amount = ? LIMIT 1", (d,)
            ).fetchone()
            if row is None:
                return None
            out.append(row)
        return out
