"""`regtest-cli --data-dir DIR COMMAND`: drive the regtest world from a shell.

Reads endpoints and credentials from DIR/regtestd.json. Prints JSON. Exit codes: 0 ok,
1 the world refused (one-line reason on stderr), 2 usage error, 3 regtestd unreachable,
4 a payment failed.
"""

from __future__ import annotations

import functools
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import click
import httpx

from gwcore.cli import run as run_cli
from gwcore.constants import ENV_PREFIX_REGTEST, REGTESTD_INFO_FILE
from gwcore.files import keep_private

EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_PAYMENT_FAILED = 1, 2, 3, 4


def _fail(message: str, code: int = EXIT_REFUSED) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class World:
    """The world a command talks to, found when the command first needs it (so `--help` works
    with no world running)."""

    def __init__(self, data_dir: Path | None, timeout: float) -> None:
        self.data_dir = data_dir
        self.http = httpx.Client(timeout=timeout)

    @functools.cached_property
    def info(self) -> dict:
        data_dir = self.data_dir
        if data_dir is None:
            _fail("usage: give --data-dir (regtestd's data folder)", EXIT_USAGE)
        path = data_dir / REGTESTD_INFO_FILE
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            _fail(
                f"cannot read {path}: is regtestd running with --data-dir {data_dir}? ({exc})",
                EXIT_UNREACHABLE,
            )

    def api(self, method: str, path: str, body: dict | None = None) -> Any:
        try:
            r = self.http.request(
                method,
                self.info["api_url"] + path,
                json=body,
                headers={"Authorization": f"Bearer {self.info['api_token']}"},
            )
        except httpx.HTTPError as exc:
            _fail(f"regtestd unreachable at {self.info['api_url']}: {exc}", EXIT_UNREACHABLE)
        data = r.json() if r.content else None
        if r.status_code >= 400:
            _fail(
                f"{data.get('code')}: {data.get('error')}"
                if isinstance(data, dict)
                else f"HTTP {r.status_code}"
            )
        return data

    def rpc(self, method: str, params: list, wallet: str | None = None) -> Any:
        url = self.info["rpc_url"] + (f"/wallet/{wallet}" if wallet else "/")
        try:
            r = self.http.post(
                url,
                json={"jsonrpc": "1.0", "id": "cli", "method": method, "params": params},
                auth=(self.info["rpc_user"], self.info["rpc_password"]),
            )
        except httpx.HTTPError as exc:
            _fail(f"regtestd unreachable at {self.info['rpc_url']}: {exc}", EXIT_UNREACHABLE)
        data = r.json() if r.content else {}  # floats here are for display only
        if data.get("error"):
            _fail(f"{data['error']['message']} (code {data['error']['code']})")
        return data.get("result")


def _out(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str) if not isinstance(value, str) else value)


@click.group()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    envvar=f"{ENV_PREFIX_REGTEST}DATA_DIR",
    help="regtestd's data directory (default: the one of `make run`'s world, when there is one)",
)
@click.option("--timeout", type=float, default=120.0, show_default=True)
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, timeout: float) -> None:
    """Drive the simulated regtest chain and Lightning network."""
    ctx.obj = World(data_dir, timeout)


@cli.command()
@click.pass_obj
def getblockcount(w: World) -> None:
    """Height of the chain tip."""
    _out(w.rpc("getblockcount", []))


@cli.command()
@click.argument("blocks", type=click.IntRange(1, 10_000))
@click.option("--address", help="coinbase address (default: a new address of the miner wallet)")
@click.pass_obj
def mine(w: World, blocks: int, address: str | None) -> None:
    """Mine BLOCKS blocks (coinbase matures after 100 blocks, as in bitcoind)."""
    _out(w.api("POST", "/v1/mine", {"blocks": blocks, **({"address": address} if address else {})}))


@cli.command()
@click.option("--wallet", default="miner", show_default=True)
@click.option(
    "--address-type",
    type=click.Choice(["bech32", "legacy", "p2sh-segwit", "bech32m"]),
    default="bech32",
    show_default=True,
    help="as bitcoind's: P2WPKH, P2PKH, P2SH-P2WPKH or P2TR",
)
@click.pass_obj
def getnewaddress(w: World, wallet: str, address_type: str) -> None:
    """A new address of WALLET."""
    _out(w.rpc("getnewaddress", ["", address_type], wallet))


@cli.command()
@click.argument("address")
@click.argument("amount_btc")
@click.option("--wallet", default="miner", show_default=True)
@click.pass_obj
def sendtoaddress(w: World, address: str, amount_btc: str, wallet: str) -> None:
    """Send AMOUNT_BTC to ADDRESS from WALLET; prints the txid."""
    _out(w.rpc("sendtoaddress", [address, amount_btc], wallet))


@cli.command()
@click.option("--wallet", default="miner", show_default=True)
@click.pass_obj
def getbalance(w: World, wallet: str) -> None:
    """Trusted, mature balance of WALLET in BTC."""
    _out(w.rpc("getbalance", [], wallet))


@cli.command("rpc")
@click.argument("method")
@click.argument("params", nargs=-1)
@click.option("--wallet")
@click.pass_obj
def rpc_cmd(w: World, method: str, params: tuple[str, ...], wallet: str | None) -> None:
    """Any bitcoind RPC; PARAMS are JSON values (bare words are strings)."""
    parsed = []
    for p in params:
        try:
            parsed.append(json.loads(p, parse_float=Decimal))
        except ValueError:
            parsed.append(p)
    _out(w.rpc(method, parsed, wallet))


@cli.command("node-new")
@click.argument("name")
@click.option("--alias", default="")
@click.option(
    "--hold-unknown-scids", is_flag=True, help="hold HTLCs to unknown scids for an interceptor"
)
@click.option(
    "--fund",
    "fund_sat",
    type=click.IntRange(min=0),
    default=0,
    help="fund its on-chain wallet (sats)",
)
@click.pass_obj
def node_new(w: World, name: str, alias: str, hold_unknown_scids: bool, fund_sat: int) -> None:
    """Create a Lightning node NAME with its own key and on-chain wallet."""
    node = w.api(
        "POST",
        "/v1/nodes",
        {"name": name, "alias": alias, "hold_unknown_scids": hold_unknown_scids},
    )
    if fund_sat:
        node = w.api("POST", f"/v1/nodes/{name}/fund", {"amount_sat": fund_sat})
    _out(node)


@cli.command("node-info")
@click.argument("name")
@click.pass_obj
def node_info(w: World, name: str) -> None:
    """Identity, balances and channels of node NAME."""
    _out(w.api("GET", f"/v1/nodes/{name}"))


@cli.command("fund-node")
@click.argument("name")
@click.argument("amount_sat", type=click.IntRange(min=1000))
@click.pass_obj
def fund_node(w: World, name: str, amount_sat: int) -> None:
    """Send AMOUNT_SAT from the miner wallet to node NAME's wallet and confirm it."""
    _out(w.api("POST", f"/v1/nodes/{name}/fund", {"amount_sat": amount_sat}))


@cli.command("open-channel")
@click.argument("opener")
@click.argument("peer")
@click.argument("capacity_sat", type=click.IntRange(min=1))
@click.option(
    "--push", "push_sat", type=click.IntRange(min=0), default=0, help="sats given to the peer"
)
@click.pass_obj
def open_channel(w: World, opener: str, peer: str, capacity_sat: int, push_sat: int) -> None:
    """Open and confirm a channel OPENER -> PEER funded from OPENER's wallet."""
    _out(
        w.api(
            "POST",
            "/v1/channels",
            {
                "from": opener,
                "to": peer,
                "capacity_sat": capacity_sat,
                "push_msat": push_sat * 1000,
            },
        )
    )


@cli.command("list-channels")
@click.argument("name", required=False)
@click.pass_obj
def list_channels(w: World, name: str | None) -> None:
    """Every channel, or NAME's."""
    _out(w.api("GET", "/v1/channels" + (f"?node={name}" if name else "")))


@cli.command()
@click.argument("name")
@click.argument("amount_msat", type=click.IntRange(min=1))
@click.option("--description", default="")
@click.option("--expiry", type=click.IntRange(min=1), default=3600, show_default=True)
@click.option("--hold-hash", help="make a hold invoice for this payment hash")
@click.pass_obj
def invoice(
    w: World, name: str, amount_msat: int, description: str, expiry: int, hold_hash: str | None
) -> None:
    """A signed BOLT11 invoice of node NAME."""
    body: dict = {"amount_msat": amount_msat, "description": description, "expiry": expiry}
    if hold_hash:
        body["payment_hash"] = hold_hash
    _out(w.api("POST", f"/v1/nodes/{name}/invoices", body))


@cli.command()
@click.argument("name")
@click.argument("bolt11")
@click.option("--max-fee-msat", type=click.IntRange(min=0))
@click.pass_obj
def pay(w: World, name: str, bolt11: str, max_fee_msat: int | None) -> None:
    """Pay BOLT11 from node NAME; prints the result (preimage, or the failure)."""
    body: dict = {"bolt11": bolt11}
    if max_fee_msat is not None:
        body["max_fee_msat"] = max_fee_msat
    result = w.api("POST", f"/v1/nodes/{name}/pay", body)
    _out(result)
    if result["status"] == "failed":
        _fail(
            f"payment failed: {result['failure']} at {result['failure_node']}", EXIT_PAYMENT_FAILED
        )


@cli.command()
@click.argument("name")
@click.pass_obj
def balance(w: World, name: str) -> None:
    """Lightning and on-chain balances of node NAME."""
    n = w.api("GET", f"/v1/nodes/{name}")
    _out(
        {k: n[k] for k in ("name", "lightning_balance_msat", "inbound_msat", "onchain_balance_sat")}
    )


def main() -> None:
    keep_private()  # wallets and files it makes: 0600, folders 0700
    run_cli(cli)


if __name__ == "__main__":
    main()
