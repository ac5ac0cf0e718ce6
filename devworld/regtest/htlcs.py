"""HTLC values of the simulated network and the BOLT-4 failure codes nodes answer with."""

from __future__ import annotations

from dataclasses import dataclass

BADONION, PERM, NODE, UPDATE = 0x8000, 0x4000, 0x2000, 0x1000
FAILURES = {
    PERM | 15: "incorrect_or_unknown_payment_details",
    PERM | 10: "unknown_next_peer",
    UPDATE | 7: "temporary_channel_failure",
    UPDATE | 11: "amount_below_minimum",
    UPDATE | 12: "fee_insufficient",
    UPDATE | 13: "incorrect_cltv_expiry",
    UPDATE | 14: "expiry_too_soon",
    UPDATE | 20: "channel_disabled",
    NODE | 2: "temporary_node_failure",
    PERM | NODE | 2: "permanent_node_failure",
    PERM | 8: "permanent_channel_failure",
    21: "expiry_too_far",
    18: "final_incorrect_cltv_expiry",
    19: "final_incorrect_htlc_amount",
}
CODES = {name: code for code, name in FAILURES.items()}
HOLD_SAFETY_BLOCKS = 2


class HtlcFailure(Exception):
    def __init__(self, code: int, node: str, scid: int | None = None) -> None:
        super().__init__(FAILURES.get(code, hex(code)))
        self.code, self.node, self.scid = code, node, scid

    @property
    def name(self) -> str:
        return FAILURES.get(self.code, f"unknown_failure_{self.code:#06x}")


@dataclass
class Htlc:
    id: int
    scid: int
    sender: str
    amount_msat: int
    expiry: int
