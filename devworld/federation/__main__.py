"""`guardiand --data-dir DIR --name NAME --chain-rpc URL`: one federation (single guardian)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gwcore.files import keep_private
from gwcore.logging import configure_logging

from .app import GuardianServer, build_federation, write_info
from .settings import FederationSettings


def main(argv: list[str] | None = None) -> None:
    keep_private()
    parser = argparse.ArgumentParser(prog="guardiand", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, help="database and federation.json (env FED_DATA_DIR)"
    )
    parser.add_argument("--name", help="federation name, used on first start (env FED_NAME)")
    parser.add_argument(
        "--chain-rpc", help="bitcoind-compatible RPC URL with credentials (env FED_CHAIN_RPC)"
    )
    parser.add_argument(
        "--port", type=int, help="API port (default: chosen on first start, then kept)"
    )
    parser.add_argument("--deposit-confirmations", type=int)
    args = parser.parse_args(argv)
    overrides = {
        k: v
        for k, v in {
            "data_dir": args.data_dir,
            "name": args.name,
            "chain_rpc": args.chain_rpc,
            "port": args.port,
            "deposit_confirmations": args.deposit_confirmations,
        }.items()
        if v is not None
    }
    settings = FederationSettings(**overrides)
    configure_logging(f"guardiand:{settings.name}", settings.log_level)
    fed = build_federation(settings)
    info = write_info(fed, settings.data_dir)
    port = int(info["api_url"].rsplit(":", 1)[1])
    fed.db.close()
    GuardianServer(settings, port).run()


if __name__ == "__main__":
    main()
