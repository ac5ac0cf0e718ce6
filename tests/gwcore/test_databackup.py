"""Encrypted data-folder backups (gwcore/databackup.py): a round trip gives back every file and
each database whole, copied while a writer goes on; wrong words, a changed byte, a cut file, a
foreign file or a folder that is not empty are one-line errors with nothing written."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

from gwcore.databackup import (
    CHUNK,
    HEADER,
    BackupFileError,
    CorruptBackup,
    WrongKey,
    restore_backup,
    write_backup,
)

KEY, OTHER = bytes(range(32)), bytes(32)


def _data_dir(base: Path) -> Path:
    data = base / "data"
    (data / "actors" / "abcd").mkdir(parents=True)
    db = sqlite3.connect(data / "router.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (n INTEGER)")
    db.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(1000)])
    db.close()
    actor = sqlite3.connect(data / "actors" / "abcd" / "fedimint.sqlite", isolation_level=None)
    actor.execute("CREATE TABLE notes (blob BLOB)")
    actor.execute("INSERT INTO notes VALUES (?)", (os.urandom(3 * CHUNK),))  # several chunks
    actor.close()
    (data / "session-secret").write_text("s3cret")
    (data / "gateway-seed").write_text("words")
    (data / "actors" / "abcd" / "actor.sqlite-wal").write_bytes(b"side file: not kept")
    (data / "actors" / "abcd" / "actor.lock").write_bytes(b"4242\n")  # a process's: not kept
    return data


def _sum(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT COUNT(*), SUM(n) FROM t").fetchone()
    finally:
        db.close()


def test_a_round_trip_gives_back_every_file(tmp_path: Path) -> None:
    data = _data_dir(tmp_path)
    out = tmp_path / "gw.fmgwdata"
    made = write_backup(data, out, KEY, tmp_path / "work")
    assert made["files"] == 4 and made["size"] == out.stat().st_size
    assert out.stat().st_mode & 0o777 == 0o600
    assert b"s3cret" not in out.read_bytes() and b"SQLite" not in out.read_bytes()
    assert list((tmp_path / "work").iterdir()) == []  # the databases' copies are gone
    again = tmp_path / "again"
    manifest = restore_backup(out, KEY, again)
    assert sorted(f["path"] for f in manifest["files"]) == [
        "actors/abcd/fedimint.sqlite",
        "gateway-seed",
        "router.sqlite",
        "session-secret",
    ]
    assert _sum(again / "router.sqlite") == (1000, 499500)
    assert (again / "session-secret").read_text() == "s3cret"
    db = sqlite3.connect(again / "actors" / "abcd" / "fedimint.sqlite")
    assert len(db.execute("SELECT blob FROM notes").fetchone()[0]) == 3 * CHUNK
    db.close()
    assert not (again / "actors" / "abcd" / "actor.sqlite-wal").exists()
    assert not (again / "actors" / "abcd" / "actor.lock").exists()
    for p in again.rglob("*"):
        assert p.stat().st_mode & 0o777 == (0o700 if p.is_dir() else 0o600), p


def test_a_database_being_written_is_copied_consistently(tmp_path: Path) -> None:
    """A writer adds rows in transactions of ten while the backup runs: the copy holds whole
    transactions only."""
    data = _data_dir(tmp_path)
    stop = threading.Event()

    def writer() -> None:
        db = sqlite3.connect(data / "router.sqlite", isolation_level=None)
        while not stop.is_set():
            db.execute("BEGIN")
            db.executemany("INSERT INTO t VALUES (?)", [(1,)] * 10)
            db.execute("COMMIT")
        db.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        write_backup(data, tmp_path / "b", KEY, tmp_path / "work")
    finally:
        stop.set()
        thread.join()
    restore_backup(tmp_path / "b", KEY, tmp_path / "again")
    count, total = _sum(tmp_path / "again" / "router.sqlite")
    assert (count - 1000) % 10 == 0 and total - 499500 == count - 1000


def test_wrong_words_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "b"
    write_backup(_data_dir(tmp_path), out, KEY, tmp_path / "work")
    with pytest.raises(WrongKey, match="not the seed this backup was made with"):
        restore_backup(out, OTHER, tmp_path / "again")
    assert not (tmp_path / "again").exists()


@pytest.mark.parametrize(
    "damage",
    ["a byte of the first chunk", "a byte of the header", "the last chunk cut off", "cut short"],
)
def test_a_damaged_file_writes_nothing(tmp_path: Path, damage: str) -> None:
    out = tmp_path / "b"
    write_backup(_data_dir(tmp_path), out, KEY, tmp_path / "work")
    raw = bytearray(out.read_bytes())
    assert len(raw) > 2 * (CHUNK + 16)  # the databases do not compress: several chunks
    if damage == "a byte of the first chunk":
        raw[HEADER.size + 100] ^= 1
    elif damage == "a byte of the header":
        raw[HEADER.size - 1] ^= 1  # the time it was made: bound to every chunk
    elif damage == "the last chunk cut off":
        raw = raw[: HEADER.size + CHUNK + 16]
    else:
        raw = raw[:-7]
    out.write_bytes(bytes(raw))
    (tmp_path / "again").mkdir()  # an empty folder (as systemd's StateDirectory= makes it)
    with pytest.raises(CorruptBackup, match="damaged") as failed:
        restore_backup(out, KEY, tmp_path / "again")
    assert "\n" not in str(failed.value)
    assert list((tmp_path / "again").iterdir()) == []


def test_not_a_backup_and_not_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "junk").write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(CorruptBackup, match="not a gateway data backup"):
        restore_backup(tmp_path / "junk", KEY, tmp_path / "again")
    with pytest.raises(BackupFileError, match="cannot read"):
        restore_backup(tmp_path / "missing", KEY, tmp_path / "again")
    out = tmp_path / "b"
    data = _data_dir(tmp_path)
    write_backup(data, out, KEY, tmp_path / "work")
    with pytest.raises(BackupFileError, match="is not empty"):
        restore_backup(out, KEY, data)
    with pytest.raises(FileExistsError):  # a backup is never written over
        write_backup(data, out, KEY, tmp_path / "work")
