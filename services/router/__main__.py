"""Entry point of the router process (`gateway-router`), run by supervisord."""

from __future__ import annotations

import asyncio
import sys

import zmq.asyncio

from gwcore.constants import PROGRAM_ROUTER
from gwcore.errors import InvalidSeed
from gwcore.files import keep_private
from gwcore.lifetime import die_with_parent, only_instance
from gwcore.logging import configure_logging
from gwcore.schema import SchemaTooNew

from .app import create_router
from .settings import RouterSettings


def main() -> None:
    keep_private()  # databases, sockets, conf.d files: 0600, folders 0700
    settings = RouterSettings()
    configure_logging(PROGRAM_ROUTER, settings.log_level)
    die_with_parent()  # supervisord killed outright: we end too (gwcore/lifetime.py)

    async def _run() -> None:
        ctx = zmq.asyncio.Context()
        try:
            await create_router(settings, ctx).run()
        except InvalidSeed as exc:  # the operator's words, or the seed file: one line
            raise SystemExit(f"gateway-router: {exc.message}") from None
        finally:
            ctx.term()

    try:
        with only_instance(settings.data_dir / "router.lock", "router of this data folder"):
            asyncio.run(_run())
    except SchemaTooNew as exc:  # a database of a newer gateway: one line, never a traceback
        sys.exit(f"{PROGRAM_ROUTER}: {exc}")


if __name__ == "__main__":
    main()
