"""The `gateway-cli` commands that move the gateway's money: on-chain in (a peg-in address, a
deposit claimed) and out (a withdrawal, its fee quoted first with --preview), and e-cash taken in
or handed out. `withdraw` and `spend-ecash` take an idempotency key, so a retry pays once."""

from __future__ import annotations

from typing import Any

import click

from .client import ApiError
from .context import FED_HELP, Ctx, run_command


@click.command()
@click.option("--federation-id", "--federation", "federation_id", required=True, help=FED_HELP)
@click.pass_obj
@run_command
def address(c: Ctx, federation_id: str) -> Any:
    """A new peg-in address of a federation."""
    return c.api().address_for(c.fed(federation_id))


@click.command()
@click.option("--federation-id", "--federation", "federation_id", required=True, help=FED_HELP)
@click.option("--txid", help="the deposit's transaction id")
@click.option("--transaction", help="the deposit's raw transaction, hex (2023 form)")
@click.option("--txout-proof", help="accepted for the 2023 form; not needed")
@click.option("--operation-id", help="the address's operation (default: the newest)")
@click.option("--timeout", "timeout_s", type=click.IntRange(0, 50), default=30, show_default=True)
@click.pass_obj
@run_command
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


@click.command()
@click.option("--federation-id", "--federation", "federation_id", required=True, help=FED_HELP)
@click.option("--amount", required=True, help='sats, or "all"')
@click.option("--address", "btc_address", required=True)
@click.option("--preview", is_flag=True, help="only quote the peg-out fee; nothing is sent")
@click.option(
    "--idempotency-key",
    help="8-64 of [A-Za-z0-9_-]: sending the same withdrawal again with it pays once",
)
@click.pass_obj
@run_command
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


@click.command("receive-ecash")
@click.argument("notes")
@click.option(
    "--federation-id",
    "--federation",
    "federation_id",
    help="checked against the federation the notes name",
)
@click.pass_obj
@run_command
def receive_ecash(c: Ctx, notes: str, federation_id: str | None) -> Any:
    """Take e-cash into the gateway's wallet (the same notes again credit nothing)."""
    return c.api().receive_ecash(notes, c.fed_or_none(federation_id))


@click.command("spend-ecash")
@click.option("--federation-id", "--federation", "federation_id", required=True, help=FED_HELP)
@click.option("--amount-msat", required=True, type=click.IntRange(min=1))
@click.option(
    "--idempotency-key",
    help="8-64 of [A-Za-z0-9_-]: asking again with it answers the same notes",
)
@click.pass_obj
@run_command
def spend_ecash(c: Ctx, federation_id: str, amount_msat: int, idempotency_key: str | None) -> Any:
    """Out-of-band e-cash from the gateway's wallet, for someone to receive."""
    return c.api().spend_ecash(c.fed(federation_id), amount_msat, idempotency_key)


COMMANDS = (address, deposit, withdraw, receive_ecash, spend_ecash)
