"""`regtestd --data-dir DIR`: the simulated chain and Lightning network, in one process."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from gwcore.files import keep_private
from gwcore.logging import configure_logging

from .app import create_world
from .settings import RegtestSettings


def main(argv: list[str] | None = None) -> None:
    keep_private()
    parser = argparse.ArgumentParser(prog="regtestd", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, help="state and regtestd.json (env REGTEST_DATA_DIR)"
    )
    parser.add_argument("--rpc-port", type=int, help="bitcoind JSON-RPC port (default: free)")
    parser.add_argument("--api-port", type=int, help="Lightning API port (default: free)")
    parser.add_argument("--block-interval", type=float, help="mine a block every N seconds")
    args = parser.parse_args(argv)
    overrides = {
        k: v
        for k, v in {
            "data_dir": args.data_dir,
            "rpc_port": args.rpc_port,
            "api_port": args.api_port,
            "block_interval_s": args.block_interval,
        }.items()
        if v is not None
    }
    settings = RegtestSettings(**overrides)
    configure_logging("regtestd", settings.log_level)
    asyncio.run(create_world(settings).run())


if __name__ == "__main__":
    main()
