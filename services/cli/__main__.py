"""`gateway-cli`: operate the gateway from a shell (a client of its HTTP API).

JSON on stdout. Exit codes: 0 ok, 1 server error, 2 invalid input (or usage), 3 cannot connect,
4 wrong password, 5 not found, 6 not yet possible (e.g. deposit unconfirmed: ask again later);
the reason on one line of stderr.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import bcrypt
import click

from gwcore.cli import run as run_cli
from gwcore.constants import (
    DEFAULT_API_URL,
    ENV_CLI_PASSWORD,
    MAX_PASSWORD_BYTES,
    PAYMENT_DIRECTIONS,
    PAYMENT_STATUSES,
)
from gwcore.devnet import find_world
from gwcore.files import keep_private
from gwcore.values import amount_text

from . import extension_certs
from .client import ApiError, GatewayApi

EXIT = {"server": 1, "invalid": 2, "connection": 3, "auth": 4, "not_found": 5, "pending": 6}


def _fail(exc: ApiError) -> NoReturn:
    click.echo(f"error: {exc.code}: {exc.message}", err=True)
    sys.exit(EXIT.get(exc.kind, 1))


TABLE = {"on": False}
FED_HELP = "the federation: its id, its name, or a unique prefix of its id"


def _out(value: Any) -> None:
    """JSON by default; with --table, a table for humans (rich)."""
    if not TABLE["on"]:
        click.echo(json.dumps(value, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    rows = (
        value
        if isinstance(value, list)
        else next((v for v in value.values() if isinstance(v, list)), None)
        if isinstance(value, dict)
        else None
    )
    table = Table(show_lines=False)
    if rows and all(isinstance(r, dict) for r in rows):
        cols = list(dict.fromkeys(k for r in rows for k in r))
        for c in cols:
            table.add_column(c)
        for r in rows:
            table.add_row(
                *(
                    json.dumps(r.get(c))
                    if isinstance(r.get(c), (dict, list))
                    else _cell(c, r.get(c, ""))
                    for c in cols
                )
            )
    else:
        table.add_column("key")
        table.add_column("value")
        for k, v in _flatten(value if isinstance(value, dict) else {"value": value}):
            table.add_row(k, json.dumps(v) if isinstance(v, list) else _cell(k, v))
    Console().print(table)


def _cell(key: str, value: Any) -> str:
    """A table cell: amounts (keys `…_msat`, `…_sat`, or under them) in sat with the msat
    remainder, as the dashboard shows them; anything else as it is."""
    if isinstance(value, int) and not isinstance(value, bool):
        parts = key.split(".")
        if any(p.endswith("_msat") for p in parts):
            return amount_text(value)
        if any(p.endswith("_sat") for p in parts):
            return f"{value:,} sat"
    return str(value)


def _flatten(value: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested objects as dotted keys ("balances_msat.<federation id>"), for the key/value table."""
    out: list[tuple[str, Any]] = []
    for k, v in value.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.extend(_flatten(v, key + "."))
        else:
            out.append((key, v))
    return out


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
                _fail(
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
        _fail(ApiError("invalid", "unknown_federation", f"{federation!r} {reason} of this gateway"))

    def fed_or_none(self, federation: str | None) -> str | None:
        return None if federation is None else self.fed(federation)


def _run(func):  # type: ignore[no-untyped-def]
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            _out(func(*args, **kwargs))
        except ApiError as exc:
            _fail(exc)

    wrapper.__name__, wrapper.__doc__ = func.__name__, func.__doc__
    return wrapper


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


@cli.command("version-hash")
@click.pass_obj
@_run
def version_hash(c: Ctx) -> Any:
    """The gateway's version."""
    return {"version_hash": c.api().info()["version_hash"]}


@cli.command()
@click.pass_obj
@_run
def info(c: Ctx) -> Any:
    """Gateway, node and federations."""
    return c.api().info()


@cli.command()
@click.option("--federation-id", "--federation", "federation_id", required=True, help=FED_HELP)
@click.pass_obj
@_run
def balance(c: Ctx, federation_id: str) -> Any:
    """E-cash balance in one federation (msat)."""
    return c.api().balance(c.fed(federation_id))


@cli.command()
@click.pass_obj
@_run
def balances(c: Ctx) -> Any:
    """E-cash balances in every federation and the Lightning node's (msat)."""
    return c.api().balances()


@cli.command()
@click.pass_obj
@_run
def lightning(c: Ctx) -> Any:
    """The Lightning node: identity, on-chain funds, each channel's outbound/inbound liquidity."""
    return c.api().lightning()


@cli.command()
@click.pass_obj
@_run
def config(c: Ctx) -> Any:
    """The front's non-secret settings (bind address, timeouts, limits, version)."""
    return c.api().config()


@cli.command()
@click.option("--federation-id", "--federation", "federation_id", required=True, help=FED_HELP)
@click.pass_obj
@_run
def address(c: Ctx, federation_id: str) -> Any:
    """A new peg-in address of a federation."""
    return c.api().address_for(c.fed(federation_id))


@cli.command()
@click.option("--federation-id", "--federation", "federation_id", required=True, help=FED_HELP)
@click.option("--txid", help="the deposit's transaction id")
@click.option("--transaction", help="the deposit's raw transaction, hex (2023 form)")
@click.option("--txout-proof", help="accepted for the 2023 form; not needed")
@click.option("--operation-id", help="the address's operation (default: the newest)")
@click.option("--timeout", "timeout_s", type=click.IntRange(0, 50), default=30, show_default=True)
@click.pass_obj
@_run
def deposit(
    c: Ctx,
    federation_id: str,
    txid: str | None,
    transaction: str | None,
    txout_proof: str | None,
    operation_id: str | None,
    timeout_s: int,
) -> Any:
    """Claim a confirmed deposit to one of the gateway's peg-in addresses."""
    return c.api().deposit(
        c.fed(federation_id),
        operation_id,
        timeout_s,
        txid=txid,
        transaction=transaction,
        txout_proof=txout_proof,
    )


@cli.command()
@click.option("--federation-id", "--federation", "federation_id", required=True, help=FED_HELP)
@click.option("--amount", required=True, help='sats, or "all"')
@click.option("--address", "btc_address", required=True)
@click.option("--preview", is_flag=True, help="only quote the peg-out fee; nothing is sent")
@click.option(
    "--idempotency-key",
    help="8-64 of [A-Za-z0-9_-]: sending the same withdrawal again with it pays once",
)
@click.pass_obj
@_run
def withdraw(
    c: Ctx,
    federation_id: str,
    amount: str,
    btc_address: str,
    preview: bool,
    idempotency_key: str | None,
) -> Any:
    """Peg out to an on-chain address (--preview: the fee first)."""
    value: int | str = (
        amount if amount == "all" else int(amount) if amount.isascii() and amount.isdigit() else -1
    )
    if value == -1:
        raise ApiError("invalid", "invalid_input", 'amount must be a number of sats or "all"')
    return c.api().withdraw(
        c.fed(federation_id), value, btc_address, preview=preview, idempotency_key=idempotency_key
    )


@cli.command("receive-ecash")
@click.argument("notes")
@click.option(
    "--federation-id",
    "--federation",
    "federation_id",
    help="checked against the federation the notes name",
)
@click.pass_obj
@_run
def receive_ecash(c: Ctx, notes: str, federation_id: str | None) -> Any:
    """Take e-cash into the gateway's wallet (the same notes again credit nothing)."""
    return c.api().receive_ecash(notes, c.fed_or_none(federation_id))


@cli.command("spend-ecash")
@click.option("--federation-id", "--federation", "federation_id", required=True, help=FED_HELP)
@click.option("--amount-msat", required=True, type=click.IntRange(min=1))
@click.option(
    "--idempotency-key",
    help="8-64 of [A-Za-z0-9_-]: asking again with it answers the same notes",
)
@click.pass_obj
@_run
def spend_ecash(c: Ctx, federation_id: str, amount_msat: int, idempotency_key: str | None) -> Any:
    """Out-of-band e-cash from the gateway's wallet, for someone to receive."""
    return c.api().spend_ecash(c.fed(federation_id), amount_msat, idempotency_key)


@cli.command("connect-fed")
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
@_run
def connect_fed(c: Ctx, invite_code: str, api_urls: tuple[str, ...], recover: bool) -> Any:
    """Connect a federation by its invite code."""
    urls = {}
    for item in api_urls:
        peer, sep, url = item.partition("=")
        if not sep or not peer.isdigit():
            raise ApiError("invalid", "invalid_input", f"--api-url {item!r}: PEER=URL")
        urls[peer] = url
    return c.api().connect_fed(invite_code, urls or None, recover)


@cli.command("leave-fed")
@click.option("--federation-id", "--federation", "federation_id", required=True, help=FED_HELP)
@click.option("--force", is_flag=True)
@click.pass_obj
@_run
def leave_fed(c: Ctx, federation_id: str, force: bool) -> Any:
    """Leave a federation (refused while payments are in flight, unless --force)."""
    return c.api().leave_fed(c.fed(federation_id), force)


@cli.command("set-fees")
@click.option("--federation-id", "--federation", "federation_id", help=FED_HELP)
@click.option("--base-msat", type=click.IntRange(min=0), required=True)
@click.option(
    "--ppm", type=click.IntRange(min=0), required=True, help="proportional fee, parts per million"
)
@click.pass_obj
@_run
def set_fees(c: Ctx, federation_id: str | None, base_msat: int, ppm: int) -> Any:
    """Set routing fees (one federation, or all)."""
    return c.api().set_fees(base_msat, ppm, c.fed_or_none(federation_id))


@cli.command()
@click.option(
    "--to",
    "to_file",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="the new file (0600) that gets the backup",
)
@click.pass_obj
@_run
def backup(c: Ctx, to_file: Path) -> Any:
    """Back up the gateway: every file of its data folder, copied consistently while it runs
    and encrypted with the key of its seed (bring it back with `python -m deploy.gateway
    --env-file ENV --restore-from FILE`)."""
    return c.api().data_backup(to_file)


@cli.command("seed")
@click.pass_obj
@_run
def seed(c: Ctx) -> Any:
    """The gateway's 12 seed words: with them every federation's keys and e-cash can be
    recovered, also by gatewayd. A secret: write them down offline, never store them online."""
    return c.api().seed()


@cli.command("payment-log")
@click.option("--federation-id", "--federation", "federation_id", help=FED_HELP)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--kind", "kinds", multiple=True, type=click.Choice(PAYMENT_DIRECTIONS))
@click.option("--status", "statuses", multiple=True, type=click.Choice(PAYMENT_STATUSES))
@click.option("--since", type=float, help="Unix time: payments created at or after it")
@click.option("--before", type=float, help="Unix time: payments created before it (to page back)")
@click.pass_obj
@_run
def payment_log(
    c: Ctx,
    federation_id: str | None,
    limit: int,
    kinds: tuple[str, ...],
    statuses: tuple[str, ...],
    since: float | None,
    before: float | None,
) -> Any:
    """Payments, newest first (--kind and --status may repeat; page back with --before set to
    the oldest `created` shown)."""
    return c.api().payment_log(
        c.fed_or_none(federation_id), limit, list(kinds), list(statuses), since, before
    )


@cli.command("payment-summary")
@click.option("--start", type=float, help="Unix time (default: 24 h ago)")
@click.option("--end", type=float, help="Unix time (default: now)")
@click.pass_obj
@_run
def payment_summary(c: Ctx, start: float | None, end: float | None) -> Any:
    """Counts, volume, fees earned and latency per direction."""
    return c.api().payment_summary(start, end)


@cli.command("create-password-hash")
@click.argument("password", required=False)
def create_password_hash(password: str | None) -> None:
    """A bcrypt hash for GATEWAY_API_PASSWORD_HASH (asks for the password, twice, when it is
    not given; from a pipe, reads one line)."""
    if password:
        click.echo(
            "warning: a password on the command line is visible to other users; run without it"
            " to be asked",
            err=True,
        )
    elif sys.stdin.isatty():
        password = click.prompt("new gateway password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        _fail(ApiError("invalid", "invalid_input", "the password must not be empty"))
    if len(password.encode()) > MAX_PASSWORD_BYTES:  # bcrypt would refuse it (or cut it short)
        _fail(
            ApiError(
                "invalid",
                "invalid_input",
                f"the password is {len(password.encode())} bytes long (UTF-8): bcrypt reads at most"
                f" {MAX_PASSWORD_BYTES}; choose a shorter one",
            )
        )
    _out({"password_hash": bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()})


@cli.command("make-extension-certs")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
def make_extension_certs(folder: Path) -> None:
    """The TLS folder for a Lightning extension reached over TCP (mutual TLS): a CA of its own,
    the extension's certificate and the gateway's, keys 0600. Give the folder to the gateway
    (GATEWAY_LNRPC_TLS_DIR) and ca.crt + extension.* to the extension (the CLN plugin's
    fm-gateway-tls-dir). Never overwrites."""
    try:
        _out(extension_certs.make_extension_certs(folder))
    except extension_certs.CertFolderError as exc:
        _fail(ApiError("invalid", "invalid_input", str(exc)))


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
