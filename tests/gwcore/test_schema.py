"""Schema versions and forward migrations (gwcore/schema.py), on databases made by the schema
before versions (commit 04c549e's code made tests/data/schema_v1/*.sql, with a few rows): each
store opens its own and brings it to its version (the router's migration 2), rows kept; a test migration list upgrades the
router's after a consistent copy beside it, all in one transaction; a newer database is refused
with one line naming both versions, by the store and by the router's process."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bus.dedup import REPLIES_DB, ReplyStore
from gwcore.schema import Migration, Schema, SchemaTooNew, upgrade, user_version
from services.actor.store import ACTOR_DB, ActorStore
from services.router.registry import ROUTER_DB, FederationRegistry

V1 = Path(__file__).resolve().parents[1] / "data" / "schema_v1"
FED = "ab" * 32


def made_by_v1(folder: Path, name: str) -> Path:
    """A database as 04c549e's code left it (no user_version)."""
    path = folder / f"{name}.sqlite"
    db = sqlite3.connect(path)
    db.executescript((V1 / f"{name}.sql").read_text())
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    return path


def _rows(path: Path, table: str) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    finally:
        db.close()


def _version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return user_version(db)
    finally:
        db.close()


def test_every_store_opens_its_v1_database_at_its_version(tmp_path: Path) -> None:
    router = made_by_v1(tmp_path, "router")
    registry = FederationRegistry(router)
    entry = registry.get(FED)
    assert entry is not None and (entry.scid, entry.state) == (1, "running")
    # migration 2: the federation keeps its place (its scid) before any added later
    later = registry.add("cd" * 32, "later", "fed11x", "ws://x", "gateway-actor-cdcd")
    assert [e.federation_id for e in registry.all()] == [FED, later.federation_id]
    assert registry.by_payment_hash("cd" * 32) == entry
    assert registry.claim_outgoing("ef" * 32, FED, "12" * 32)  # still its own claim
    assert not registry.claim_outgoing("ef" * 32, FED, "34" * 32)
    actor = ActorStore(made_by_v1(tmp_path, "actor"))
    assert actor.meta("gateway_key") == "11" * 32
    # (rows of the development federation's payments: kept, read by nothing)
    assert [r[0] for r in _rows(tmp_path / "actor.sqlite", "outgoing")] == ["c1"]
    replies = ReplyStore(made_by_v1(tmp_path, "bus-replies"), retention_s=10**10)
    stored = replies.get("m1")
    assert stored is not None and stored.payload == b'{"x":1}'
    for name, schema in (
        ("router", ROUTER_DB),
        ("actor", ACTOR_DB),
        ("bus-replies", REPLIES_DB),
    ):
        assert _version(tmp_path / f"{name}.sqlite") == schema.version, name
    # only the router's was migrated (to 2), after a copy of it as it was
    assert ROUTER_DB.version == 2 and ACTOR_DB.version == REPLIES_DB.version == 1
    assert sorted(p.name for p in tmp_path.glob("*.bak")) == ["router.sqlite.v1.bak"]


def test_a_new_database_is_stamped_with_the_current_version(tmp_path: Path) -> None:
    FederationRegistry(tmp_path / "router.sqlite")
    assert _version(tmp_path / "router.sqlite") == ROUTER_DB.version
    assert list(tmp_path.glob("*.bak")) == []


def _note_column(db: sqlite3.Connection) -> None:
    for (scid,) in db.execute("SELECT scid FROM federations").fetchall():
        db.execute("UPDATE federations SET note = ? WHERE scid = ?", (f"scid {scid}", scid))


TWO_MORE = Schema(
    "router.sqlite",
    (
        Migration(2, "a note per federation", ("ALTER TABLE federations ADD COLUMN note TEXT",)),
        Migration(3, "the note filled in", (_note_column,)),
    ),
)


def test_a_migration_list_upgrades_after_a_consistent_copy(tmp_path: Path) -> None:
    path = made_by_v1(tmp_path, "router")
    before = _rows(path, "federations")
    db = sqlite3.connect(path, isolation_level=None)
    assert upgrade(db, path, TWO_MORE) == 1
    assert user_version(db) == 3
    assert db.execute("SELECT scid, note FROM federations").fetchall() == [(1, "scid 1")]
    db.close()
    copy = tmp_path / "router.sqlite.v1.bak"  # the database as it was, for a rollback
    assert _rows(copy, "federations") == before and _version(copy) == 0
    assert copy.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    # opened again: nothing to do
    db = sqlite3.connect(path, isolation_level=None)
    assert upgrade(db, path, TWO_MORE) == 3
    db.close()


def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    path = made_by_v1(tmp_path, "router")

    def boom(db: sqlite3.Connection) -> None:
        raise RuntimeError("disk on fire")

    broken = Schema("router.sqlite", (*TWO_MORE.migrations, Migration(4, "fails", (boom,))))
    db = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(RuntimeError, match="disk on fire"):
        upgrade(db, path, broken)
    assert user_version(db) == 0  # still the v1 database: migrations 2 and 3 rolled back too
    columns = [r[1] for r in db.execute("PRAGMA table_info(federations)")]
    assert "note" not in columns
    db.close()
    assert (tmp_path / "router.sqlite.v1.bak").exists()


def test_a_newer_database_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = made_by_v1(tmp_path, "router")
    db = sqlite3.connect(path, isolation_level=None)
    upgrade(db, path, TWO_MORE)
    db.close()
    with pytest.raises(SchemaTooNew) as refused:
        FederationRegistry(path)
    message = str(refused.value)
    assert "\n" not in message
    assert f"schema version 3 is newer than this gateway's {ROUTER_DB.version}" in message
    assert f"router.sqlite.v{ROUTER_DB.version}.bak" in message
    assert _version(path) == 3  # untouched


def test_misnumbered_migrations_are_a_bug() -> None:
    with pytest.raises(ValueError, match="numbered 2, 3"):
        Schema("x.sqlite", (Migration(3, "skips 2", ()),))


def test_the_router_refuses_to_start_on_a_newer_database(tmp_path: Path) -> None:
    data, run = tmp_path / "data", tmp_path / "run"
    data.mkdir()
    path = made_by_v1(data, "router")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA user_version = 7")
    db.close()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "gateway-router")],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
            "GATEWAY_ROUTER_DATA_DIR": str(data),
            "GATEWAY_ROUTER_RUN_DIR": str(run),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("gateway-router: ") and "schema version 7 is newer" in last, last
    assert "Traceback" not in done.stderr
