"""Secrets kept in files of their own (mode 0600), made once on first use.

Several processes may ask at once (gunicorn's workers start together): the file is created with
O_EXCL under a temporary name and linked into place, so every caller reads the same secret and
nobody ever reads a half-written one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def secret_file(path: Path, nbytes: int) -> str:
    """The secret kept in `path`, made (url-safe, `nbytes` of randomness) if it is not there."""
    path = Path(path)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(nbytes))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if another process got there first: theirs stands
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()
