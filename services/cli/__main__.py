"""`gateway-cli`: operate the gateway from a shell (a client of its HTTP API).

JSON on stdout. Exit codes: 0 ok, 1 server error, 2 invalid input (or usage), 3 cannot connect,
4 wrong password, 5 not found, 6 not yet possible (e.g. deposit unconfirmed: ask again later);
the reason on one line of stderr.

This module is the entry point: the `cli` group with its global options, `help`, and the
commands of `reports` (read-only), `funds` (money moved), `admin` (set-up and safekeeping) and
`local` (no gateway needed); `context` and `output` are what they share.
"""

from __future__ import annotations

import sys

import click

from gwcore.cli import run as run_cli
from gwcore.constants import DEFAULT_API_URL
from gwcore.files import keep_private

from . import admin, funds, local, reports
from .context import Ctx
from .output import TABLE


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-a",
    "--address",
    envvar="GATEWAY_ADDRESS",
    help=f"the gateway's API [default: `make run`'s world, else {DEFAULT_API_URL}]",
)
@click.option(
    "--rpcpassword",
    help="admin password (visible to other users in the process list: prefer GATEWAY_RPCPASSWORD)",
)
@click.option("--table", "as_table", is_flag=True, help="print tables for humans instead of JSON")
@click.pass_context
def cli(ctx: click.Context, address: str | None, rpcpassword: str | None, as_table: bool) -> None:
    """Operate a Fedimint Lightning gateway."""
    TABLE["on"] = as_table
    if rpcpassword:
        click.echo(
            "warning: a password on the command line is visible to other users; prefer GATEWAY_RPCPASSWORD",
            err=True,
        )
    ctx.obj = Ctx(address, rpcpassword)


for command in (*reports.COMMANDS, *funds.COMMANDS, *admin.COMMANDS, *local.COMMANDS):
    cli.add_command(command)


@cli.command("help")
@click.argument("command", required=False)
@click.pass_context
def help_cmd(ctx: click.Context, command: str | None) -> None:
    """Help on the CLI or on one COMMAND."""
    group = ctx.parent.command if ctx.parent else cli
    sub = group.get_command(ctx, command) if command else None  # type: ignore[union-attr]
    if command and sub is None:
        click.echo(f"error: unknown command {command!r}", err=True)
        sys.exit(2)
    if sub is None:
        click.echo(ctx.parent.get_help() if ctx.parent else cli.get_help(ctx))
        return
    with click.Context(sub, info_name=command, parent=ctx.parent) as c:
        click.echo(sub.get_help(c))


def main() -> None:
    keep_private()  # wallets and files it makes: 0600, folders 0700
    run_cli(cli)


if __name__ == "__main__":
    main()
