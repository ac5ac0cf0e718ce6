"""`gateway-actor --federation-id ID`: the actor of one federation, run by supervisord as its own
program (written by the router into conf.d)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys

import zmq.asyncio

from gwcore.files import keep_private
from gwcore.lifetime import die_with_parent, only_instance
from gwcore.logging import configure_logging
from gwcore.schema import SchemaTooNew

from . import recovery
from .app import Actor, actor_home
from .chain_source import chain_source
from .federation import open_federation
from .fedimint import Ahead, FedimintFederation
from .keys import federation_secrets
from .settings import ActorSettings
from .store import ActorStore


def main(argv: list[str] | None = None) -> None:
    keep_private()  # its databases and files: 0600, folders 0700
    parser = argparse.ArgumentParser(prog="gateway-actor", description=__doc__.splitlines()[0])
    parser.add_argument("--federation-id", required=True)
    args = parser.parse_args(argv)
    settings = ActorSettings(federation_id=args.federation_id)
    configure_logging(f"gateway-actor:{settings.federation_id[:16]}", settings.log_level)
    die_with_parent()  # supervisord killed outright: we end too (gwcore/lifetime.py)

    async def run() -> None:
        chain = chain_source(
            settings.bitcoind_url,
            settings.bitcoind_username,
            settings.bitcoind_password_file,
            settings.esplora_url,
        )
        home = actor_home(settings)
        store = ActorStore(home / "actor.sqlite")
        recovery.begin(store, settings.recover)  # before the keys are decided
        secrets = federation_secrets(store, settings.data_dir, settings.federation_id)
        federation = await open_federation(
            home,
            settings.invite_code,
            settings.federation_id,
            json.loads(base64.urlsafe_b64decode(settings.api_urls)) if settings.api_urls else None,
            chain,
            secrets,
            Ahead(settings.tweak_pool_size, settings.ready_addresses, settings.recovery_gap),
        )
        recovering = None
        if store.meta(recovery.RECOVERY) is not None and isinstance(federation, FedimintFederation):
            recovering = recovery.FederationRecovery(store, federation)
        ctx = zmq.asyncio.Context()
        try:
            await Actor(settings, ctx, federation, secrets, store, recovering).run()
        finally:
            ctx.destroy(linger=0)

    try:
        # one actor per federation, ever: a second one waits for the first to end
        with only_instance(actor_home(settings) / "actor.lock", "actor of this federation"):
            asyncio.run(run())
    except SchemaTooNew as exc:  # a database of a newer gateway: one line, never a traceback
        sys.exit(f"gateway-actor: {exc}")


if __name__ == "__main__":
    main()
