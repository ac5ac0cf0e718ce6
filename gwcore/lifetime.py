"""How long a gateway process lives, and that it lives alone.

* `die_with_parent()`: a program run by supervisord ends when supervisord ends, however it ends.
  supervisord stops its programs on SIGTERM, but killed outright (SIGKILL, the OOM killer) it
  leaves them running, orphaned; the supervisord started next would then start a second router,
  a second actor per federation, beside the first. Linux's parent-death signal (prctl
  PR_SET_PDEATHSIG) sends the program SIGTERM when its parent dies: it stops as on any SIGTERM
  (finishing or persisting what it was doing). It survives exec (gunicorn's master keeps it).
* `only_instance()`: a process that owns a database holds an exclusive lock (flock) on a file
  beside it for its whole life; a second one started while the first still runs waits for it to
  end (saying so in its log) instead of working on the same money beside it. The kernel drops
  the lock when the holder dies, even by SIGKILL, so a crash never leaves it stale.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import signal
import time
from pathlib import Path
from typing import IO

from .files import private_dir

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask Linux to send `sig` to this process when its parent dies. If the parent died before
    the call (the process was re-parented already), send it now. False where prctl is missing."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if parent == 1 or os.getppid() != parent:  # orphaned already: our parent is gone
        os.kill(os.getpid(), sig)
    return True


def only_instance(lock_path: Path, what: str, *, report_every_s: float = 10.0) -> IO[bytes]:
    """Hold the exclusive lock of `lock_path` (made 0600 in a private folder), waiting while
    another process holds it. Keep the returned file open for the process's life: closing it,
    or dying, releases the lock."""
    private_dir(lock_path.parent)
    f = open(lock_path, "ab")  # noqa: SIM115 - held for the process's life
    next_report = time.monotonic()
    while True:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= next_report:
                log.warning("another %s still runs (%s is locked): waiting for it", what, lock_path)
                next_report = time.monotonic() + report_every_s
            time.sleep(0.2)
    f.truncate(0)
    f.write(f"{os.getpid()}\n".encode())
    f.flush()
    return f
