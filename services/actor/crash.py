"""The crash tests' hook: `crash_point(name)` kills the actor there, once, as kill -9 would."""

from __future__ import annotations

import os
from pathlib import Path


def crash_point(name: str) -> None:
    """Test hook for crash tests: with GATEWAY_ACTOR_CRASH_AT=<name>[,<name>…] the actor dies
    here, once per name (a marker file in its data dir remembers), as kill -9 would. Inert
    otherwise."""
    if name not in os.environ.get("GATEWAY_ACTOR_CRASH_AT", "").split(","):
        return
    marker = Path(os.environ.get("GATEWAY_ACTOR_DATA_DIR", ".")) / f"crashed-at-{name}"
    if not marker.exists():
        marker.write_text("crashed")
        os._exit(137)
