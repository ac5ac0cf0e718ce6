"""Run one development federation of the local world: `python -m deploy.devfed NAME`.

Waits for the regtest world's `regtestd.json` (processes start in any order), then replaces
itself with `guardiand --data-dir $GATEWAY_DATA_DIR/federations/NAME --name NAME --chain-rpc URL`.
Its invite code is then in `$GATEWAY_DATA_DIR/federations/NAME/federation.json`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from gwcore.constants import ENV_DATA_DIR, REGTESTD_INFO_FILE


def chain_rpc_url(regtest_dir: Path, timeout_s: float = 120.0) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            info = json.loads((regtest_dir / REGTESTD_INFO_FILE).read_text())
            host = info["rpc_url"].removeprefix("http://")
            return f"http://{info['rpc_user']}:{info['rpc_password']}@{host}"
        except (OSError, ValueError, KeyError):
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"no {REGTESTD_INFO_FILE} in {regtest_dir}: is regtestd running?"
                ) from None
            time.sleep(0.2)


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m deploy.devfed NAME")
    name = sys.argv[1]
    data = Path(os.environ.get(ENV_DATA_DIR, ".data"))
    url = chain_rpc_url(data / "regtest")
    exe = str(Path(sys.executable).parent / "guardiand")
    args = [exe, "--data-dir", str(data / "federations" / name), "--name", name]
    os.execve(exe, args, {**os.environ, "FED_CHAIN_RPC": url})


if __name__ == "__main__":
    main()
