"""The gateway's version hash, as `/info` and `gateway-cli version-hash` report it: the git
commit the code runs from (read from `.git` without running git), else the package version.
`GATEWAY_VERSION_HASH` overrides both (for builds without a checkout)."""

from __future__ import annotations

import functools
import os
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _git_commit(repo: Path) -> str | None:
    git = repo / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head or None  # detached
        ref = head[5:]
        if (git / ref).is_file():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        return None
    return None


@functools.cache
def version_hash() -> str:
    if os.environ.get("GATEWAY_VERSION_HASH"):
        return os.environ["GATEWAY_VERSION_HASH"]
    commit = _git_commit(REPO)
    if commit:
        return commit
    try:
        return f"fmgw-{metadata.version('fmgw')}"
    except metadata.PackageNotFoundError:
        return "fmgw-unknown"
