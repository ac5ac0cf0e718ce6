"""`fed-cli [--wallet DIR] COMMAND`: a federation user's wallet, as a real user's would be.

JSON on stdout. Exit codes: 0 ok, 1 refused (one line `error: <code>: <reason>` on stderr),
2 usage, 3 the federation or a gateway is unreachable.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from devworld.fedlib.api import FedApiError
from devworld.fedlib.client import FederationClient
from devworld.fedlib.wallet import WalletError
from gwcore.cli import run as run_cli
from gwcore.devworld import find_world
from gwcore.files import keep_private

EXIT_REFUSED, EXIT_UNREACHABLE = 1, 3
DEFAULT_WALLET = (
    Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "fmgw" / "fed-wallet"
)


def _fail(code: str, message: str, exit_code: int = EXIT_REFUSED) -> NoReturn:
    click.echo(f"error: {code}: {message}", err=True)
    sys.exit(exit_code)


def _out(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


class Ctx:
    def __init__(self, wallet_dir: Path) -> None:
        self.wallet_dir = wallet_dir
        self.path = wallet_dir / "wallet.sqlite"

    def wallet(self) -> FederationClient:
        if not self.path.exists():
            _fail("not_joined", f"no wallet in {self.wallet_dir}: run `fed-cli join INVITE` first")
        w = FederationClient(self.path)
        w.resume()  # finish whatever a crash left in flight
        return w


def _guard(func):  # type: ignore[no-untyped-def]
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return func(*args, **kwargs)
        except WalletError as exc:
            _fail(
                exc.code,
                exc.message,
                EXIT_UNREACHABLE
                if exc.code in ("federation_unreachable", "unreachable")
                else EXIT_REFUSED,
            )
        except FedApiError as exc:
            _fail(exc.code, exc.message, EXIT_UNREACHABLE if exc.unreachable else EXIT_REFUSED)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


@click.group()
@click.option(
    "--wallet",
    "wallet_dir",
    type=click.Path(path_type=Path),
    envvar="FED_CLI_WALLET",
    help="the wallet's directory (one federation per wallet); default: in `make run`'s world the"
    f" user wallet of --federation, elsewhere {DEFAULT_WALLET}",
)
@click.option(
    "--federation",
    "federation_name",
    help="in `make run`'s world: whose user wallet to use (default: the first, alpha)",
)
@click.pass_context
def cli(ctx: click.Context, wallet_dir: Path | None, federation_name: str | None) -> None:
    """A Fedimint-style federation wallet."""
    if wallet_dir is None:
        world = find_world()
        if world is not None and world.get("federations"):
            feds = {f["name"]: f for f in world["federations"]}
            name = federation_name or world["federations"][0]["name"]
            if name not in feds:
                raise click.UsageError(f"no federation {name!r} in the world: {', '.join(feds)}")
            wallet_dir = Path(feds[name]["user_wallet"])
        elif federation_name:
            raise click.UsageError("--federation needs `make run`'s world (or give --wallet)")
        else:
            wallet_dir = DEFAULT_WALLET
    ctx.obj = Ctx(wallet_dir)


@cli.command()
@click.argument("invite")
@click.pass_obj
@_guard
def join(c: Ctx, invite: str) -> None:
    """Join the federation of INVITE (a fed1… code)."""
    w = FederationClient.join(c.path, invite)
    _out({"federation_id": w.federation_id, "name": w.cfg["name"], "api_url": w.cfg["api_url"]})


@cli.command()
@click.pass_obj
@_guard
def info(c: Ctx) -> None:
    """Federation, balance and notes of this wallet."""
    w = c.wallet()
    _out(
        {
            "federation_id": w.federation_id,
            "name": w.cfg["name"],
            "api_url": w.cfg["api_url"],
            "balance_msat": w.balance(),
            "notes": {str(k): v for k, v in sorted(w.notes_by_denomination().items())},
            "block_height": w.api.block_height(),
        }
    )


@cli.command()
@click.pass_obj
@_guard
def balance(c: Ctx) -> None:
    """Spendable e-cash in msat."""
    _out({"balance_msat": c.wallet().balance()})


@cli.command("deposit-address")
@click.pass_obj
@_guard
def deposit_address(c: Ctx) -> None:
    """A new peg-in address; send bitcoin there, then `await-deposit`."""
    op, address = c.wallet().deposit_address()
    _out({"operation_id": op, "address": address})


@cli.command("await-deposit")
@click.argument("operation_id", required=False)
@click.option("--timeout", type=float, default=60.0, show_default=True)
@click.pass_obj
@_guard
def await_deposit(c: Ctx, operation_id: str | None, timeout: float) -> None:
    """Claim confirmed deposits (default: to the newest deposit address)."""
    w = c.wallet()
    if operation_id is None:
        ops = [o for o in w.operations(500) if o["kind"] == "pegin" and o["state"] == "waiting"]
        if not ops:
            _fail("no_deposit", "no deposit address: run deposit-address first")
        operation_id = ops[0]["id"]
    credited = w.await_deposit(operation_id, timeout=timeout)
    _out({"operation_id": operation_id, "credited_msat": credited, "balance_msat": w.balance()})


@cli.command()
@click.option("--amount-sat", type=click.IntRange(min=1), required=True)
@click.option("--address", required=True)
@click.pass_obj
@_guard
def withdraw(c: Ctx, amount_sat: int, address: str) -> None:
    """Peg out AMOUNT_SAT to an on-chain ADDRESS (fee quoted by the federation). Prints its
    status: sent, or pending (not on chain yet: see `withdraw-status`). If the chain refuses
    it, its e-cash comes back and the command fails with `pegout_failed`."""
    w = c.wallet()
    _out({**w.withdraw(amount_sat, address), "balance_msat": w.balance()})


@cli.command("withdraw-status")
@click.argument("operation_id")
@click.pass_obj
@_guard
def withdraw_status(c: Ctx, operation_id: str) -> None:
    """A peg-out's status (pending, sent, or failed and refunded), moved on first."""
    w = c.wallet()
    _out({**w.settle_pegout(operation_id), "balance_msat": w.balance()})


@cli.command()
@click.option("--amount-msat", type=click.IntRange(min=1), required=True)
@click.pass_obj
@_guard
def spend(c: Ctx, amount_msat: int) -> None:
    """Take AMOUNT_MSAT of notes out of the wallet; prints the notes string to hand over."""
    w = c.wallet()
    _out({"notes": w.spend(amount_msat), "amount_msat": amount_msat, "balance_msat": w.balance()})


@cli.command()
@click.argument("notes")
@click.pass_obj
@_guard
def reissue(c: Ctx, notes: str) -> None:
    """Take a notes string into this wallet (reissued: they become ours alone)."""
    w = c.wallet()
    _out({"received_msat": w.reissue(notes), "balance_msat": w.balance()})


@cli.command("list-gateways")
@click.pass_obj
@_guard
def list_gateways(c: Ctx) -> None:
    """Gateways registered with the federation now."""
    _out(c.wallet().api.gateways())


@cli.command("ln-invoice")
@click.option("--amount-msat", type=click.IntRange(min=1), required=True)
@click.option("--description", default="")
@click.option("--gateway", "gateway_key", help="gateway key (default: the first registered)")
@click.option("--expiry", type=click.IntRange(min=60), default=3600, show_default=True)
@click.pass_obj
@_guard
def ln_invoice(
    c: Ctx, amount_msat: int, description: str, gateway_key: str | None, expiry: int
) -> None:
    """A BOLT11 invoice paid into this wallet through a gateway."""
    op, invoice = c.wallet().ln_receive(amount_msat, description, gateway_key, expiry)
    _out({"operation_id": op, "invoice": invoice})


@cli.command("await-invoice")
@click.argument("operation_id")
@click.option("--timeout", type=float, default=60.0, show_default=True)
@click.pass_obj
@_guard
def await_invoice(c: Ctx, operation_id: str, timeout: float) -> None:
    """Wait for an ln-invoice to be paid and claim it."""
    w = c.wallet()
    _out(
        {
            "operation_id": operation_id,
            "received_msat": w.await_ln_receive(operation_id, timeout),
            "balance_msat": w.balance(),
        }
    )


@cli.command("ln-pay")
@click.argument("bolt11")
@click.option("--gateway", "gateway_key")
@click.option(
    "--refund-wait",
    type=float,
    default=0.0,
    help="seconds to wait for a refund if the gateway fails",
)
@click.pass_obj
@_guard
def ln_pay(c: Ctx, bolt11: str, gateway_key: str | None, refund_wait: float) -> None:
    """Pay a BOLT11 invoice through a gateway; prints the preimage, or the refund."""
    w = c.wallet()
    result = w.ln_pay(bolt11, gateway_key, refund_wait_s=refund_wait)
    _out({**result, "balance_msat": w.balance()})
    if not result.get("preimage"):
        _fail("payment_failed", result.get("error", "the gateway did not pay"))


@cli.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.pass_obj
@_guard
def operations(c: Ctx, limit: int) -> None:
    """Recent operations and their states."""
    _out([{k: o[k] for k in ("id", "kind", "state")} for o in c.wallet().operations(limit)])


def main() -> None:
    keep_private()  # wallets and files it makes: 0600, folders 0700
    run_cli(cli)


if __name__ == "__main__":
    main()
