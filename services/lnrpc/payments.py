"""PayInvoice's idempotency: one payment per payment hash, whatever the callers do.

A repeat of a payment in progress waits for the same attempt; a repeat of a finished payment gets
its result; after a restart of the extension the node is asked (`track`) before anything is paid,
so a payment is never sent twice. Only SETTLED and FAILED results are final.
"""

from __future__ import annotations

import asyncio
import logging

from .backend import LightningBackend, PaymentResult, PaymentState

log = logging.getLogger(__name__)


class PaymentRegistry:
    def __init__(self, backend: LightningBackend) -> None:
        self.backend = backend
        self._attempts: dict[bytes, asyncio.Task[PaymentResult]] = {}

    async def pay(
        self, invoice: str, payment_hash: bytes, max_delay: int, max_fee_msat: int, wait_s: float
    ) -> PaymentResult:
        task = self._attempts.get(payment_hash)
        if task is None or (task.done() and self._retry_allowed(task)):
            task = asyncio.create_task(
                self._pay_once(invoice, payment_hash, max_delay, max_fee_msat)
            )
            self._attempts[payment_hash] = task
        try:
            return await asyncio.wait_for(asyncio.shield(task), max(0.0, wait_s))
        except TimeoutError:
            return PaymentResult(PaymentState.PENDING)

    @staticmethod
    def _retry_allowed(task: asyncio.Task[PaymentResult]) -> bool:
        """Only a definite failure may be tried again; anything else is asked, not re-paid."""
        if task.cancelled() or task.exception() is not None:
            return True
        return task.result().state == PaymentState.FAILED

    async def _pay_once(
        self, invoice: str, payment_hash: bytes, max_delay: int, max_fee_msat: int
    ) -> PaymentResult:
        known = await self.backend.track(payment_hash)
        if known is not None and known.state in (PaymentState.SETTLED, PaymentState.PENDING):
            return (
                known if known.state == PaymentState.SETTLED else await self._follow(payment_hash)
            )
        return await self.backend.pay(invoice, payment_hash, max_delay, max_fee_msat)

    async def _follow(self, payment_hash: bytes) -> PaymentResult:
        delay = 0.2
        while True:
            result = await self.backend.track(payment_hash)
            if result is not None and result.state in (PaymentState.SETTLED, PaymentState.FAILED):
                return result
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
