"""The gateway's side of the Lightning module, as its actors use it: claim or cancel outgoing
contracts (with the preimage, or to let the user refund at once), fund or refund incoming
contracts, and register in the federation's gateway registry."""

from __future__ import annotations

import time
from typing import Any

from coincurve import PrivateKey

from . import crypto
from .tx import cancel_message, registration_message
from .wallet import FederationWallet

DEFAULT_CLTV_DELTA = 40  # the CLTV delta a gateway announces unless told otherwise


class GatewayRole(FederationWallet):
    # --- gateway role -------------------------------------------------------------------------
    def claim_outgoing(self, contract_id: str, preimage: str, gateway_key: PrivateKey) -> int:
        c = self.api.contract(contract_id)
        op = self._new_op("gw-claim", {"contract_id": contract_id})
        change = self._change_outputs(c["amount"], 1, 0)
        self._run(
            op,
            [{"kind": "outgoing_claim", "contract_id": contract_id, "preimage": preimage}],
            [gateway_key],
            [],
            change,
        )
        return sum(change)

    def cancel_outgoing(self, contract_id: str, gateway_key: PrivateKey) -> None:
        op = self._new_op("gw-cancel", {"contract_id": contract_id})
        sig = crypto.schnorr_sign(gateway_key, cancel_message(contract_id))
        self._run_paid(
            op, [{"kind": "cancel_outgoing", "contract_id": contract_id, "gateway_signature": sig}]
        )

    def fund_incoming(self, payment_hash: str, amount_msat: int, gateway_key: PrivateKey) -> dict:
        """Buy the preimage: fund the incoming contract for `payment_hash`; returns its outcome
        {contract_id, valid, preimage}."""
        op = self._new_op("gw-fund", {"payment_hash": payment_hash, "amount_msat": amount_msat})
        out = {
            "kind": "incoming_contract",
            "amount": amount_msat,
            "payment_hash": payment_hash,
            "gateway_key": crypto.xonly(gateway_key),
        }
        return self._run_paid(op, [out], amount_msat)[0]

    def refund_incoming(self, contract_id: str, gateway_key: PrivateKey) -> int:
        c = self.api.contract(contract_id)
        op = self._new_op("gw-refund", {"contract_id": contract_id})
        change = self._change_outputs(c["amount"], 1, 0)
        self._run(
            op, [{"kind": "incoming_refund", "contract_id": contract_id}], [gateway_key], [], change
        )
        return sum(change)

    def register_gateway(
        self,
        gateway_key: PrivateKey,
        *,
        scid: int,
        node_pubkey: str,
        api_url: str,
        fees: dict,
        route_hints: list | None = None,
        ttl_s: int = 600,
        cltv_delta: int = DEFAULT_CLTV_DELTA,
    ) -> dict:
        reg: dict[str, Any] = {
            "federation_id": self.federation_id,
            "gateway_key": crypto.xonly(gateway_key),
            "scid": scid,
            "node_pubkey": node_pubkey,
            "api_url": api_url,
            "route_hints": route_hints or [],
            "fees": fees,
            "cltv_delta": cltv_delta,
            "valid_until": int(time.time()) + ttl_s,
        }
        return self.api.register_gateway(
            reg, crypto.schnorr_sign(gateway_key, registration_message(reg))
        )
