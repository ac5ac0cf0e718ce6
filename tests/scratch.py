"""Where the suite writes: a RAM-backed folder (`/dev/shm`) when the machine has one with room,
else the usual temporary folder.

The suite's peers commit to disk all the time: fedimintd's RocksDB, lnd's bbolt, bitcoind, the
gateway's SQLite files, each with fsync. On an ext4 disk that costs CPU (the kernel's block
workers) and waiting: `tests/fedimint/test_gateway_lnv2.py` took 37.6 and 39.6 s (37 and 38
CPU-s, the machine's) on disk against 32.1 and 31.4 s (29 and 31 CPU-s) on a tmpfs. Nothing a
test checks depends on the medium: a process killed as by kill -9 leaves what it wrote in the
page cache either way, and no test pulls the machine's power.

Every folder the tests make is under `tempfile.gettempdir()` (pytest's `tmp_path` too), so
setting `TMPDIR` before the first use moves them all, and the peers the tests start inherit it.
A `TMPDIR` the caller set is kept."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping

RAM_FOLDERS = ("/dev/shm",)
MIN_FREE_BYTES = 4 << 30  # a whole run writes ~0.3 GiB; peers preallocate some more


def ram_folder(
    env: Mapping[str, str],
    candidates: Iterable[str] = RAM_FOLDERS,
    min_free: int = MIN_FREE_BYTES,
) -> str | None:
    """The first of `candidates` the tests can write and run programs in, with `min_free`
    bytes free; None if there is none, or if `env` already names a TMPDIR."""
    if env.get("TMPDIR"):
        return None
    for folder in candidates:
        try:
            fs = os.statvfs(folder)
        except OSError:
            continue
        usable = os.access(folder, os.W_OK | os.X_OK) and not fs.f_flag & os.ST_NOEXEC
        if usable and fs.f_bavail * fs.f_frsize >= min_free:
            return folder
    return None


def use_ram_folder() -> None:
    """Point this process's temporary folder, and its children's, at a RAM folder if any."""
    folder = ram_folder(os.environ)
    if folder is not None:
        os.environ["TMPDIR"] = folder
        tempfile.tempdir = None  # gettempdir() looks again
