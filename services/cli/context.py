"""What every `gateway-cli` command that talks to the gateway shares: `Ctx` (the gateway's
address and password, found as the options, the environment or `make run`'s world say; a
federation named by id, name or prefix), `run_command` (the answer printed, an `ApiError` turned
into its exit code) and `fail` (the reason on one line of stderr, then the exit code `EXIT`
gives its kind; `__main__`'s docstring lists them).
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click

from gwcore.constants import DEFAULT_API_URL, ENV_CLI_PASSWORD
from gwcore.devnet import find_world

from .client import ApiError, GatewayApi
from .output import out

EXIT = {"server": 1, "invalid": 2, "connection": 3, "auth": 4, "not_found": 5, "pending": 6}
FED_HELP = "the federation: its id, its name, or a unique prefix of its id"


def fail(exc: ApiError) -> NoReturn:
    click.echo(f"error: {exc.code}: {exc.message}", err=True)
    sys.exit(EXIT.get(exc.kind, 1))


class Ctx:
    def __init__(self, address: str | None, password: str | None) -> None:
        self.address, self._password = address, password

    def api(self) -> GatewayApi:
        password = self._password or os.environ.get(ENV_CLI_PASSWORD)
        world = find_world() if self.address is None or not password else None
        if world is not None:  # `make run`'s world: its URL, and its password only for that URL
            gw = world.get("gateway", {})
            # The world's gateway gets the world's password, never one of yours: a world file
            # (even one that came with a cloned directory) must not lead your real password
            # to the URL it names. Give -a to talk to another gateway with your password.
            if self.address is None:
                self.address, password = gw.get("api_url"), gw.get("password")
            elif self.address == gw.get("api_url"):
                password = gw.get("password")
        self.address = self.address or DEFAULT_API_URL
        if not password:
            if not sys.stdin.isatty():
                fail(
                    ApiError(
                        "auth",
                        "no_password",
                        "give --rpcpassword, set GATEWAY_RPCPASSWORD, or run interactively",
                    )
                )
            password = click.prompt("gateway password", hide_input=True)
        return GatewayApi(self.address, password)

    def fed(self, federation: str) -> str:
        """The id of the federation `federation` names: its id, its name, or a prefix of its id
        that no other federation of the gateway shares (a clear error otherwise)."""
        if len(federation) == 64 and all(c in "0123456789abcdef" for c in federation):
            return federation
        feds = self.api().info().get("federations", [])
        by_name = [f for f in feds if f.get("name") == federation]
        by_prefix = [f for f in feds if f["federation_id"].startswith(federation.lower())]
        found = by_name or (by_prefix if federation else [])
        if len(found) == 1:
            return str(found[0]["federation_id"])
        reason = "names no federation" if not found else "is the prefix of several federations"
        fail(ApiError("invalid", "unknown_federation", f"{federation!r} {reason} of this gateway"))

    def fed_or_none(self, federation: str | None) -> str | None:
        return None if federation is None else self.fed(federation)


def run_command(func):  # type: ignore[no-untyped-def]
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            out(func(*args, **kwargs))
        except ApiError as exc:
            fail(exc)

    wrapper.__name__, wrapper.__doc__ = func.__name__, func.__doc__
    return wrapper
