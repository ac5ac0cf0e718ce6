"""The lnv2 module's part in finding contracts in flight after a recovery from the seed
(inflight.py): in the federation's session history, the outgoing contracts whose claim key is
ours (a payer's send we may have paid over Lightning: adopted by the sender) and the incoming
contracts whose refund key is ours (a receive we funded, with the aggregate decryption key of
its spend when the history shows one: adopted by the receiver)."""

from __future__ import annotations

from fmclient.encoding import DecodeError
from fmclient.lnv2 import (
    IncomingContract,
    Lnv2Error,
    OutgoingContract,
    incoming_contract_in,
    incoming_spend_in,
    outgoing_contract_in,
)

from .lnv2_receive import Lnv2Receiver
from .lnv2_send import Lnv2Sender


class Lnv2ContractFinder:
    vote_variant = 0  # LightningConsensusItem::BlockCountVote

    def __init__(
        self, sender: Lnv2Sender, window: int, receiver: Lnv2Receiver | None = None
    ) -> None:
        """`window`: the longest a contract to us lives, in blocks (inflight.py)."""
        self.sender, self.receiver, self.window = sender, receiver, window
        self.module = sender.module
        self.ours = sender.key.public_key.format(compressed=True)
        self.kept: dict[bytes, tuple[str, int, OutgoingContract]] = {}
        self.incoming: dict[tuple[str, int], IncomingContract] = {}
        self.spent: dict[tuple[str, int], bytes] = {}  # outpoint -> aggregate decryption key

    def output(self, txid: str, out_idx: int, body: bytes) -> None:
        try:
            contract = outgoing_contract_in(body)
            incoming = None if contract is not None else incoming_contract_in(body)
        except (DecodeError, Lnv2Error, ValueError):
            return
        if contract is not None and contract.claim_pk == self.ours:
            self.kept.setdefault(contract.contract_id, (txid, out_idx, contract))
        if incoming is not None and incoming.commitment.refund_pk == self.ours:
            self.incoming.setdefault((txid, out_idx), incoming)

    def input(self, txid: str, in_idx: int, body: bytes) -> None:
        try:
            spend = incoming_spend_in(body)
        except (DecodeError, ValueError):
            return
        if spend is not None:
            self.spent.setdefault((spend[0], spend[1]), spend[2])

    async def block_count(self) -> int:
        return int(
            await self.sender.mint.api.current_consensus(
                f"module_{self.module}_consensus_block_count", None
            )
        )

    async def adopt(self) -> int:
        taken = 0
        for txid, out_idx, contract in self.kept.values():
            taken += await self.sender.adopt(txid, out_idx, contract)
        if self.receiver is not None:
            for (txid, out_idx), incoming in self.incoming.items():
                spent = self.spent.get((txid, out_idx))
                taken += await self.receiver.adopt(txid, out_idx, incoming, spent)
        return taken
