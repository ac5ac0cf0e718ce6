"""What an actor needs of "a federation" (`Federation`), and opening one from its invite.

`FedimintFederation` (`fedimint.py`) is it: a real fedimintd 0.13 federation (invite codes
`fed11…` or `fedimint…`), through `fmclient`, built from the modules it has: e-cash and
on-chain money. Its Lightning roles, one per Lightning module (roles.py), are built by the actor
beside it. Tests stand in for it with fakes of this protocol.

Every method's errors are `GatewayError`s (the front maps them to HTTP); amounts are integer
msat (sat only where the chain counts in sat), and every money-moving call is idempotent by an
id the caller gives or the input determines.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol

from fmclient.chain import ChainSource
from fmclient.derive import FederationSecrets

from .fedimint import Ahead, FedimintFederation


class Federation(Protocol):
    kind: str
    federation_id: str
    modules: list[str]  # the module kinds, as the federation's config names them

    @property
    def name(self) -> str: ...

    def balance_msat(self) -> int: ...

    async def resume(self) -> list[str]:
        """Finish what a crash left between steps; names what was resumed."""
        ...

    async def run(self, stop: asyncio.Event) -> None:
        """Background work until `stop` (finishing peg-outs, finding deposits)."""
        ...

    async def address(self) -> dict:
        """A fresh peg-in address: {address, operation_id}."""
        ...

    async def deposit(self, body: dict) -> dict:
        """Claim a deposit: {txid, credited_msat, already_credited, balance_msat, …}."""
        ...

    async def withdraw(self, body: dict) -> dict:
        """{amount_sat | "all", address, preview?} -> the quote, or the peg-out."""
        ...

    async def receive_ecash(self, notes: str) -> dict:
        """Reissue someone's e-cash into our wallet: {amount_msat (credited), balance_msat}.
        The same notes twice credit once."""
        ...

    async def spend_ecash(self, amount_msat: int, operation_id: str) -> dict:
        """Out-of-band notes of ours: {notes, amount_msat, balance_msat}; by id, once."""
        ...

    def log_rows(self, since: float, before: float | None, limit: int) -> list[dict]:
        """On-chain and e-cash operations as payment-log rows, newest first."""
        ...

    def in_flight(self) -> dict[str, int]:
        """Money of ours in flight in this federation, by kind (gwcore.constants.IN_FLIGHT_KINDS):
        withdrawals not yet on chain or refunded, deposits seen and not yet claimed, e-cash
        operations with a transaction not yet final. The Lightning roles count their own."""
        ...

    async def close(self) -> None: ...


async def open_federation(
    home: Path,
    invite_code: str,
    federation_id: str,
    api_urls: dict | None = None,
    chain: ChainSource | None = None,
    secrets: FederationSecrets | None = None,
    ahead: Ahead | None = None,
) -> Federation:
    """The federation the invite names, joined (its config checked against the id).
    `api_urls`: Fedimint guardians' ws URLs by peer id, where the federation lists only iroh.
    `chain`: the operator's chain source (needed by wallet v1). `secrets`: a Fedimint
    federation's secrets from the gateway's seed (None: random keys, keys.py).
    `ahead`: what is made ahead of need (mintv2 tweaks, peg-in addresses; None: the defaults)."""
    return await FedimintFederation.open(
        home, invite_code, federation_id, api_urls, chain, secrets, ahead or Ahead()
    )
