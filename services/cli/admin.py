"""The `gateway-cli` commands that change how the gateway is set up or keep it safe, moving no
money: federations connected (or recovered) and left, routing fees, the data folder's backup and
the seed words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .client import ApiError
from .context import FED_HELP, Ctx, run_command


@click.command("connect-fed")
@click.argument("invite_code")
@click.option(
    "--api-url",
    "api_urls",
    multiple=True,
    metavar="PEER=URL",
    help="Fedimint: a guardian's ws:// or wss:// API, where the federation lists only iroh",
)
@click.option(
    "--recover",
    is_flag=True,
    help="Fedimint: a federation served before this data folder was lost: recover its e-cash"
    " from the seed before serving it (`info` shows the progress)",
)
@click.pass_obj
@run_command
def connect_fed(c: Ctx, invite_code: str, api_urls: tuple[str, ...], recover: bool) -> Any:
    """Connect a federation by its invite code."""
    urls = {}
    for item in api_urls:
        peer, sep, url = item.partition("=")
        if not sep or not peer.isdigit():
            raise ApiError("invalid", "invalid_input", f"--api-url {item!r}: PEER=URL")
        urls[peer] = url
    return c.api().connect_fed(invite_code, urls or None, recover)


@click.command("leave-fed")
@click.option("--federation-id", "--federation", "federation_id", required=True, help=FED_HELP)
@click.option("--force", is_flag=True)
@click.pass_obj
@run_command
def leave_fed(c: Ctx, federation_id: str, force: bool) -> Any:
    """Leave a federation (refused while payments are in flight, unless --force)."""
    return c.api().leave_fed(c.fed(federation_id), force)


@click.command("set-fees")
@click.option("--federation-id", "--federation", "federation_id", help=FED_HELP)
@click.option("--base-msat", type=click.IntRange(min=0), required=True)
@click.option(
    "--ppm", type=click.IntRange(min=0), required=True, help="proportional fee, parts per million"
)
@click.pass_obj
@run_command
def set_fees(c: Ctx, federation_id: str | None, base_msat: int, ppm: int) -> Any:
    """Set routing fees (one federation, or all)."""
    return c.api().set_fees(base_msat, ppm, c.fed_or_none(federation_id))


@click.command()
@click.option(
    "--to",
    "to_file",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="the new file (0600) that gets the backup",
)
@click.pass_obj
@run_command
def backup(c: Ctx, to_file: Path) -> Any:
    """Back up the gateway: every file of its data folder, copied consistently while it runs
    and encrypted with the key of its seed (bring it back with `python -m deploy.gateway
    --env-file ENV --restore-from FILE`)."""
    return c.api().data_backup(to_file)


@click.command("seed")
@click.pass_obj
@run_command
def seed(c: Ctx) -> Any:
    """The gateway's 12 seed words: with them every federation's keys and e-cash can be
    recovered, also by gatewayd. A secret: write them down offline, never store them online."""
    return c.api().seed()


COMMANDS = (connect_fed, leave_fed, set_fees, backup, seed)
