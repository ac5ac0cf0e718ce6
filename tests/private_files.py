"""Checks shared by the tests of "secrets and files stay private": what in a folder group or
others could use, and what a process holds in its environment."""

from __future__ import annotations

import os
import stat
from pathlib import Path

# the API front's secrets: only its processes may hold them (deploy/api_front.py)
API_SECRETS = ("GATEWAY_API_PASSWORD_HASH", "GATEWAY_API_SESSION_SECRET")


def loose_entries(root: Path, scripts: Path | None = None) -> list[str]:
    """Everything under `root` (itself included) not private: a folder not 0700, a file with any
    bit beyond 0600 (executables none expected, but in the folder `scripts`: 0700), a socket any
    group or other may use, anything else (a link, a fifo)."""
    out = []
    entries = [Path(root)]
    for dirpath, dirnames, filenames in os.walk(root):
        entries += [Path(dirpath, n) for n in dirnames + filenames]
    for p in entries:
        try:
            st = os.lstat(p)
        except FileNotFoundError:  # a temporary file gone meanwhile
            continue
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            ok = mode == 0o700
        elif stat.S_ISREG(st.st_mode):
            ok = not mode & ~(0o700 if scripts is not None and p.parent == scripts else 0o600)
        elif stat.S_ISSOCK(st.st_mode):
            ok = not mode & 0o077
        else:
            ok = False
        if not ok or st.st_uid != os.getuid():
            out.append(f"{p} {stat.filemode(st.st_mode)}")
    return out


def environ(pid: int) -> dict[str, str]:
    """The environment process `pid` was started with (/proc/<pid>/environ)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
    return {k.decode(): v.decode(errors="replace") for k, _, v in pairs}
