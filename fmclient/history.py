"""A federation's session history, read as fedimint's client reads it
(fedimint-core-0.13.0/src/session_outcome.rs, fedimint-api-client's `get_session_status_raw_v2`).

Every few minutes the guardians close a session: the consensus items they ordered in it
(transactions, and modules' own items such as block-count votes), signed by a threshold of
them. `await_signed_session_outcome(index)` answers a `SerdeModuleEncoding<SignedSessionOutcome>`:

    SignedSessionOutcome = Vec<AcceptedItem> ‖ BTreeMap<PeerId, schnorr::Signature (64 raw)>
    AcceptedItem = ConsensusItem ‖ PeerId
    ConsensusItem = enum { 0 Transaction(Transaction), 1 Module(DynModuleConsensusItem), other }

A guardian's answer is taken only when its signatures verify (`verify`): each signer's BIP340
signature over SHA-256(SHA-256(enc(broadcast public keys)) ‖ header), the header being the
session index (8 bytes big-endian) ‖ the merkle root (bitcoin's, single SHA-256) of the
SHA-256 of each accepted item's encoding, or 32 zero bytes for an empty session; at least a
threshold of signers, every one a guardian of the config. So one guardian cannot make up or
hide items: what a session holds is what the federation signed.

The gateway reads it for one thing: contracts funded to it that a lost data folder forgot
(services/actor/inflight.py), which the Lightning modules' APIs find only by outpoint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from coincurve import PublicKeyXOnly

from .api import FederationApi
from .config import ClientConfig, ConfigError
from .encoding import DecodeError, Reader, encode
from .tx import ModuleItem, Transaction, from_serde

TRANSACTION, MODULE = 0, 1  # ConsensusItem's variants


@dataclass(frozen=True)
class AcceptedItem:
    peer: int
    variant: int  # TRANSACTION, MODULE, or one this code does not know
    transaction: Transaction | None
    module_item: ModuleItem | None  # a module's consensus item (its enum's encoding)
    raw: bytes  # the item's consensus encoding: what the header's merkle tree hashes


@dataclass(frozen=True)
class SessionOutcome:
    index: int
    items: tuple[AcceptedItem, ...]
    signatures: dict[int, bytes]

    def header(self) -> bytes:
        leaves = [hashlib.sha256(i.raw).digest() for i in self.items]
        return self.index.to_bytes(8, "big") + (merkle_root(leaves) or bytes(32))

    def outputs(self, module: int) -> Iterator[tuple[str, int, bytes]]:
        """(txid, out_idx, body) of every output of `module` in the session's transactions."""
        return self._items(module, outputs=True)

    def inputs(self, module: int) -> Iterator[tuple[str, int, bytes]]:
        """(txid, in_idx, body) of every input of `module` in the session's transactions."""
        return self._items(module, outputs=False)

    def _items(self, module: int, outputs: bool) -> Iterator[tuple[str, int, bytes]]:
        for item in self.items:
            tx = item.transaction
            if tx is None:
                continue
            parts = tx.outputs if outputs else tx.inputs
            ours = [(idx, part.body) for idx, part in enumerate(parts) if part.module == module]
            txid = tx.txid if ours else ""
            for idx, body in ours:
                yield txid, idx, body

    def module_items(self, module: int) -> Iterator[tuple[int, bytes]]:
        """(peer, body) of every consensus item of `module` in the session."""
        for item in self.items:
            if item.module_item is not None and item.module_item.module == module:
                yield item.peer, item.module_item.body


def merkle_root(leaves: list[bytes]) -> bytes | None:
    """bitcoin's `merkle_tree::calculate_root` over SHA-256 leaves: pairs hashed with one
    SHA-256, the last of an odd row paired with itself; None for no leaves."""
    row = list(leaves)
    if not row:
        return None
    while len(row) > 1:
        row = [
            hashlib.sha256(row[i] + row[min(i + 1, len(row) - 1)]).digest()
            for i in range(0, len(row), 2)
        ]
    return row[0]


def _accepted_item(r: Reader) -> AcceptedItem:
    start = r.pos
    variant, body = r.framed()
    tx = module_item = None
    if variant == TRANSACTION:
        tx = Transaction.from_bytes(body.raw(body.remaining()))
    elif variant == MODULE:
        module, inner = body.framed()
        body.done()
        module_item = ModuleItem(module, inner.raw(inner.remaining()))
    peer = r.varint(0xFFFF)
    return AcceptedItem(peer, variant, tx, module_item, bytes(r.data[start : r.pos]))


def decode_signed_outcome(data: bytes, index: int) -> SessionOutcome:
    """A `SignedSessionOutcome`'s consensus encoding; DecodeError if it is not one."""
    r = Reader(data, f"session {index}")
    items = tuple(r.vec(_accepted_item))
    signatures = r.map(lambda r2: r2.varint(0xFFFF), lambda r2: r2.raw(64))
    r.done()
    return SessionOutcome(index, items, signatures)


def broadcast_keys(config: ClientConfig) -> dict[int, bytes]:
    """The guardians' session-signing keys (`broadcast_public_keys` of the client config)."""
    keys = config.raw.get("broadcast_public_keys")
    if not isinstance(keys, dict) or not keys:
        raise ConfigError("the client config has no broadcast_public_keys")
    try:
        out = {int(peer): bytes.fromhex(key) for peer, key in keys.items()}
    except (TypeError, ValueError):
        raise ConfigError("malformed broadcast_public_keys") from None
    if any(len(k) != 33 for k in out.values()):
        raise ConfigError("a broadcast public key is not 33 bytes")
    return dict(sorted(out.items()))


def signed_message(keys: dict[int, bytes], header: bytes) -> bytes:
    enc = encode(lambda w: w.map(keys, lambda w2, p: w2.varint(p), lambda w2, k: w2.raw(k)))
    return hashlib.sha256(hashlib.sha256(enc).digest() + header).digest()


def verify(outcome: SessionOutcome, keys: dict[int, bytes], threshold: int) -> bool:
    """A threshold of the federation's guardians signed this session (and nobody else)."""
    if len(outcome.signatures) < threshold:
        return False
    message = signed_message(keys, outcome.header())
    for peer, signature in outcome.signatures.items():
        key = keys.get(peer)
        if key is None:
            return False
        try:
            if not PublicKeyXOnly(key[1:]).verify(signature, message):
                return False
        except ValueError:
            return False
    return True


class SessionHistory:
    """The signed sessions of one federation, fetched one at a time from whichever guardian
    answers first with signatures that verify."""

    def __init__(self, api: FederationApi, config: ClientConfig) -> None:
        self.api, self.config = api, config
        self.keys = broadcast_keys(config)

    async def count(self) -> int:
        """Sessions closed so far (the next one's index)."""
        return int(await self.api.current_consensus("session_count", None))

    async def session(self, index: int, timeout: float = 600.0) -> SessionOutcome:
        """Session `index`, once closed (the guardians answer when it is: up to a session's
        length, about 3 minutes in production, for the one still open)."""

        def check(_peer: int, answer: object) -> SessionOutcome | None:
            try:
                outcome = decode_signed_outcome(from_serde(answer), index)
            except (DecodeError, ValueError):
                return None
            return outcome if verify(outcome, self.keys, self.config.threshold) else None

        got = await self.api.verified(
            "await_signed_session_outcome", index, check, 1, timeout, long_poll=True
        )
        return next(iter(got.values()))
