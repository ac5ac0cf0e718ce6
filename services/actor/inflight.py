"""Contracts in flight that a lost data folder forgot, found again in the federation's signed
session history after a recovery from the seed (`connect-fed --recover`).

A payer funds an outgoing contract naming our key, we pay its invoice over Lightning, then
claim the contract with the preimage. Lose the data folder in between and the contract is
forgotten: the Lightning modules' APIs find a contract only by its outpoint, and gatewayd's
modules recover none. If the payer's client is online it asks us again and the send goes on;
if not, at expiry the payer refunds a contract we have already paid out over Lightning. So
the recovery reads the sessions back from the newest (fmclient/history.py, every session
checked against the guardians' signatures), hands each Lightning role the outputs of its
module (`ContractFinder.output`), and each role takes up what is ours and unspent from what
our node knows of the payment (`ContractFinder.adopt`: claimed when the node has the
preimage, asked again while it is in flight, forfeited when it failed).

How far back: a contract to us lives at most its finder's `window` blocks (the longest
expiration delta we advertise, plus the payer's confirmation buffer and a margin). Each guardian votes the block
count as it rises (the lnv2 module's `BlockCountVote`, the ln module's `BlockCount`); read
backwards, a guardian's votes fall. Once a threshold of guardians have voted, and the highest
of their earliest votes seen is more than `window` below the count now, every earlier session
is older than any contract that can still be claimed, and the scan stops. A federation that
never voted is read to its first session. The scan begins by waiting for the session open at
its start to close (about 10 s in tests, 3 minutes in production), so a contract funded just
before the loss is read too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from fmclient.encoding import DecodeError, Reader
from fmclient.history import SessionHistory

log = logging.getLogger(__name__)
CONFIRMATION_BUFFER = 12  # blocks the payer's client adds to the expiration (lnv2-client)
MARGIN = 144


class ContractFinder(Protocol):
    """A Lightning role's part in the scan: the outputs of its module, then the adoption."""

    module: int  # the module instance whose outputs it reads
    vote_variant: int  # the module's consensus item variant that votes the block count
    window: int  # blocks: the longest a contract to us lives

    def output(self, txid: str, out_idx: int, body: bytes) -> None:
        """One output of the module (any payer's); keeps those that are contracts to us."""

    def input(self, txid: str, in_idx: int, body: bytes) -> None:
        """One input of the module (any spender's): what a spend of a contract shows."""

    async def block_count(self) -> int:
        """The federation's block count now (the module's consensus)."""

    async def adopt(self) -> int:
        """Take up the contracts kept that are still unspent; how many were taken up."""


def _vote(body: bytes, variant: int) -> int | None:
    try:
        r = Reader(body, "consensus item")
        tag, inner = r.framed()
        return inner.varint() if tag == variant else None
    except DecodeError:
        return None


async def find_in_history(
    history: SessionHistory,
    finders: list[ContractFinder],
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> int:
    """Read the sessions back from the newest until no earlier one can hold a contract still
    claimable, handing every finder its module's outputs; then each adopts what it kept.
    Returns the contracts taken up."""
    if not finders:
        return 0
    # the session open now is awaited too: a contract funded just before the loss is in it
    count = await history.count() + 1
    block_count = max([await f.block_count() for f in finders])
    window = max(f.window for f in finders)
    threshold = history.config.threshold
    earliest: dict[int, int] = {}  # guardian -> its lowest block-count vote seen so far
    read = 0
    for index in range(count - 1, -1, -1):
        session = await history.session(index)
        read += 1
        for finder in finders:
            for txid, out_idx, body in session.outputs(finder.module):
                finder.output(txid, out_idx, body)
            for txid, in_idx, body in session.inputs(finder.module):
                finder.input(txid, in_idx, body)
            for peer, item in session.module_items(finder.module):
                vote = _vote(item, finder.vote_variant)
                if vote is not None:
                    earliest[peer] = min(vote, earliest.get(peer, vote))
        progress(read, count)
        if len(earliest) >= threshold and max(earliest.values()) + window < block_count:
            break
    log.info(
        "session history read back %d of %d sessions (block count %d): contracts sought",
        read,
        count,
        block_count,
    )
    taken = 0
    for finder in finders:
        taken += await finder.adopt()
    return taken
