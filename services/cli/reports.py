"""The read-only reports of `gateway-cli`: the gateway's version, info, balances, Lightning node
and settings, and its payments (the log, page by page, and a summary). Nothing here changes the
gateway or moves money."""

from __future__ import annotations

from typing import Any

import click

from gwcore.constants import PAYMENT_DIRECTIONS, PAYMENT_STATUSES

from .context import FED_HELP, Ctx, run_command


@click.command("version-hash")
@click.pass_obj
@run_command
def version_hash(c: Ctx) -> Any:
    """The gateway's version."""
    return {"version_hash": c.api().info()["version_hash"]}


@click.command()
@click.pass_obj
@run_command
def info(c: Ctx) -> Any:
    """Gateway, node and federations."""
    return c.api().info()


@click.command()
@click.option("--federation-id", "--federation", "federation_id", required=True, help=FED_HELP)
@click.pass_obj
@run_command
def balance(c: Ctx, federation_id: str) -> Any:
    """E-cash balance in one federation (msat)."""
    return c.api().balance(c.fed(federation_id))


@click.command()
@click.pass_obj
@run_command
def balances(c: Ctx) -> Any:
    """E-cash balances in every federation and the Lightning node's (msat)."""
    return c.api().balances()


@click.command()
@click.pass_obj
@run_command
def lightning(c: Ctx) -> Any:
    """The Lightning node: identity, on-chain funds, each channel's outbound/inbound liquidity."""
    return c.api().lightning()


@click.command()
@click.pass_obj
@run_command
def config(c: Ctx) -> Any:
    """The front's non-secret settings (bind address, timeouts, limits, version)."""
    return c.api().config()


@click.command("payment-log")
@click.option("--federation-id", "--federation", "federation_id", help=FED_HELP)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--kind", "kinds", multiple=True, type=click.Choice(PAYMENT_DIRECTIONS))
@click.option("--status", "statuses", multiple=True, type=click.Choice(PAYMENT_STATUSES))
@click.option("--since", type=float, help="Unix time: payments created at or after it")
@click.option("--before", type=float, help="Unix time: payments created before it (to page back)")
@click.pass_obj
@run_command
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


@click.command("payment-summary")
@click.option("--start", type=float, help="Unix time (default: 24 h ago)")
@click.option("--end", type=float, help="Unix time (default: now)")
@click.pass_obj
@run_command
def payment_summary(c: Ctx, start: float | None, end: float | None) -> Any:
    """Counts, volume, fees earned and latency per direction."""
    return c.api().payment_summary(start, end)


COMMANDS = (
    version_hash,
    info,
    balance,
    balances,
    lightning,
    config,
    payment_log,
    payment_summary,
)
