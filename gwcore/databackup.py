"""Encrypted backups of the gateway's data folder, and bringing one back.

`write_backup` copies everything in the data folder while the gateway runs: each SQLite
database through SQLite's online backup API (a consistent copy of each, whatever its writers do
meanwhile; a plain copy of a database being written may be torn), every other file as it is.
The copies go, as one gzip'd tar led by a manifest, through authenticated encryption
(ChaCha20-Poly1305) under the key the gateway's seed gives for file backups. `restore_backup`
brings it back into an empty data folder, only after the whole file has been checked.

The file, all integers big-endian:

    header  "FMGWDATA" | format 1 (u8) | cipher 1 (u8) | chunk size (u32) | key id (8 bytes)
            | nonce prefix (7 random bytes) | created (u64, Unix time)
    chunks  each a sealed chunk of the plaintext (chunk size bytes, the last shorter and possibly
            empty) with its 16-byte tag; nonce = prefix | chunk number (u32) | 1 on the last
            chunk else 0; associated data: the header

(the STREAM construction: a chunk cut off, moved or added, or a changed header, fails to open).
The key id (HMAC-SHA256(key, "fmgw data backup key id"), 8 bytes) tells wrong words from a
damaged file. Never: write to the data folder before the whole file has opened, restore into a
folder that holds anything, or take a member that is not a plain file or folder inside it.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import secrets
import shutil
import sqlite3
import struct
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from gwcore.files import private_dir, private_file
from gwcore.schema import copy_database

MAGIC, FORMAT, CIPHER = b"FMGWDATA", 1, 1
HEADER = struct.Struct(">8sBBI8s7sQ")
CHUNK = 1 << 20
TAG = 16
MANIFEST = "FMGW-BACKUP.json"
SQLITE_MAGIC = b"SQLite format 3\x00"
# not kept: beside a database while it is open (its online copy holds what they hold), the
# processes' locks (gwcore/lifetime.py: held while they run), temporary files
SKIPPED = ("-wal", "-shm", "-journal", ".lock", ".tmp")


class BackupFileError(ValueError):
    """The backup cannot be made, opened or restored (the message is one line)."""


class WrongKey(BackupFileError):
    """The backup was made with another seed."""


class CorruptBackup(BackupFileError):
    """The backup file was altered, cut short or is not a backup."""


def key_id(key: bytes) -> bytes:
    return hmac.new(key, b"fmgw data backup key id", hashlib.sha256).digest()[:8]


def _nonce(prefix: bytes, number: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", number, 1 if last else 0)


class _SealingWriter(io.RawIOBase):
    """Writes the header, then seals what is written to it chunk by chunk into `out`."""

    def __init__(self, out: BinaryIO, key: bytes) -> None:
        self.out, self.aead, self.buf, self.number = out, ChaCha20Poly1305(key), bytearray(), 0
        self.prefix = secrets.token_bytes(7)
        self.header = HEADER.pack(
            MAGIC, FORMAT, CIPHER, CHUNK, key_id(key), self.prefix, int(time.time())
        )
        out.write(self.header)

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[no-untyped-def, override]
        self.buf += data
        while len(self.buf) > CHUNK:  # the last chunk is sealed at close, marked last
            self._seal(bytes(self.buf[:CHUNK]), last=False)
            del self.buf[:CHUNK]
        return len(data)

    def _seal(self, chunk: bytes, last: bool) -> None:
        nonce = _nonce(self.prefix, self.number, last)
        self.out.write(self.aead.encrypt(nonce, chunk, self.header))
        self.number += 1

    def close(self) -> None:
        if not self.closed:
            self._seal(bytes(self.buf), last=True)
            self.buf.clear()
        super().close()


class _OpeningReader(io.RawIOBase):
    """Reads the plaintext of a backup from `src`; WrongKey / CorruptBackup as soon as a chunk
    does not open. EOF only after the chunk marked last."""

    def __init__(self, src: BinaryIO, key: bytes) -> None:
        self.src, self.aead = src, ChaCha20Poly1305(key)
        self.header = src.read(HEADER.size)
        if len(self.header) < HEADER.size or not self.header.startswith(MAGIC):
            raise CorruptBackup("not a gateway data backup (no FMGWDATA header)")
        _, fmt, cipher, self.chunk, kid, self.prefix, self.created = HEADER.unpack(self.header)
        if fmt != FORMAT or cipher != CIPHER or not 0 < self.chunk <= 64 * CHUNK:
            raise CorruptBackup(f"backup format {fmt}/{cipher} is not one this gateway reads")
        if not hmac.compare_digest(kid, key_id(key)):
            raise WrongKey("these words are not the seed this backup was made with")
        self.plain, self.number, self.done = b"", 0, False
        self.next = src.read(self.chunk + TAG)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def, override]
        while not self.plain and not self.done:
            sealed, self.next = self.next, self.src.read(self.chunk + TAG)
            last = not self.next
            if len(sealed) < TAG:
                raise CorruptBackup("the backup file is cut short")
            try:
                self.plain = self.aead.decrypt(
                    _nonce(self.prefix, self.number, last), sealed, self.header
                )
            except InvalidTag:
                raise CorruptBackup(
                    "the backup file is damaged: it was altered or cut short"
                ) from None
            self.number, self.done = self.number + 1, last
        n = min(len(b), len(self.plain))
        b[:n], self.plain = self.plain[:n], self.plain[n:]
        return n


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def _data_files(data_dir: Path) -> Iterator[Path]:
    """The files to keep, relative to `data_dir`, in a stable order (the router's registry
    first): regular files, but not those SKIPPED."""
    found = []
    for root, dirs, files in os.walk(data_dir):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            if name.endswith(SKIPPED) or path.is_symlink() or not path.is_file():
                continue
            found.append(path.relative_to(data_dir))
    found.sort(key=lambda p: (str(p) != "router.sqlite", str(p)))
    yield from found


def write_backup(data_dir: Path, out: Path, key: bytes, work_dir: Path) -> dict:
    """Seal a consistent copy of everything in `data_dir` into the new file `out` (0600; the
    databases' copies pass through `work_dir`). Returns {size, sha256, files, created}."""
    data_dir, out = Path(data_dir), Path(out)
    private_dir(work_dir)
    files: list[dict] = []
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw:
            sealing = _SealingWriter(raw, key)
            with tarfile.open(fileobj=sealing, mode="w|gz") as tar:  # type: ignore[call-overload]
                for rel in _data_files(data_dir):
                    files.append(_add(tar, data_dir / rel, str(rel), Path(work_dir)))
                manifest = json.dumps(
                    {"format": FORMAT, "created": int(time.time()), "files": files}
                ).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mode, info.mtime = len(manifest), 0o600, int(time.time())
                tar.addfile(info, io.BytesIO(manifest))
            sealing.close()
            raw.flush()
            os.fsync(raw.fileno())
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    digest = hashlib.sha256()
    with out.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return {
        "size": out.stat().st_size,
        "sha256": digest.hexdigest(),
        "files": len(files),
        "created": int(time.time()),
    }


def _add(tar: tarfile.TarFile, path: Path, name: str, work_dir: Path) -> dict:
    """One file into the tar: a database by its online copy, anything else as it is."""
    if _is_sqlite(path):
        copy = work_dir / f"copy-{secrets.token_hex(6)}.sqlite"
        db = sqlite3.connect(path, timeout=30)
        try:
            copy_database(db, copy)
        finally:
            db.close()
        try:
            tar.add(copy, arcname=name, recursive=False)
            size = copy.stat().st_size
        finally:
            copy.unlink(missing_ok=True)
        return {"path": name, "size": size, "sqlite": True}
    tar.add(path, arcname=name, recursive=False)
    return {"path": name, "size": path.stat().st_size, "sqlite": False}


def check_backup(backup: Path, key: bytes) -> None:
    """Open every chunk of `backup` (nothing written); WrongKey / CorruptBackup if one fails."""
    with _open(backup) as f:
        reader = _OpeningReader(f, key)
        while reader.read(CHUNK):
            pass


def _open(backup: Path) -> BinaryIO:
    try:
        return Path(backup).open("rb")
    except OSError as exc:
        raise BackupFileError(f"cannot read {backup}: {exc.strerror}") from None


def restore_backup(backup: Path, key: bytes, data_dir: Path) -> dict:
    """Bring `backup` back into `data_dir`, which must be empty or missing: the whole file is
    opened first (nothing written if it does not), then its files are written (0600, folders
    0700). Returns the manifest's {format, created, files}."""
    data_dir = Path(data_dir)
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupFileError(
            f"{data_dir} is not empty: a backup is restored into an empty data folder only"
        )
    check_backup(backup, key)
    created = not data_dir.exists()
    private_dir(data_dir, tighten=True)
    manifest: dict | None = None
    try:
        with _open(backup) as f:
            reader = io.BufferedReader(_OpeningReader(f, key), CHUNK)
            with tarfile.open(fileobj=reader, mode="r|gz") as tar:  # type: ignore[call-overload]
                for member in tar:
                    got = tar.extractfile(member) if member.isfile() else None
                    if got is None:
                        raise CorruptBackup(f"backup member {member.name!r} is not a file")
                    if member.name == MANIFEST:
                        manifest = json.loads(got.read())
                        continue
                    _extract(got, data_dir, member.name)
        if manifest is None:
            raise CorruptBackup("the backup has no manifest")
    except BaseException:
        for entry in list(data_dir.iterdir()):  # it was empty: take back what was written
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        if created:
            data_dir.rmdir()
        raise
    return manifest


def _extract(src: BinaryIO, data_dir: Path, name: str) -> None:
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise CorruptBackup(f"backup member {name!r} is outside the data folder")
    target = data_dir.joinpath(*rel.parts)
    private_file(target)
    with target.open("wb") as out:
        shutil.copyfileobj(src, out, CHUNK)
        out.flush()
        os.fsync(out.fileno())
