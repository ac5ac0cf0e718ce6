"""The recovery scans (fmclient/recovery_scan.py) and their driver (fmclient/recovery.py) with
fakes: the crates' gap logic, spent notes dropped, the slices' encodings checked against the
agreed hash, and a crash mid-recovery resumed from the last slice without counting anything
twice. The real federations' side is tests/fedimint/test_recovery.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest

from fmclient import derive
from fmclient.derive import bip39_root_secret, module_root_secret
from fmclient.recovery import (
    SCHEMA,
    ModuleRecovery,
    Recovery,
    RecoveryError,
    _base64_serde,
    mint_v1_items,
    mint_v2_items,
    wallet_v1_items,
)
from fmclient.recovery_scan import (
    GAP_LIMIT,
    MintV1Input,
    MintV1Output,
    MintV1Scan,
    MintV2Input,
    MintV2Output,
    MintV2Scan,
    WalletV1Input,
    WalletV1Scan,
    mint_v2_ours,
)
from fmclient.wallet import MintWallet

WORDS = "legal winner thank year wave sausage worth useful legal winner thank yellow"
MODULE = module_root_secret(bip39_root_secret(WORDS), bytes(range(32)), 1)


def fake_nonces(module: object, amount: int, index: int) -> tuple[bytes, bytes]:
    """(blind nonce hash, nonce hash) standing in for the derivation: readable and fast."""
    return f"b{amount}:{index}".encode().ljust(20, b"."), f"n{amount}:{index}".encode().ljust(
        20, b"."
    )


def out(amount: int, index: int) -> MintV1Output:
    return MintV1Output(amount, fake_nonces(None, amount, index)[0])


def spend(amount: int, index: int) -> MintV1Input:
    return MintV1Input(fake_nonces(None, amount, index)[1])


def test_mint_v1_scan_finds_ours_drops_spent_and_follows_the_gap() -> None:
    scan = MintV1Scan(MODULE, [1, 2], fake_nonces)  # type: ignore[arg-type]
    scan.start()
    assert scan.next_pending == {}  # a tier's first pool is made when its first output comes
    # another's output, an output of ours of the wrong amount: neither is ours
    scan.handle([MintV1Output(1, b"x" * 20), MintV1Output(2, fake_nonces(None, 1, 0)[0])])
    assert scan.unspent() == []
    assert scan.next_pending == {1: GAP_LIMIT, 2: GAP_LIMIT}  # the crate's first pools
    scan.handle([MintV1Output(4, fake_nonces(None, 4, 0)[0])])  # an amount of no tier
    assert scan.unspent() == [] and 4 not in scan.next_pending
    scan.handle([out(1, 0), out(1, 3), out(2, 99), spend(1, 0), MintV1Input(b"y" * 20)])
    assert scan.unspent() == [(1, 3), (2, 99)]
    # the crate's gap arithmetic: from the last index seen before this one
    assert scan.next_pending[1] == 0 + GAP_LIMIT  # 0 first: missing = 0 + 100 - 100
    assert scan.next_pending[2] == 99 + GAP_LIMIT  # 99 first: the pool grows to 199
    scan.handle([out(2, 150)])  # reachable only because the pool grew
    assert scan.next_pending[2] == 99 + GAP_LIMIT + 0  # last was 99: 199 - 199 = 0 more
    scan.handle([out(2, 190)])
    assert scan.next_pending[2] == 150 + GAP_LIMIT  # last was 150: 250 - 199 = 51 more
    assert scan.next_indexes() == {1: 4, 2: 191}
    scan.handle([out(1, 3)])  # the same output again: already taken from the pool
    assert scan.unspent() == [(1, 3), (2, 99), (2, 150), (2, 190)]
    # its state survives a round trip through JSON (what is committed after each slice)
    again = MintV1Scan(MODULE, [1, 2], fake_nonces)  # type: ignore[arg-type]
    again.load(json.loads(json.dumps(scan.to_json())))
    assert again.to_json() == scan.to_json()


def test_mint_v1_scan_outside_the_gap_finds_nothing() -> None:
    scan = MintV1Scan(MODULE, [8], fake_nonces)  # type: ignore[arg-type]
    scan.start()
    scan.handle([out(8, GAP_LIMIT)])  # one past the pool: never looked at, as in the crate
    assert scan.unspent() == [] and scan.next_indexes() == {}


def test_mint_v1_scan_derives_the_crates_nonces() -> None:
    """The real derivation: the note's blind nonce and nonce hashes as recovery items carry."""
    from coincurve import PrivateKey

    from fmclient import tbs
    from gwcore.bitcoin_address import hash160

    scan = MintV1Scan(MODULE, [1024])
    scan.start()
    spend_key, r = derive.mint_v1_note_keys(derive.mint_v1_note_secret(MODULE, 1024, 7))
    nonce = PrivateKey(spend_key).public_key.format(compressed=True)
    blinded = tbs.to_bytes(tbs.blind(tbs.message_v1(nonce), r))
    scan.handle([MintV1Output(1024, hash160(blinded))])
    assert scan.unspent() == [(1024, 7)]
    scan.handle([MintV1Input(hash160(nonce))])
    assert scan.unspent() == []


def test_mint_v2_scan_takes_only_ours_by_filter_and_nonce() -> None:
    from coincurve import PrivateKey

    from fmclient import tbs
    from gwcore.bitcoin_address import hash160

    scan = MintV2Scan(MODULE)
    tweak = derive.mintv2_grind_tweak(scan.tweak_filter, os.urandom)
    spend_key, r = derive.mintv2_note_keys(MODULE, 12, tweak)
    nonce = PrivateKey(spend_key).public_key.format(compressed=True)
    blinded = tbs.to_bytes(tbs.blind(tbs.message_sha256(nonce), r))
    ours = MintV2Output(12, hash160(blinded), tweak)
    assert mint_v2_ours(MODULE, scan.tweak_filter, ours) == hash160(nonce)
    assert mint_v2_ours(MODULE, scan.tweak_filter, MintV2Output(13, ours.nonce_hash, tweak)) is None
    scan.handle([ours, ours, MintV2Output(12, b"z" * 20, b"\x00" * 16)])  # a duplicate, another's
    assert scan.unspent() == [(12, tweak)]
    scan.handle([MintV2Input(hash160(nonce))])
    assert scan.unspent() == []


def test_wallet_v1_scan_sets_the_next_tweak_index_past_the_last_used() -> None:
    scan = WalletV1Scan(lambda i: i.to_bytes(2, "big"))
    scan.start()
    assert scan.next_pending == 50 and scan.new_start_index() == 8  # none used: 0 + 8
    scan.handle([WalletV1Input("aa:0", (3).to_bytes(2, "big"))])
    scan.handle([WalletV1Input("bb:1", (49).to_bytes(2, "big"))])  # refilled to 99
    scan.handle([WalletV1Input("cc:0", (98).to_bytes(2, "big")), WalletV1Input("dd:0", b"??")])
    assert scan.new_start_index() == 98 + 8 and scan.next_pending == 148
    assert scan.claimed_outpoints() == ["aa:0", "bb:1", "cc:0"]


def test_the_slices_read_as_the_guardians_serve_them() -> None:
    # mint v1: base64url (no padding) of the length-prefixed consensus encoding
    items = bytes([2]) + bytes([0, 21, 8]) + b"h" * 20 + bytes([1, 20]) + b"i" * 20
    import base64

    text = base64.urlsafe_b64encode(bytes([len(items)]) + items).decode().rstrip("=")
    assert _base64_serde([text]) == items
    assert mint_v1_items(items) == [MintV1Output(8, b"h" * 20), MintV1Input(b"i" * 20)]
    # mintv2: serde JSON, hashed as its consensus encoding
    got, encoded = mint_v2_items(
        [
            {"Output": {"denomination": 9, "nonce_hash": "ab" * 20, "tweak": list(range(16))}},
            {"Input": {"nonce_hash": "cd" * 20}},
        ]
    )
    assert got == [MintV2Output(9, bytes.fromhex("ab" * 20), bytes(range(16))),
                   MintV2Input(bytes.fromhex("cd" * 20))]  # fmt: skip
    assert encoded == bytes([2, 0, 37, 9]) + bytes.fromhex("ab" * 20) + bytes(range(16)) + bytes(
        [1, 20]
    ) + bytes.fromhex("cd" * 20)
    with pytest.raises(ValueError):
        mint_v2_items([{"Output": {"denomination": 9, "nonce_hash": "ab", "tweak": []}}])
    # wallet v1
    assert wallet_v1_items([{"Input": {"outpoint": "ef" * 32 + ":3", "script": "0014"}}]) == [
        WalletV1Input("ef" * 32 + ":3", b"\x00\x14")
    ]
    with pytest.raises(RecoveryError):
        wallet_v1_items([{"Output": {}}])


class FakeSlices:
    """A module's log of `items`, served `size` at a time; fails once after `fail_after`
    slices (a crash or a lost guardian mid-recovery)."""

    size = 2

    def __init__(self, items: list, fail_after: int | None = None) -> None:
        self.items, self.fail_after, self.served = items, fail_after, 0

    async def count(self) -> int:
        return len(self.items)

    async def slice(self, start: int, end: int) -> list:
        if self.fail_after is not None and self.served == self.fail_after:
            self.fail_after = None
            raise ConnectionError("the guardian went away")
        self.served += 1
        return self.items[start:end]


class FakeWallet:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.executescript(SCHEMA + "CREATE TABLE found (amount INTEGER, idx INTEGER);")

    transaction = MintWallet.transaction  # it needs only `db`


def test_a_recovery_interrupted_resumes_from_its_last_slice_and_writes_once(
    tmp_path: Path,
) -> None:
    log = [out(1, 0), out(1, 1), spend(1, 0), out(2, 5), MintV1Output(2, b"q" * 20)]
    slices = FakeSlices(log, fail_after=1)

    def part() -> ModuleRecovery:
        async def results(scan: MintV1Scan):  # type: ignore[no-untyped-def]
            return lambda db: db.executemany("INSERT INTO found VALUES (?, ?)", scan.unspent())

        return ModuleRecovery(
            "mint",
            MintV1Scan(MODULE, [1, 2], fake_nonces),  # type: ignore[arg-type]
            slices,
            results,
        )

    wallet = FakeWallet(tmp_path / "w.sqlite")
    with pytest.raises(ConnectionError):
        asyncio.run(Recovery(wallet).run(part()))  # type: ignore[arg-type]
    assert Recovery(wallet).progress() == {  # type: ignore[arg-type]
        "mint": {"items_done": 2, "items_total": 5, "done": False}
    }
    asyncio.run(Recovery(wallet).run(part()))  # type: ignore[arg-type]  # a new process
    assert slices.served == 3  # the first slice was not read again
    assert wallet.db.execute("SELECT * FROM found ORDER BY amount").fetchall() == [(1, 1), (2, 5)]
    asyncio.run(Recovery(wallet).run(part()))  # type: ignore[arg-type]  # done: nothing again
    assert wallet.db.execute("SELECT COUNT(*) FROM found").fetchone()[0] == 2
    assert Recovery(wallet).progress()["mint"]["done"]  # type: ignore[arg-type]


def test_an_empty_slice_is_refused(tmp_path: Path) -> None:
    class Short(FakeSlices):
        async def slice(self, start: int, end: int) -> list:
            return []

    async def results(scan: MintV2Scan):  # type: ignore[no-untyped-def]
        return lambda db: None

    part = ModuleRecovery("mintv2", MintV2Scan(MODULE), Short([1, 2, 3]), results)
    with pytest.raises(RecoveryError):
        asyncio.run(Recovery(FakeWallet(tmp_path / "w.sqlite")).run(part))  # type: ignore[arg-type]


def test_hashes_are_of_the_encoding() -> None:
    """The hash the guardians agree on is SHA-256 of the slice's consensus encoding."""
    _, encoded = mint_v2_items([])
    assert hashlib.sha256(encoded).hexdigest() == hashlib.sha256(b"\x00").hexdigest()
