"""Finding the local world that `make run` starts, so that gateway-cli works in it without
flags.

`make run` writes `<devnet dir>/world.json` (the devnet dir is `$GATEWAY_DEVNET_DIR`, or
`.devnet/` in the repository). The CLIs look for it only when they are not told where to go:
explicit flags and environment variables always win; the world's admin password is only ever
sent to the world's own API URL, and only a world file owned by the user and writable by nobody
else is trusted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .constants import ENV_DEVNET_DIR

WORLD_FILE = "world.json"
DEVNET_DIR_NAME = ".devnet"


def world_path(start: Path | None = None) -> Path | None:
    """`$GATEWAY_DEVNET_DIR/world.json`, else the nearest `.devnet/world.json` at or above
    `start` (the current directory); None if there is none."""
    if os.environ.get(ENV_DEVNET_DIR):
        p = Path(os.environ[ENV_DEVNET_DIR]) / WORLD_FILE
        return p if _ours(p) else None
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        p = d / DEVNET_DIR_NAME / WORLD_FILE
        if _ours(p):
            return p
    return None


def _ours(p: Path) -> bool:
    """A world file we may trust: a regular file of ours that nobody else may write (a file
    planted in a shared parent such as /tmp is ignored)."""
    try:
        st = p.stat()
    except OSError:
        return False
    return p.is_file() and st.st_uid == os.getuid() and not st.st_mode & 0o022


def find_world(start: Path | None = None) -> dict | None:
    """The world's details ({gateway: {api_url, password}, federations: [{name, federation_id,
    invite_code, modules, lnv2_gateway_url, user_data_dir}], …}), or None."""
    p = world_path(start)
    if p is None:
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None
