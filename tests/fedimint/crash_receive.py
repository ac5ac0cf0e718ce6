"""Run by shared/test_wallet.py in its own process: take e-cash into a wallet and kill -9 itself at
the checkpoint named by argv[3] (or finish with `resume` when it is "resume")."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from fmclient.api import FederationApi
from fmclient.config import parse_client_config
from fmclient.wallet import MintWallet


async def main(wallet_path: str, fed_json: str, crash_at: str, ecash: str) -> None:
    endpoints = {int(k): v for k, v in json.loads(fed_json).items()}
    api = FederationApi(endpoints)
    cfg = parse_client_config(await api.current_consensus("client_config"))

    def checkpoint(step: str) -> None:
        if step == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)

    wallet = MintWallet(Path(wallet_path), cfg, api, checkpoint)
    if crash_at == "resume":
        await wallet.resume()
    else:
        await wallet.receive(ecash)
    print(json.dumps({"balance_msat": wallet.balance_msat()}))
    await api.close()


def run(
    wallet_path: Path, api_urls: list[str], step: str, ecash: str
) -> subprocess.CompletedProcess[str]:
    """This script in its own process (by the tests)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fedimint.crash_receive",
            str(wallet_path),
            json.dumps(dict(enumerate(api_urls))),
            step,
            ecash,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
