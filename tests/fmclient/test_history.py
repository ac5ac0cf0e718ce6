"""A federation's signed session history (fmclient/history.py) against what a real 4-guardian
fedimintd 0.13.0 answered `await_signed_session_outcome` (tests/fmclient/data/
session-outcomes.json, made by peers/session_vectors.py): every session decodes and verifies
against the config's broadcast keys, and any change to an item, the signatures or the index
is refused; the header's merkle root against an independent computation; the transactions
re-encode to the guardians' bytes, with the txids the guardians confirmed; `SessionHistory`
takes a guardian's answer only when it verifies."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from coincurve import PrivateKey

from fmclient.config import parse_client_config
from fmclient.encoding import DecodeError, Reader, encode
from fmclient.history import (
    MODULE,
    TRANSACTION,
    SessionHistory,
    SessionOutcome,
    broadcast_keys,
    decode_signed_outcome,
    merkle_root,
    signed_message,
    verify,
)
from fmclient.tx import from_serde

DATA = Path(__file__).parent / "data"
DOC = json.loads((DATA / "session-outcomes.json").read_text())
CONFIG = parse_client_config(DOC["client_config"])
KEYS = broadcast_keys(CONFIG)
SESSIONS = {s["index"]: s for s in DOC["sessions"]}
LNV2 = CONFIG.module_id("lnv2")


def _raw(index: int) -> bytes:
    return from_serde(SESSIONS[index]["answer"])


def _outcome(index: int) -> SessionOutcome:
    return decode_signed_outcome(_raw(index), index)


def _serde(data: bytes) -> list[str]:
    """What a guardian answers: a SerdeModuleEncoding (hex of the length-prefixed bytes)."""
    return [encode(lambda w: w.bytes(data)).hex()]


def _encode(outcome: SessionOutcome) -> bytes:
    """A SignedSessionOutcome's encoding, from its items' raw bytes and its signatures."""
    return encode(
        lambda w: w.vec(outcome.items, lambda w2, i: w2.raw(i.raw)).map(
            outcome.signatures, lambda w2, p: w2.varint(p), lambda w2, s: w2.raw(s)
        )
    )


def test_the_vectors_cover_every_kind_of_session() -> None:
    kinds = {s["kind"] for s in DOC["sessions"]}
    assert kinds == {"empty", "module", "transaction"}
    assert len(KEYS) == 4 and CONFIG.threshold == 3


@pytest.mark.parametrize("index", sorted(SESSIONS))
def test_every_session_decodes_and_verifies(index: int) -> None:
    outcome = _outcome(index)
    assert outcome.index == index
    kind = SESSIONS[index]["kind"]
    variants = {i.variant for i in outcome.items}
    assert (kind == "empty") == (not outcome.items)
    assert (kind == "transaction") == (TRANSACTION in variants)
    assert variants <= {TRANSACTION, MODULE}
    assert set(outcome.signatures) <= set(KEYS) and len(outcome.signatures) >= 3
    assert all(len(s) == 64 for s in outcome.signatures.values())
    assert all(i.peer in KEYS for i in outcome.items)
    assert verify(outcome, KEYS, CONFIG.threshold)
    assert _encode(outcome) == _raw(index)  # the items' raw bytes are exactly the encoding
    if kind == "empty":
        assert outcome.header() == index.to_bytes(8, "big") + bytes(32)


def test_the_guardians_votes_are_read_from_module_items() -> None:
    module_only = [i for i, s in SESSIONS.items() if s["kind"] == "module"]
    votes = [
        (peer, body)
        for i in module_only
        for peer, body in _outcome(i).module_items(LNV2)
        if body[0] == 0  # BlockCountVote
    ]
    assert {peer for peer, _ in votes} == set(KEYS)
    for _, body in votes:
        tag, inner = Reader(body, "vote").framed()
        assert tag == 0 and 100 < inner.varint() < 1000  # a regtest chain of a few hundred


def _flip(data: bytes, pos: int) -> bytes:
    return data[:pos] + bytes([data[pos] ^ 1]) + data[pos + 1 :]


@pytest.mark.parametrize("index", [i for i, s in SESSIONS.items() if s["kind"] != "empty"])
def test_a_flipped_byte_in_any_item_is_refused(index: int) -> None:
    outcome = _outcome(index)
    refused = 0
    for n, item in enumerate(outcome.items):
        for pos in (len(item.raw) // 2, len(item.raw) - 2):
            raw = _flip(item.raw, pos)
            items = (
                *outcome.items[:n],
                dataclasses.replace(item, raw=raw),
                *outcome.items[n + 1 :],
            )
            changed = SessionOutcome(index, items, outcome.signatures)
            assert not verify(changed, KEYS, CONFIG.threshold)
            refused += 1
    assert refused == 2 * len(outcome.items)


def test_a_flipped_byte_in_the_encoding_is_refused_or_undecodable() -> None:
    index = next(i for i, s in SESSIONS.items() if s["kind"] == "transaction")
    data = _raw(index)
    for pos in range(0, len(data), max(1, len(data) // 97)):
        try:
            outcome = decode_signed_outcome(_flip(data, pos), index)
        except (DecodeError, ValueError):
            continue
        assert not verify(outcome, KEYS, CONFIG.threshold), pos


@pytest.mark.parametrize("index", sorted(SESSIONS))
def test_signature_changes_are_refused(index: int) -> None:
    outcome = _outcome(index)
    sigs = outcome.signatures
    t = CONFIG.threshold

    def with_sigs(s: dict[int, bytes]) -> bool:
        return verify(SessionOutcome(index, outcome.items, s), KEYS, t)

    assert with_sigs(dict(sigs))
    first = next(iter(sigs))
    # one dropped: fewer than a threshold (the guardians sent exactly a threshold)
    assert len(sigs) == t
    assert not with_sigs({p: s for p, s in sigs.items() if p != first})
    assert not with_sigs({})
    # an extra one from a peer the config does not list, even with a valid-looking signature
    assert not with_sigs({**sigs, 4: sigs[first]})
    # the missing guardian's slot filled with another's signature
    (missing,) = set(KEYS) - set(sigs)
    assert not with_sigs({**sigs, missing: sigs[first]})
    # a signature by a key not in the config, over the right message, in a guardian's slot
    stranger = PrivateKey(b"\x05" * 32)
    forged = stranger.sign_schnorr(signed_message(KEYS, outcome.header()), b"\x00" * 32)
    assert not with_sigs({**sigs, first: forged})
    # a flipped bit in one signature
    assert not with_sigs({**sigs, first: _flip(sigs[first], 10)})
    # the same signatures under a config that lists the stranger in place of that guardian
    keys = {**KEYS, first: stranger.public_key.format(compressed=True)}
    assert not verify(outcome, keys, t)
    # and fewer than the threshold is refused even when every signature is valid
    assert not verify(outcome, KEYS, t + 1)


def test_a_signer_set_of_strangers_verifies_only_with_their_keys() -> None:
    """The check is the real rule, not a coincidence of the vectors: our own four guardians'
    signatures over a made-up session verify exactly as the real ones do."""
    secrets = {p: PrivateKey(bytes([p + 1]) * 32) for p in range(4)}
    keys = {p: k.public_key.format(compressed=True) for p, k in secrets.items()}
    outcome = _outcome(next(i for i, s in SESSIONS.items() if s["kind"] == "transaction"))
    msg = signed_message(keys, outcome.header())
    sigs = {p: secrets[p].sign_schnorr(msg, b"\x01" * 32) for p in (0, 1, 3)}
    ours = SessionOutcome(outcome.index, outcome.items, sigs)
    assert verify(ours, keys, 3)
    assert not verify(ours, KEYS, 3)


@pytest.mark.parametrize("index", sorted(SESSIONS))
def test_the_wrong_session_index_is_refused(index: int) -> None:
    for other in (index - 1, index + 1, index + 2**32):
        if other >= 0:
            assert not verify(decode_signed_outcome(_raw(index), other), KEYS, 3)


def _bitcoin_merkle_root(leaves: list[bytes]) -> bytes:
    """Written apart from history.merkle_root: duplicate the last of an odd level, then hash
    each pair once with SHA-256, level by level."""
    level = leaves
    while len(level) != 1:
        if len(level) % 2:
            level = [*level, level[-1]]
        level = [
            hashlib.sha256(b"".join(level[i : i + 2])).digest() for i in range(0, len(level), 2)
        ]
    return level[0]


def test_merkle_root_is_bitcoins() -> None:
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(9)]
    assert merkle_root([]) is None
    assert merkle_root(leaves[:1]) == leaves[0]
    h = hashlib.sha256
    assert merkle_root(leaves[:2]) == h(leaves[0] + leaves[1]).digest()
    ab, cc = h(leaves[0] + leaves[1]).digest(), h(leaves[2] + leaves[2]).digest()
    assert merkle_root(leaves[:3]) == h(ab + cc).digest()
    for n in (1, 2, 3, 4, 5, 6, 7, 9):
        assert merkle_root(leaves[:n]) == _bitcoin_merkle_root(leaves[:n]), n
    # bitcoin's known quirk, kept: a row ending in a doubled leaf has the same root
    assert merkle_root(leaves[:5]) == merkle_root([*leaves[:5], leaves[4]])
    assert merkle_root(leaves[:2]) != merkle_root(leaves[1::-1])


def test_the_header_is_the_index_and_the_merkle_root_of_the_items() -> None:
    for index in SESSIONS:
        outcome = _outcome(index)
        leaves = [hashlib.sha256(i.raw).digest() for i in outcome.items]
        root = _bitcoin_merkle_root(leaves) if leaves else bytes(32)
        assert outcome.header() == index.to_bytes(8, "big") + root


def test_transactions_re_encode_to_the_guardians_bytes_with_the_confirmed_txids() -> None:
    txids = []
    for index in SESSIONS:
        for item in _outcome(index).items:
            if item.transaction is None:
                continue
            # the item: variant 0, the transaction's length-prefixed bytes, the proposing peer
            r = Reader(item.raw, "item")
            variant, body = r.framed()
            tx_bytes = body.raw(body.remaining())
            assert variant == TRANSACTION and r.varint() == item.peer
            r.done()
            assert item.transaction.to_bytes() == tx_bytes
            # the txid: SHA-256 of the transaction without its signatures (inputs, outputs,
            # nonce), as the guardians' `await_transaction` confirmed it
            tx = Reader(tx_bytes, "transaction")
            tx.vec(Reader.framed), tx.vec(Reader.framed), tx.raw(8)
            assert hashlib.sha256(tx_bytes[: tx.pos]).hexdigest() == item.transaction.txid
            assert len(item.transaction.signatures) == len(item.transaction.inputs)
            txids.append(item.transaction.txid)
    assert txids == DOC["txids"] and len(txids) >= 2


def test_outputs_lists_each_transactions_outputs_of_a_module() -> None:
    mint = CONFIG.module_id("mintv2")
    index = next(i for i, s in SESSIONS.items() if s["kind"] == "transaction")
    outcome = _outcome(index)
    txs = [i.transaction for i in outcome.items if i.transaction is not None]
    want = [(t.txid, n, o.body) for t in txs for n, o in enumerate(t.outputs) if o.module == mint]
    assert list(outcome.outputs(mint)) == want and want
    assert list(outcome.outputs(LNV2)) == []


class FakeApi:
    """`FederationApi.verified`: each guardian's answer to the check, in order, until `want`
    pass (what the real one does over the network)."""

    def __init__(self, answers: dict[int, Any]) -> None:
        self.answers, self.calls = answers, []

    async def verified(
        self,
        method: str,
        params: Any,
        verify: Any,
        want: int | None = None,
        timeout: float = 120.0,
        long_poll: bool = False,
    ) -> dict[int, Any]:
        self.calls.append((method, params, want, long_poll))
        got = {}
        for peer, answer in self.answers.items():
            value = verify(peer, answer)
            if value is not None:
                got[peer] = value
                if len(got) >= (want or 3):
                    return got
        raise TimeoutError("no guardian answered with a session that verifies")

    async def current_consensus(self, method: str, params: Any = None, **kw: Any) -> Any:
        assert method == "session_count"
        return 5


async def test_session_history_takes_a_verifying_answer() -> None:
    index = next(i for i, s in SESSIONS.items() if s["kind"] == "transaction")
    api = FakeApi({0: SESSIONS[index]["answer"]})
    history = SessionHistory(api, CONFIG)  # type: ignore[arg-type]
    assert await history.count() == 5
    got = await history.session(index)
    assert got == _outcome(index)
    assert api.calls == [("await_signed_session_outcome", index, 1, True)]


async def test_session_history_rejects_a_tampered_answer_and_takes_an_honest_one() -> None:
    index = next(i for i, s in SESSIONS.items() if s["kind"] == "transaction")
    outcome = _outcome(index)
    # guardian 0 hides the first item (a different session, same signatures)
    hidden = SessionOutcome(index, outcome.items[1:], outcome.signatures)
    # guardian 1 answers another session's signed outcome
    other = next(i for i in SESSIONS if i != index)
    answers = {
        0: _serde(_encode(hidden)),
        1: SESSIONS[other]["answer"],
        2: ["zz"],  # not hex
        3: SESSIONS[index]["answer"],
    }
    history = SessionHistory(FakeApi(answers), CONFIG)  # type: ignore[arg-type]
    assert await history.session(index) == outcome
    del answers[3]
    with pytest.raises(TimeoutError):
        await history.session(index)
