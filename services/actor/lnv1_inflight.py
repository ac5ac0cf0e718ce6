"""The ln module's part in finding contracts in flight after a recovery from the seed
(inflight.py): in the federation's session history, the outgoing contracts whose gateway key is
our redeem key (a payer's send we may have paid over Lightning: adopted by the sender) and the
incoming contracts we funded (a receive whose HTLC our node may still hold: adopted by the
receiver). A spend is read from the contract's account when adopting, so inputs are ignored."""

from __future__ import annotations

from fmclient.lnv1 import IncomingContract, OutgoingContract
from fmclient.lnv1_checks import Lnv1Error
from fmclient.lnv1_tx import contract_in

from .lnv1_receive import Lnv1Receiver
from .lnv1_send import Lnv1Sender


class Lnv1ContractFinder:
    vote_variant = 1  # LightningConsensusItem::BlockCount (fedimint-ln-common 0.13)

    def __init__(
        self, sender: Lnv1Sender, window: int, receiver: Lnv1Receiver | None = None
    ) -> None:
        """`window`: the longest a contract to us lives, in blocks (inflight.py)."""
        self.sender, self.receiver, self.window = sender, receiver, window
        self.module = sender.module
        self.ours = sender.key.public_key.format(compressed=True)
        self.kept: dict[bytes, OutgoingContract] = {}
        self.incoming: dict[bytes, tuple[str, int, IncomingContract]] = {}

    def output(self, txid: str, out_idx: int, body: bytes) -> None:
        try:
            found = contract_in(body)
        except Lnv1Error:
            return
        if found is None or found[1].gateway_key != self.ours:
            return
        amount, contract = found
        if isinstance(contract, OutgoingContract):
            self.kept.setdefault(contract.contract_id, contract)
        else:  # funded once per hash: the first seen, reading backwards, is the only one
            self.incoming.setdefault(contract.contract_id, (txid, amount, contract))

    def input(self, txid: str, in_idx: int, body: bytes) -> None:
        return None  # a spent contract's account says so (adopt asks it)

    async def block_count(self) -> int:
        api = self.sender.mint.api
        return int(await api.current_consensus(f"module_{self.module}_block_count"))

    async def adopt(self) -> int:
        taken = 0
        for contract in self.kept.values():
            taken += await self.sender.adopt(contract)
        if self.receiver is not None:
            for txid, amount, incoming in self.incoming.values():
                taken += await self.receiver.adopt(incoming, txid, amount)
        return taken
