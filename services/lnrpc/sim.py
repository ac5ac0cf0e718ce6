"""The sim backend: a node of the regtest world, driven through regtestd's Lightning API.

Status mapping (regtestd payment status -> PaymentState), the only place it is decided:
    succeeded -> SETTLED    failed -> FAILED    pending -> PENDING    (no answer) -> UNKNOWN
The node is set to hold HTLCs for unknown scids (`hold_unknown_scids`), so HTLCs that arrive
while the extension is down wait for it, as with LND's `requireinterceptor`.

Hold invoices are the world's own (`payment_hash` without a preimage); their HTLCs are watched on
the node's invoice stream (state `accepted`, with the held HTLC) and the accepted ones listed
again after every reconnect; settle and cancel go to the invoice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import httpx
from bolt11 import decode as bolt11_decode

from gwcore.constants import REGTESTD_INFO_FILE

from .backend import (
    BackendError,
    Balances,
    ChannelBalance,
    HintHop,
    HtlcAction,
    InterceptedHtlc,
    InvoiceExists,
    LightningBackend,
    NodeInfo,
    PaymentResult,
    PaymentState,
)

log = logging.getLogger(__name__)
SIM_STATUS = {
    "succeeded": PaymentState.SETTLED,
    "failed": PaymentState.FAILED,
    "pending": PaymentState.PENDING,
}


class SimBackend(LightningBackend):
    name = "sim"

    def __init__(self, api_url: str, api_token: str, node: str) -> None:
        self.api_url, self.node = api_url.rstrip("/"), node
        self._headers = {"Authorization": f"Bearer {api_token}"}
        self.http: httpx.AsyncClient | None = None
        self._pubkeys: dict[str, str] = {}

    @classmethod
    def from_data_dir(cls, regtest_dir: Path, node: str) -> SimBackend:
        info = json.loads((regtest_dir / REGTESTD_INFO_FILE).read_text())
        return cls(info["api_url"], info["api_token"], node)

    async def start(self) -> None:
        self.http = httpx.AsyncClient(
            base_url=self.api_url, headers=self._headers, timeout=httpx.Timeout(30, read=3700)
        )
        r = await self.http.get(f"/v1/nodes/{self.node}")
        if r.status_code == 404:
            r = await self.http.post(
                "/v1/nodes", json={"name": self.node, "hold_unknown_scids": True}
            )
        elif r.status_code == 200 and not r.json()["hold_unknown_scids"]:
            r = await self.http.post(
                f"/v1/nodes/{self.node}/settings", json={"hold_unknown_scids": True}
            )
        if r.status_code >= 400:
            raise BackendError(f"regtest node {self.node}: {r.text}")

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()

    async def _get(self, path: str) -> httpx.Response:
        assert self.http is not None
        try:
            return await self.http.get(path)
        except httpx.HTTPError as exc:
            raise BackendError(f"regtestd unreachable: {exc}", retryable=True) from None

    async def _pubkey(self, name: str) -> str:
        if name not in self._pubkeys:
            self._pubkeys[name] = (await self._get(f"/v1/nodes/{name}")).json()["pubkey"]
        return self._pubkeys[name]

    async def node_info(self) -> NodeInfo:
        node = (await self._get(f"/v1/nodes/{self.node}")).json()
        return NodeInfo(
            bytes.fromhex(node["pubkey"]), node["alias"], "regtest", node["block_height"], True
        )

    async def balances(self) -> Balances:
        node = (await self._get(f"/v1/nodes/{self.node}")).json()
        chans = []
        for c in node["channels"]:
            ours, peer = ("a", "b") if c["node_a"] == self.node else ("b", "a")
            chans.append(
                ChannelBalance(
                    peer_id=bytes.fromhex(await self._pubkey(c[f"node_{peer}"])),
                    short_channel_id=c["scid_int"],
                    capacity_sat=c["capacity_sat"],
                    local_msat=c[f"balance_{ours}_msat"],
                    remote_msat=c[f"balance_{peer}_msat"],
                    active=c["state"] == "active",
                )
            )
        return Balances(node["onchain_balance_sat"], tuple(chans))

    async def route_hints(self, num: int) -> list[list[HintHop]]:
        node = (await self._get(f"/v1/nodes/{self.node}")).json()
        chans = [c for c in node["channels"] if c["state"] == "active"]
        chans.sort(
            key=lambda c: (
                -(c["balance_b_msat"] if c["node_a"] == self.node else c["balance_a_msat"])
            )
        )
        hints = []
        for c in chans[: num or None]:
            peer_side = "b" if c["node_a"] == self.node else "a"
            peer = c[f"node_{peer_side}"]
            pol = c[f"policy_{peer_side}"]
            if not pol["enabled"]:
                continue
            hop = HintHop(
                src_node_id=bytes.fromhex(await self._pubkey(peer)),
                short_channel_id=c["scid_int"],
                base_msat=pol["base_msat"],
                proportional_millionths=pol["ppm"],
                cltv_expiry_delta=pol["cltv_delta"],
                htlc_minimum_msat=pol["htlc_min_msat"],
                htlc_maximum_msat=pol["htlc_max_msat"] or c["capacity_sat"] * 1000,
            )
            hints.append([hop])
        return hints

    @staticmethod
    def _result(p: dict) -> PaymentResult:
        state = SIM_STATUS.get(p["status"], PaymentState.UNKNOWN)
        if state == PaymentState.SETTLED:
            return PaymentResult(state, bytes.fromhex(p["preimage"]), p["fee_msat"])
        if state == PaymentState.FAILED:
            return PaymentResult(
                state, failure_reason=p["failure"] or "failed", failure_code=p["failure_code"] or 0
            )
        return PaymentResult(state)

    async def pay(
        self, invoice: str, payment_hash: bytes, max_delay: int, max_fee_msat: int
    ) -> PaymentResult:
        assert self.http is not None
        body = {"bolt11": invoice, "max_fee_msat": max_fee_msat, "timeout_s": 3600}
        if max_delay:
            body["max_cltv_delay"] = max_delay
        try:
            r = await self.http.post(f"/v1/nodes/{self.node}/pay", json=body)
        except httpx.HTTPError as exc:
            log.warning("pay request lost: %s (the payment is UNKNOWN until tracked)", exc)
            return PaymentResult(PaymentState.UNKNOWN)
        data = r.json()
        if r.status_code >= 400:
            if data.get("code") == "invoice_expired":
                return PaymentResult(PaymentState.FAILED, failure_reason="invoice_expired")
            raise BackendError(
                f"{data.get('code')}: {data.get('error')}", invalid_input=r.status_code < 500
            )
        return self._result(data)

    async def track(self, payment_hash: bytes) -> PaymentResult | None:
        r = await self._get(f"/v1/nodes/{self.node}/payments/{payment_hash.hex()}")
        if r.status_code == 404:
            return None
        return self._result(r.json())

    async def intercepted(self) -> AsyncIterator[InterceptedHtlc]:
        queue: asyncio.Queue[InterceptedHtlc] = asyncio.Queue()
        pumps = [
            asyncio.create_task(self._pump(self._interceptions, queue)),
            asyncio.create_task(self._pump(self._hold_htlcs, queue)),
        ]
        try:
            while True:
                yield await queue.get()
        finally:
            for task in pumps:
                task.cancel()

    async def _pump(self, source, queue: asyncio.Queue[InterceptedHtlc]) -> None:  # type: ignore[no-untyped-def]
        async for htlc in source():
            queue.put_nowait(htlc)

    async def _stream(self, path: str) -> AsyncIterator[dict | None]:
        """The JSON messages of one of regtestd's websockets, reconnecting; None on connect."""
        url = self.api_url + path
        delay = 0.1
        while True:
            try:
                async with (
                    aiohttp.ClientSession(headers=self._headers) as session,
                    session.ws_connect(url, heartbeat=20) as ws,
                ):
                    delay = 0.1
                    yield None
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        yield json.loads(msg.data)
            except (aiohttp.ClientError, OSError) as exc:
                log.warning("regtestd stream %s: %s; reconnecting", path, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _interceptions(self) -> AsyncIterator[InterceptedHtlc]:
        async for h in self._stream(f"/v1/nodes/{self.node}/htlcs/intercept"):
            if h is None or "id" not in h:
                continue  # connected, or an ack
            yield InterceptedHtlc(
                payment_hash=bytes.fromhex(h["payment_hash"]),
                incoming_amount_msat=h["incoming_amount_msat"],
                outgoing_amount_msat=h["outgoing_amount_msat"],
                incoming_expiry=h["incoming_expiry"],
                outgoing_expiry=h["outgoing_expiry"],
                short_channel_id=h["short_channel_id"],
                incoming_chan_id=h["incoming_chan_id"],
                htlc_id=h["incoming_htlc_id"],
                ref=h["id"],
            )

    async def _hold_htlcs(self) -> AsyncIterator[InterceptedHtlc]:
        async for inv in self._stream(f"/v1/nodes/{self.node}/invoices/subscribe"):
            if inv is None:  # (re)connected: what was accepted meanwhile
                try:
                    listed = (await self._get(f"/v1/nodes/{self.node}/invoices")).json()
                except BackendError:
                    continue
                for one in listed:
                    if (held := self._held_htlc(one)) is not None:
                        yield held
            elif (held := self._held_htlc(inv)) is not None:
                yield held

    @staticmethod
    def _held_htlc(inv: dict) -> InterceptedHtlc | None:
        if not inv.get("hold") or inv.get("state") != "accepted" or not inv.get("htlc"):
            return None
        h = inv["htlc"]
        return InterceptedHtlc(
            payment_hash=bytes.fromhex(inv["payment_hash"]),
            incoming_amount_msat=inv["amount_received_msat"],
            outgoing_amount_msat=0,
            incoming_expiry=h["incoming_expiry"],
            outgoing_expiry=0,
            short_channel_id=0,
            incoming_chan_id=h["incoming_chan_id"],
            htlc_id=h["incoming_htlc_id"],
            ref=inv["payment_hash"],
            hold_invoice=True,
        )

    async def create_invoice(
        self,
        payment_hash: bytes,
        amount_msat: int,
        expiry_secs: int,
        *,
        memo: str = "",
        description_hash: bytes = b"",
    ) -> str:
        assert self.http is not None
        body: dict = {"amount_msat": amount_msat, "expiry": expiry_secs}
        body["payment_hash"] = payment_hash.hex()
        if description_hash:
            body["description_hash"] = description_hash.hex()
        else:
            body["description"] = memo
        try:
            r = await self.http.post(f"/v1/nodes/{self.node}/invoices", json=body)
            if r.status_code == 409:  # this hash has an invoice: the same one, or a conflict
                r = await self.http.get(f"/v1/nodes/{self.node}/invoices/{payment_hash.hex()}")
                old = bolt11_decode(r.json()["bolt11"])
                same = (
                    old.amount_msat == amount_msat
                    and old.expiry == expiry_secs
                    and (old.description_hash or "") == description_hash.hex()
                    and (old.description or "") == ("" if description_hash else memo)
                )
                if not same:
                    raise InvoiceExists()
        except httpx.HTTPError as exc:
            raise BackendError(f"regtestd unreachable: {exc}", retryable=True) from None
        if r.status_code >= 400:
            raise BackendError(r.json().get("error", r.text), invalid_input=r.status_code < 500)
        return str(r.json()["bolt11"])

    async def complete(
        self,
        htlc: InterceptedHtlc,
        action: HtlcAction,
        *,
        preimage: bytes = b"",
        failure_code: int = 0x400F,
    ) -> None:
        assert self.http is not None
        if htlc.hold_invoice:
            await self._complete_hold(htlc, action, preimage)
            return
        body = {"action": action.value, "failure_code": failure_code}
        if action == HtlcAction.SETTLE:
            body["preimage"] = preimage.hex()
        try:
            r = await self.http.post(f"/v1/nodes/{self.node}/htlcs/{htlc.ref}/resolve", json=body)
        except httpx.HTTPError as exc:
            raise BackendError(f"regtestd unreachable: {exc}", retryable=True) from None
        if r.status_code == 404:
            raise BackendError("the node no longer holds this HTLC")
        if r.status_code >= 400:
            raise BackendError(r.json().get("error", r.text), invalid_input=True)

    async def _complete_hold(
        self, htlc: InterceptedHtlc, action: HtlcAction, preimage: bytes
    ) -> None:
        assert self.http is not None
        path = f"/v1/nodes/{self.node}/invoices/{htlc.ref}"
        try:
            if action == HtlcAction.SETTLE:
                r = await self.http.post(f"{path}/settle", json={"preimage": preimage.hex()})
            else:  # fail, or forward: a hold-invoice HTLC has nowhere else to go
                r = await self.http.post(f"{path}/cancel", json={})
        except httpx.HTTPError as exc:
            raise BackendError(f"regtestd unreachable: {exc}", retryable=True) from None
        if r.status_code in (404, 409):
            raise BackendError("the node no longer holds this HTLC")
        if r.status_code >= 400:
            raise BackendError(r.json().get("error", r.text), invalid_input=True)
