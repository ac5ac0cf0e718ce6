"""Schema versions of the gateway's SQLite databases, and their forward migrations.

Every database the gateway keeps in its data folder (router.sqlite; per actor actor.sqlite,
fedimint.sqlite, bus-replies.sqlite) names its
`Schema`: its current version and the migrations that lead there. Its owner calls `upgrade` right
after opening it and before creating today's tables (`CREATE TABLE IF NOT EXISTS …`, which
stays the owner's), so an old database is brought forward before anything reads it:

    PRAGMA user_version   what happens
    = current             nothing
    0, no tables          a new database: stamped current (its owner then creates today's tables)
    0, with tables        made before versions existed (the schema of commit 04c549e): version 1
    < current             a consistent copy first (SQLite's online backup) to `<db>.v<old>.bak`,
                          then every newer migration, in order, in one transaction that also sets
                          user_version: all of them or none
    > current             SchemaTooNew: the gateway refuses to start, naming both versions

A new table created with `IF NOT EXISTS` needs no migration (older code ignores it); a change
to an existing table (a column, a type, its data) does. Rolling back an upgrade is the old code
with the `.bak` copies put back (docs/operating.md).
Never: change a migration that has shipped (add the next one), run one outside `upgrade`'s
transaction, or use `executescript` in one (it commits first). A migration of a table that some
databases of its kind lack (fedimint.sqlite's tables depend on the federation's modules) checks
`has_table` first.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gwcore.files import private_file

Step = str | Callable[[sqlite3.Connection], None]


class SchemaTooNew(RuntimeError):
    """The database was written by a newer gateway than this one (the message is one line)."""


@dataclass(frozen=True)
class Migration:
    """Brings a database from version `version - 1` to `version`: `steps` (SQL statements, or
    functions of the connection for data) run in order inside the upgrade's transaction."""

    version: int
    summary: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Schema:
    """A kind of database (`name`, e.g. "router.sqlite") and its migrations, numbered 2, 3, …
    (version 1 is the schema every database had before versions existed)."""

    name: str
    migrations: tuple[Migration, ...] = ()

    def __post_init__(self) -> None:
        numbers = [m.version for m in self.migrations]
        if numbers != list(range(2, 2 + len(numbers))):
            raise ValueError(f"{self.name}: migrations must be numbered 2, 3, …: {numbers}")

    @property
    def version(self) -> int:
        return 1 + len(self.migrations)


def user_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def has_table(db: sqlite3.Connection, table: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    return row is not None


def stored_version(db: sqlite3.Connection) -> int:
    """The database's schema version: user_version, or 1 for a database made before versions
    (tables, no version), or 0 for an empty one."""
    version = user_version(db)
    if version == 0 and db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
        return 1
    return version


def backup_path(path: Path, version: int) -> Path:
    """Where the copy of `path` made before migrating it from `version` is kept."""
    return path.with_name(f"{path.name}.v{version}.bak")


def copy_database(db: sqlite3.Connection, to: Path) -> Path:
    """A consistent copy of the open database `db` at `to` (SQLite's online backup API: the
    writers of the database may go on meanwhile), 0600, written under a temporary name, synced
    and renamed into place: `to` is the whole copy or is not there."""
    tmp = to.with_name(f".{to.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    copy = sqlite3.connect(private_file(tmp))
    try:
        db.backup(copy)
    finally:
        copy.close()
    try:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, to)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return to


def upgrade(db: sqlite3.Connection, path: Path, schema: Schema) -> int:
    """Bring the database `db` (opened from `path`, no transaction open) to `schema.version`;
    returns the version it had (0: new). SchemaTooNew if it is newer than the code."""
    path = Path(path)
    found = stored_version(db)
    if found == schema.version:
        if user_version(db) != found:  # a database from before versions: say so in the file
            db.execute(f"PRAGMA user_version = {found}")
        return found
    if found > schema.version:
        raise SchemaTooNew(
            f"{path}: schema version {found} is newer than this gateway's {schema.version}"
            f" ({schema.name}): run the gateway version that wrote it, or roll back (python -m"
            f" deploy.gateway --rollback puts {backup_path(path, schema.version).name} in its"
            " place; docs/operating.md, upgrades)"
        )
    if found == 0:
        db.execute(f"PRAGMA user_version = {schema.version}")
        return 0
    copy_database(db, backup_path(path, found))
    db.execute("BEGIN IMMEDIATE")
    try:
        start = stored_version(db)  # another process may have migrated it meanwhile
        for migration in schema.migrations:
            if migration.version <= start:
                continue
            for step in migration.steps:
                if isinstance(step, str):
                    db.execute(step)
                else:
                    step(db)
        db.execute(f"PRAGMA user_version = {max(start, schema.version)}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return found
