"""The gateway-wide rule that a payment hash is paid once: before an actor pays anything for an
outgoing contract (over Lightning or by a swap), it claims the contract's payment hash at the
router (`gateway.claim_outgoing_hash`, kept in the router's registry); a contract for a hash
that another contract holds — in this federation or any other the gateway serves — is refused
before anything is paid or claimed, and its payer refunded at once. Our node's PayInvoice is
idempotent per payment hash (it answers a second call with the first payment's preimage), so
without this rule a second payer's contract would be claimed for a payment made only once.

The same contract asked again finds its own claim (idempotent by federation and contract id).
When the holding contract failed definitely (it will never pay), its actor releases the hash
and a later contract may pay it; a release that is lost leaves the hash held (refusing too much,
never paying twice). This module never pays and never decides a payment's result.
"""

from __future__ import annotations

import json
import logging
from typing import Protocol

from bus import BusClient
from gwcore.constants import GATEWAY_SERVICE, METHOD_CLAIM_OUTGOING, METHOD_RELEASE_OUTGOING

log = logging.getLogger(__name__)


class PaymentHashClaims(Protocol):
    async def claim(self, payment_hash: str, contract_id: str) -> bool:
        """May this contract pay this hash? False: another contract holds it (refuse)."""
        ...

    async def release(self, payment_hash: str, contract_id: str) -> None:
        """This contract failed definitely: another may pay the hash (best effort)."""
        ...


class RouterPaymentHashClaims:
    """The claims of one federation's actor, kept by the router (one registry per gateway)."""

    def __init__(self, bus: BusClient, federation_id: str) -> None:
        self.bus, self.federation_id = bus, federation_id

    def _body(self, payment_hash: str, contract_id: str) -> bytes:
        body = {
            "payment_hash": payment_hash,
            "federation_id": self.federation_id,
            "contract_id": contract_id,
        }
        return json.dumps(body).encode()

    async def claim(self, payment_hash: str, contract_id: str) -> bool:
        raw = await self.bus.request(
            GATEWAY_SERVICE,
            METHOD_CLAIM_OUTGOING,
            self._body(payment_hash, contract_id),
            timeout=15,
        )
        return bool(json.loads(raw)["claimed"])

    async def release(self, payment_hash: str, contract_id: str) -> None:
        try:
            await self.bus.request(
                GATEWAY_SERVICE,
                METHOD_RELEASE_OUTGOING,
                self._body(payment_hash, contract_id),
                timeout=15,
            )
        except (
            Exception
        ) as exc:  # the hash stays held: a later contract is refused, never paid twice
            log.warning("payment hash %s not released: %s", payment_hash, exc)
