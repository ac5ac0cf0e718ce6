"""Files and folders of the gateway stay its user's alone: files 0600, folders 0700, whatever the
umask it was started with.

Two layers, both used everywhere a process makes files:

* `keep_private()` at every entry point (each program's `main`, the CLIs, the launchers, gunicorn's
  master): umask 077, so whatever anything in the process creates (SQLite's files, logs, zmq ipc
  sockets, prometheus' files, temporary files) is the user's alone. supervisord also sets it for
  every program (`umask=077` in its confs and in each actor's conf.d file).
* `private_dir`, `private_file`, `create_private` and `write_private` where the gateway makes
  its own files (databases, conf.d files, secrets, the seed), so a library caller with a loose
  umask gets them private too. SQLite gives a database's `-wal`, `-shm` and `-journal` files the database file's mode, so
  making the database file 0600 first covers them.

Never: loosen a mode, or tighten a folder the gateway does not own (only folders it creates,
and the run and data folders, are made 0700).
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
FILE_MODE = 0o600
DIR_MODE = 0o700


def keep_private() -> int:
    """Set the process's umask to 077 (files it creates: 0600 at most); the old umask."""
    return os.umask(PRIVATE_UMASK)


def private_dir(path: str | os.PathLike[str], *, tighten: bool = False) -> Path:
    """Create `path` and the missing folders above it with mode 0700. `tighten`: the folder is
    the gateway's own (its run or data folder): make it 0700 if it is looser, and refuse one that
    belongs to another user."""
    p = Path(path).absolute()
    missing = []
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:  # another process made it meanwhile
            continue
        d.chmod(DIR_MODE)  # mkdir's mode is masked by the umask, which may be stricter
    p = Path(path).absolute()
    if tighten:
        st = p.stat()
        if st.st_uid != os.getuid():
            raise PermissionError(f"folder {p} belongs to uid {st.st_uid}, not to us")
        if stat.S_IMODE(st.st_mode) != DIR_MODE:
            p.chmod(DIR_MODE)
    return p


def private_file(path: str | os.PathLike[str]) -> Path:
    """Make sure the file `path` exists with mode 0600 (empty if new; an existing file's
    contents are kept, its mode tightened if looser), its missing folders 0700. For a database
    before SQLite opens it."""
    p = Path(path)
    private_dir(p.parent)
    fd = os.open(p, os.O_RDONLY | os.O_CREAT, FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & ~FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return p


def _written_beside(p: Path, data: str | bytes) -> Path:
    """`data` in a new temporary file (0600, synced) beside `p`, its missing folders 0700."""
    private_dir(p.parent)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def create_private(path: str | os.PathLike[str], data: str | bytes) -> bool:
    """Create the file `path` with `data`, mode 0600, unless it exists (then nothing is
    written: False). Written under a temporary name and linked into place, so of several
    processes creating it at once exactly one wins and nobody reads half a file."""
    p = Path(path)
    tmp = _written_beside(p, data)
    try:
        os.link(tmp, p)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def write_private(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Replace the file `path` atomically with `data`, mode 0600 (a reader sees the old file or
    the new one, never half of one), its missing folders 0700."""
    p = Path(path)
    tmp = _written_beside(p, data)
    try:
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p
