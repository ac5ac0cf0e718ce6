"""The router's data backups: the bus service `backups` (broker-local) makes an encrypted,
consistent copy of the whole data folder (gwcore/databackup.py) under the key of the gateway's
seed, into `<run dir>/backups/`, and answers its file name, size and SHA-256. The API front hands
that file out once (POST /data_backup) and removes it; `gateway-cli backup --to FILE` keeps it.

The router makes them because it owns the data folder; the copy runs in a thread, so HTLC
dispatch goes on meanwhile, and one at a time. Files the front never fetched are removed after
`KEEP_S`. Never: write into the data folder, or keep a backup anywhere but the private run
folder.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bus.calls import Call
from gwcore.constants import BACKUPS_DIR_NAME, METHOD_DATA_BACKUP
from gwcore.databackup import write_backup
from gwcore.errors import UnknownMethod
from gwcore.files import private_dir
from gwcore.seed import GatewaySeed

KEEP_S = 600.0  # a backup not fetched by then is removed
SUFFIX = ".fmgwdata"


class DataBackups:
    """Makes data backups for the API front to hand out. `backup_key(data_dir)`: the 32-byte
    key of file backups (the seed's)."""

    def __init__(
        self,
        data_dir: Path,
        run_dir: Path,
        backup_key: Callable[[Path], bytes] = lambda d: GatewaySeed.load(d).file_backup_key(),
    ) -> None:
        self.data_dir, self.folder = Path(data_dir), Path(run_dir) / BACKUPS_DIR_NAME
        self.backup_key = backup_key
        self._one_at_a_time = threading.Lock()

    async def handle(self, call: Call) -> bytes:
        if call.method != METHOD_DATA_BACKUP:
            raise UnknownMethod(f"the backups service has no method {call.method!r}")
        return json.dumps(await asyncio.to_thread(self.make)).encode()

    def make(self) -> dict:
        """{file, size, sha256, files, created}: a new backup in the run folder's backups/."""
        with self._one_at_a_time:
            private_dir(self.folder, tighten=True)
            self.prune()
            name = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(4)}"
            made = write_backup(
                self.data_dir,
                self.folder / (name + SUFFIX),
                self.backup_key(self.data_dir),
                self.folder / f".work-{name}",
            )
            (self.folder / f".work-{name}").rmdir()
            return {"file": name + SUFFIX, **made}

    def prune(self, now: float | None = None) -> None:
        """Remove backups (and a crashed copy's leftovers) older than KEEP_S."""
        now = time.time() if now is None else now
        for path in self.folder.iterdir():
            try:
                if now - path.stat().st_mtime < KEEP_S:
                    continue
                if path.is_dir():
                    for inner in path.iterdir():
                        inner.unlink()
                    path.rmdir()
                else:
                    path.unlink()
            except FileNotFoundError:  # the front took it meanwhile
                continue
