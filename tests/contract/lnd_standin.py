"""An LND stand-in for contract tests: LND's own gRPC services (lnrpc.Lightning,
routerrpc.Router, invoicesrpc.Invoices, from proto/lnd_*.proto) over TLS with macaroon checking,
answering from a node of the regtest world. The LND backend talks to it exactly as to lnd.
Hold invoices and the invoice calls are `lnd_standin_invoices.InvoicesStandIn` (its docstring says
what was taken from lnd's sources and what is not modelled).

HtlcInterceptor: while a client stream is open (one at a time, like lnd), the world's HTLCs for
unknown scids are sent as ForwardHtlcInterceptRequests and the responses (SETTLE / FAIL / RESUME)
are applied to the world; with no stream, as lnd with requireinterceptor, new ones are failed (temporary_channel_failure) and
those already offered to a stream stay held for the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import os
from collections.abc import AsyncIterator

import aiohttp
import grpc
import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gwproto import lnd_invoices_pb2_grpc as inv_grpc
from gwproto import lnd_lightning_pb2 as ln
from gwproto import lnd_lightning_pb2_grpc as ln_grpc
from gwproto import lnd_router_pb2 as router
from gwproto import lnd_router_pb2_grpc as router_grpc
from tests.contract.lnd_standin_invoices import InvoicesStandIn

# the failure codes lnd's forwardInterceptor accepts with FAIL (lnrpc/routerrpc/
# forward_interceptor.go); the stand-in fails them all as temporary_channel_failure (the onion
# ones are not modelled)
LND_FAIL_CODES = {
    0,
    ln.Failure.TEMPORARY_CHANNEL_FAILURE,
    ln.Failure.INVALID_ONION_HMAC,
    ln.Failure.INVALID_ONION_KEY,
    ln.Failure.INVALID_ONION_VERSION,
}
STATUS = {
    "succeeded": ln.Payment.SUCCEEDED,
    "failed": ln.Payment.FAILED,
    "pending": ln.Payment.IN_FLIGHT,
}


def self_signed() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lnd stand-in")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            False,
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class MacaroonCheck(grpc.aio.ServerInterceptor):
    def __init__(self, macaroon_hex: str) -> None:
        self.macaroon_hex = macaroon_hex

    async def intercept_service(self, continuation, details):  # type: ignore[no-untyped-def]
        if dict(details.invocation_metadata).get("macaroon") != self.macaroon_hex:

            async def deny(request, context):  # type: ignore[no-untyped-def]
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED, "verification failed: signature mismatch"
                )

            handler = await continuation(details)
            if handler is not None and handler.request_streaming:
                return (
                    grpc.stream_stream_rpc_method_handler(deny)
                    if handler.response_streaming
                    else grpc.stream_unary_rpc_method_handler(deny)
                )
            if handler is not None and handler.response_streaming:
                return grpc.unary_stream_rpc_method_handler(deny)
            return grpc.unary_unary_rpc_method_handler(deny)
        return await continuation(details)


class LndStandIn(InvoicesStandIn, ln_grpc.LightningServicer, router_grpc.RouterServicer):
    def __init__(self, info: dict, node: str) -> None:
        self.info, self.node = info, node
        self.headers = {"Authorization": f"Bearer {info['api_token']}"}
        self.http = httpx.AsyncClient(base_url=info["api_url"], headers=self.headers, timeout=120)
        self.cert, self.key = self_signed()
        self.macaroon = os.urandom(32)
        self.interceptor_open = False
        self._offered: set[int] = set()  # the world's HTLC ids offered to an interceptor
        self._idle: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> str:
        self.server = grpc.aio.server(interceptors=[MacaroonCheck(self.macaroon.hex())])
        ln_grpc.add_LightningServicer_to_server(self, self.server)
        router_grpc.add_RouterServicer_to_server(self, self.server)
        inv_grpc.add_InvoicesServicer_to_server(self, self.server)
        port = self.server.add_secure_port(
            "127.0.0.1:0", grpc.ssl_server_credentials([(self.key, self.cert)])
        )
        await self.server.start()
        self._start_idle()
        return f"127.0.0.1:{port}"

    async def stop(self) -> None:
        self._stopping = True
        await self._stop_idle()
        await self.server.stop(0.2)
        await self.http.aclose()

    async def _me(self) -> dict:
        return (await self.http.get(f"/v1/nodes/{self.node}")).json()

    # --- lnrpc.Lightning ----------------------------------------------------------------------
    async def GetInfo(self, request, context):  # type: ignore[no-untyped-def]
        me = await self._me()
        return ln.GetInfoResponse(
            identity_pubkey=me["pubkey"],
            alias=me["alias"],
            block_height=me["block_height"],
            synced_to_chain=True,
            synced_to_graph=True,
            chains=[ln.Chain(chain="bitcoin", network="regtest")],
        )

    async def ListChannels(self, request, context):  # type: ignore[no-untyped-def]
        me = await self._me()
        out = ln.ListChannelsResponse()
        for c in me["channels"]:
            mine, peer = ("a", "b") if c["node_a"] == self.node else ("b", "a")
            peer_pub = (await self.http.get(f"/v1/nodes/{c[f'node_{peer}']}")).json()["pubkey"]
            out.channels.add(
                active=c["state"] == "active",
                remote_pubkey=peer_pub,
                channel_point=f"{c['funding_txid']}:0",
                chan_id=c["scid_int"],
                capacity=c["capacity_sat"],
                local_balance=c[f"balance_{mine}_msat"] // 1000,
                remote_balance=c[f"balance_{peer}_msat"] // 1000,
            )
        return out

    async def WalletBalance(self, request, context):  # type: ignore[no-untyped-def]
        me = await self._me()
        sats = me["onchain_balance_sat"]
        return ln.WalletBalanceResponse(
            total_balance=sats + 777, confirmed_balance=sats, unconfirmed_balance=777
        )

    async def GetChanInfo(self, request, context):  # type: ignore[no-untyped-def]
        chans = (await self.http.get("/v1/channels")).json()
        c = next((c for c in chans if c["scid_int"] == request.chan_id), None)
        if c is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "edge not found")
        pubs = [
            (await self.http.get(f"/v1/nodes/{c[f'node_{s}']}")).json()["pubkey"]
            for s in ("a", "b")
        ]

        def policy(p: dict) -> ln.RoutingPolicy:
            return ln.RoutingPolicy(
                time_lock_delta=p["cltv_delta"],
                min_htlc=p["htlc_min_msat"],
                fee_base_msat=p["base_msat"],
                fee_rate_milli_msat=p["ppm"],
                disabled=not p["enabled"],
                max_htlc_msat=p["htlc_max_msat"] or c["capacity_sat"] * 1000,
            )

        return ln.ChannelEdge(
            channel_id=c["scid_int"],
            node1_pub=pubs[0],
            node2_pub=pubs[1],
            capacity=c["capacity_sat"],
            node1_policy=policy(c["policy_a"]),
            node2_policy=policy(c["policy_b"]),
        )

    # --- routerrpc.Router ---------------------------------------------------------------------
    @staticmethod
    def _payment(p: dict) -> ln.Payment:
        out = ln.Payment(
            payment_hash=p["payment_hash"],
            value_msat=p["amount_msat"],
            status=STATUS[p["status"]],
            fee_msat=p["fee_msat"],
        )
        if p["preimage"]:
            out.payment_preimage = p["preimage"]
        if p["status"] == "failed":
            out.failure_reason = (
                ln.FAILURE_REASON_INCORRECT_PAYMENT_DETAILS
                if p["failure"] == "incorrect_or_unknown_payment_details"
                else ln.FAILURE_REASON_NO_ROUTE
                if p["failure"] == "route_not_found"
                else ln.FAILURE_REASON_ERROR
            )
        return out

    async def SendPaymentV2(self, request, context) -> AsyncIterator[ln.Payment]:  # type: ignore[no-untyped-def]
        r = await self.http.post(
            f"/v1/nodes/{self.node}/pay",
            json={
                "bolt11": request.payment_request,
                "max_fee_msat": request.fee_limit_msat,
                "max_cltv_delay": request.cltv_limit or None,
                "timeout_s": 120,
            },
        )
        p = r.json()
        if r.status_code >= 400:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT
                if p.get("code") != "invoice_expired"
                else grpc.StatusCode.UNKNOWN,
                p["error"],
            )
        yield self._payment(p)

    async def TrackPaymentV2(self, request, context) -> AsyncIterator[ln.Payment]:  # type: ignore[no-untyped-def]
        r = await self.http.get(f"/v1/nodes/{self.node}/payments/{request.payment_hash.hex()}")
        if r.status_code == 404:
            await context.abort(grpc.StatusCode.NOT_FOUND, "payment isn't initiated")
        yield self._payment(r.json())

    async def HtlcInterceptor(
        self, request_iterator, context
    ) -> AsyncIterator[router.ForwardHtlcInterceptRequest]:  # type: ignore[no-untyped-def]
        """As lnd's forwardInterceptor: one stream at a time; every HTLC held (replayed ones
        included) is offered on connect; a response lnd refuses (an unsupported failure code,
        an HTLC it does not hold) ends the stream with an error."""
        if self.interceptor_open:
            await context.abort(grpc.StatusCode.UNKNOWN, "interceptor already exists")
        self.interceptor_open = True
        await self._stop_idle()
        held: dict[tuple[int, int], int] = {}  # circuit key -> the world's HTLC id

        async def apply_responses() -> tuple[grpc.StatusCode, str] | None:
            async for resp in request_iterator:
                key = (resp.incoming_circuit_key.chan_id, resp.incoming_circuit_key.htlc_id)
                if resp.action == router.FAIL and resp.failure_code not in LND_FAIL_CODES:
                    return (
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"unsupported failure code: {ln.Failure.FailureCode.Name(resp.failure_code)}",
                    )
                ref = held.pop(key, None)
                if ref is None:
                    return grpc.StatusCode.UNKNOWN, f"forward does not exist: {key[0]}:{key[1]}"
                self._offered.discard(ref)
                if resp.action == router.SETTLE:
                    body = {"action": "settle", "preimage": resp.preimage.hex()}
                elif resp.action == router.FAIL:
                    body = {"action": "fail", "failure_code": 0x1007}
                else:
                    body = {"action": "forward"}
                await self.http.post(f"/v1/nodes/{self.node}/htlcs/{ref}/resolve", json=body)
            return None

        applier = asyncio.create_task(apply_responses())
        try:
            async with (
                aiohttp.ClientSession(headers=self.headers) as session,
                await self._intercept(session) as ws,
            ):
                while True:
                    recv = asyncio.ensure_future(ws.receive())
                    await asyncio.wait({recv, applier}, return_when=asyncio.FIRST_COMPLETED)
                    if applier.done():
                        recv.cancel()
                        refused = applier.result()
                        if refused is not None:
                            await context.abort(*refused)
                        return
                    msg = recv.result()
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        return
                    h = json.loads(msg.data)
                    if "id" not in h:
                        continue
                    held[(h["incoming_chan_id"], h["incoming_htlc_id"])] = h["id"]
                    self._offered.add(h["id"])
                    yield router.ForwardHtlcInterceptRequest(
                        incoming_circuit_key=router.CircuitKey(
                            chan_id=h["incoming_chan_id"], htlc_id=h["incoming_htlc_id"]
                        ),
                        payment_hash=bytes.fromhex(h["payment_hash"]),
                        outgoing_amount_msat=h["outgoing_amount_msat"],
                        outgoing_expiry=h["outgoing_expiry"],
                        incoming_amount_msat=h["incoming_amount_msat"],
                        incoming_expiry=h["incoming_expiry"],
                        outgoing_requested_chan_id=h["short_channel_id"],
                        auto_fail_height=h["incoming_expiry"] - 2,
                    )
        finally:
            applier.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await applier
            self.interceptor_open = False
            self._start_idle()

    async def _intercept(self, session: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
        """The world's interception websocket of our node. The world takes one at a time and
        sees the previous one (the idle failer, or a stream just ended) closed a moment after we
        closed it, answering 409 meanwhile: asked again for up to 30 s (a loaded machine)."""
        url = self.info["api_url"] + f"/v1/nodes/{self.node}/htlcs/intercept"
        for _ in range(300):
            try:
                return await session.ws_connect(url)
            except aiohttp.WSServerHandshakeError as e:
                if e.status != 409:
                    raise
                await asyncio.sleep(0.1)
        return await session.ws_connect(url)

    # --- requireinterceptor with no interceptor attached --------------------------------------
    def _start_idle(self) -> None:
        if self._idle is None and not self._stopping:
            self._idle = asyncio.create_task(self._fail_new_htlcs(), name="standin-no-interceptor")

    async def _stop_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._idle
            self._idle = None

    async def _fail_new_htlcs(self) -> None:
        """lnd's InterceptableSwitch with requireinterceptor and nobody attached: an HTLC no
        interceptor has seen is failed back at once with TEMPORARY_CHANNEL_FAILURE; one already
        offered to an interceptor (a replay) stays held for the next one."""
        async with (
            aiohttp.ClientSession(headers=self.headers) as session,
            await self._intercept(session) as ws,
        ):
            async for msg in ws:
                h = json.loads(msg.data)
                if "id" not in h or h["id"] in self._offered:
                    continue
                await self.http.post(
                    f"/v1/nodes/{self.node}/htlcs/{h['id']}/resolve",
                    json={"action": "fail", "failure_code": 0x1007},
                )
