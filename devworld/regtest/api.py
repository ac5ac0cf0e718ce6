"""The regtest world's HTTP servers (aiohttp): bitcoind JSON-RPC, and the Lightning API.

Lightning API (JSON, `Authorization: Bearer <api_token>`; documented in docs/regtest-world.md):

    GET  /v1/info                                   height, network, counts
    POST /v1/mine {blocks, address?}                mine blocks (to the world's miner wallet)
    GET  /v1/nodes | POST /v1/nodes {name, alias?, hold_unknown_scids?}
    GET  /v1/nodes/{name}                           node info, balances, channels
    POST /v1/nodes/{name}/fund {amount_sat}         send coins from the miner wallet, confirmed
    POST /v1/channels {from, to, capacity_sat, push_msat?, policy_from?, policy_to?}
    GET  /v1/channels[?node=NAME]
    POST /v1/nodes/{name}/channels/{scid}/policy {base_msat?, ppm?, cltv_delta?, ...}
    POST /v1/nodes/{name}/invoices {amount_msat, description? | description_hash?, expiry?,
                                    preimage?, payment_hash?, route_hints?, min_final_cltv?}
                                   | {bolt11} (adopt: signed by the node, held as a hold invoice)
    GET  /v1/nodes/{name}/invoices[/{hash}]
    POST /v1/nodes/{name}/invoices/{hash}/settle {preimage} | /cancel
    POST /v1/nodes/{name}/pay {bolt11, max_fee_msat?, max_cltv_delay?, amount_msat?, timeout_s?}
    GET  /v1/nodes/{name}/payments/{hash}
    GET  /v1/nodes/{name}/htlcs/intercept           websocket: held HTLCs out, resolutions in
    POST /v1/nodes/{name}/htlcs/{id}/resolve {action: settle|fail|forward, preimage?, failure_code?}
    GET  /v1/nodes/{name}/invoices/subscribe        websocket: invoice updates
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from .chain import Chain
from .errors import LnError, RpcError
from .lightning import Network, Policy, parse_scid
from .payments import Payments
from .rpc import BitcoindRpc

log = logging.getLogger(__name__)
MINER_WALLET = "miner"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_rpc_app(rpc: BitcoindRpc) -> web.Application:
    app = web.Application(client_max_size=4 << 20)
    app.router.add_post("/", rpc.handle)
    app.router.add_post("/wallet/{wallet}", rpc.handle)
    return app


class LightningApi:
    def __init__(self, chain: Chain, net: Network, payments: Payments, token: str) -> None:
        self.chain, self.net, self.payments = chain, net, payments
        self._auth = f"Bearer {token}"

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=1 << 20)
        r = app.router
        r.add_get("/v1/info", self.info)
        r.add_post("/v1/mine", self.mine)
        r.add_get("/v1/nodes", self.list_nodes)
        r.add_post("/v1/nodes", self.create_node)
        r.add_get("/v1/nodes/{name}", self.get_node)
        r.add_post("/v1/nodes/{name}/fund", self.fund_node)
        r.add_post("/v1/nodes/{name}/settings", self.node_settings)
        r.add_get("/v1/channels", self.list_channels)
        r.add_post("/v1/channels", self.open_channel)
        r.add_post("/v1/nodes/{name}/channels/{scid}/policy", self.set_policy)
        r.add_get("/v1/nodes/{name}/invoices/subscribe", self.subscribe_invoices)
        r.add_get("/v1/nodes/{name}/invoices", self.list_invoices)
        r.add_post("/v1/nodes/{name}/invoices", self.create_invoice)
        r.add_get("/v1/nodes/{name}/invoices/{hash}", self.get_invoice)
        r.add_post("/v1/nodes/{name}/invoices/{hash}/settle", self.settle_invoice)
        r.add_post("/v1/nodes/{name}/invoices/{hash}/cancel", self.cancel_invoice)
        r.add_post("/v1/nodes/{name}/pay", self.pay)
        r.add_get("/v1/nodes/{name}/payments/{hash}", self.get_payment)
        r.add_get("/v1/nodes/{name}/htlcs/intercept", self.intercept)
        r.add_get("/v1/nodes/{name}/htlcs", self.list_held)
        r.add_post("/v1/nodes/{name}/htlcs/{id}/resolve", self.resolve_htlc)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not hmac.compare_digest(request.headers.get("Authorization", ""), self._auth):
            return _error(401, "unauthorized", "missing or wrong bearer token")
        try:
            return await handler(request)
        except LnError as exc:
            return _error(exc.status, exc.code, exc.message)
        except RpcError as exc:
            return _error(409 if exc.code == -6 else 400, "chain_error", exc.message)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("lightning api handler failed")
            return _error(500, "internal", "internal error")

    # --- chain --------------------------------------------------------------------------------
    async def info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "network": "regtest",
                "block_height": self.chain.height(),
                "best_block_hash": self.chain.best_hash(),
                "nodes": len(self.net.nodes),
                "channels": len(self.net.channels),
            }
        )

    async def mine(self, request: web.Request) -> web.Response:
        body = await _json(request)
        blocks = _int_field(body, "blocks", 1, minimum=1)
        address = body.get("address") or self.chain.new_address(self._miner())
        hashes = self.chain.mine(blocks, str(address))
        return web.json_response({"block_hashes": hashes, "height": self.chain.height()})

    def _miner(self) -> str:
        if not self.chain.wallet_exists(MINER_WALLET):
            self.chain.create_wallet(MINER_WALLET)
        return MINER_WALLET

    # --- nodes and channels -------------------------------------------------------------------
    def _node_json(self, name: str) -> dict:
        node = self.net.node(name)
        chans = self.net.channels_of(name)
        return {
            **node.info(),
            "onchain_balance_sat": self.chain.balance(node.wallet),
            "lightning_balance_msat": self.net.node_balance_msat(name),
            "inbound_msat": sum(c.balance_of(c.peer_of(name)) for c in chans),
            "channels": [c.info(self.payments.in_flight_msat(c.scid)) for c in chans],
            "block_height": self.chain.height(),
        }

    async def list_nodes(self, request: web.Request) -> web.Response:
        return web.json_response([self._node_json(n) for n in self.net.nodes])

    async def create_node(self, request: web.Request) -> web.Response:
        body = await _json(request)
        node = self.net.create_node(
            str(body.get("name", "")),
            str(body.get("alias", "")),
            hold_unknown_scids=bool(body.get("hold_unknown_scids", False)),
        )
        return web.json_response(self._node_json(node.name), status=201)

    async def get_node(self, request: web.Request) -> web.Response:
        return web.json_response(self._node_json(request.match_info["name"]))

    async def node_settings(self, request: web.Request) -> web.Response:
        body = await _json(request)
        self.net.set_hold_unknown_scids(
            request.match_info["name"], bool(body.get("hold_unknown_scids"))
        )
        return web.json_response(self._node_json(request.match_info["name"]))

    async def fund_node(self, request: web.Request) -> web.Response:
        node = self.net.node(request.match_info["name"])
        body = await _json(request)
        amount = _int_field(body, "amount_sat", None, minimum=1000)
        miner = self._miner()
        if self.chain.balance(miner) < amount + 100_000:  # mine until the miner can pay
            need = -(-(amount + 100_000 - self.chain.balance(miner)) // (50 * 100_000_000))
            self.chain.mine(max(need, 1) + 100, self.chain.new_address(miner))
        txid = self.chain.send(miner, [(self.chain.new_address(node.wallet), amount)])
        self.chain.mine(1, self.chain.new_address(miner))
        return web.json_response({"txid": txid, **self._node_json(node.name)})

    async def list_channels(self, request: web.Request) -> web.Response:
        name = request.query.get("node")
        chans = self.net.channels_of(name) if name else list(self.net.channels.values())
        if name:
            self.net.node(name)
        return web.json_response([c.info(self.payments.in_flight_msat(c.scid)) for c in chans])

    async def open_channel(self, request: web.Request) -> web.Response:
        body = await _json(request)
        ch = self.net.open_channel(
            str(body.get("from", "")),
            str(body.get("to", "")),
            _int_field(body, "capacity_sat", None),
            push_msat=_int_field(body, "push_msat", 0, minimum=0),
            policy_opener=_policy(body.get("policy_from")),
            policy_peer=_policy(body.get("policy_to")),
        )
        return web.json_response(ch.info(), status=201)

    async def set_policy(self, request: web.Request) -> web.Response:
        body = await _json(request)
        try:
            scid = parse_scid(request.match_info["scid"])
        except ValueError:
            raise LnError("invalid_input", "bad short channel id") from None
        ch = self.net.set_policy(request.match_info["name"], scid, **body)
        return web.json_response(ch.info())

    # --- invoices -----------------------------------------------------------------------------
    async def create_invoice(self, request: web.Request) -> web.Response:
        body = await _json(request)
        if "bolt11" in body:  # an invoice built elsewhere, to be signed by the node and held
            if not isinstance(body["bolt11"], str):
                raise LnError("invalid_input", "bolt11 must be a string")
            adopted = self.net.adopt_invoice(request.match_info["name"], body["bolt11"])
            self.payments.publish_new_invoice(self.payments.remember(adopted))
            return web.json_response(adopted, status=201)
        preimage = body.get("preimage")
        try:
            raw = bytes.fromhex(preimage) if preimage is not None else None
        except (ValueError, TypeError):
            raise LnError("invalid_input", "preimage must be hex") from None
        amount = body.get("amount_msat")
        if amount is not None and (not isinstance(amount, int) or isinstance(amount, bool)):
            raise LnError("invalid_input", "amount_msat must be an integer")
        inv = self.net.create_invoice(
            request.match_info["name"],
            amount,
            description=str(body.get("description", "")),
            expiry_s=_int_field(body, "expiry", 3600, minimum=1),
            preimage=raw,
            payment_hash=body.get("payment_hash"),
            route_hints=body.get("route_hints"),
            min_final_cltv=_int_field(body, "min_final_cltv", 18, minimum=1),
            description_hash=body.get("description_hash"),
        )
        self.payments.publish_new_invoice(self.payments.remember(inv))
        return web.json_response(inv, status=201)

    async def list_invoices(self, request: web.Request) -> web.Response:
        return web.json_response(self.net.invoices_of(request.match_info["name"]))

    async def get_invoice(self, request: web.Request) -> web.Response:
        return web.json_response(
            self.net.invoice(request.match_info["name"], request.match_info["hash"])
        )

    async def settle_invoice(self, request: web.Request) -> web.Response:
        body = await _json(request)
        self.payments.settle_hold(
            request.match_info["name"], request.match_info["hash"], body.get("preimage")
        )
        await asyncio.sleep(0.01)
        return web.json_response(
            self.net.invoice(request.match_info["name"], request.match_info["hash"])
        )

    async def cancel_invoice(self, request: web.Request) -> web.Response:
        return web.json_response(
            self.payments.cancel_invoice(request.match_info["name"], request.match_info["hash"])
        )

    async def subscribe_invoices(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        queue = self.payments.watch_invoices(name)
        ws = web.WebSocketResponse(heartbeat=20)
        try:  # a client gone during the handshake leaves no watcher behind
            await ws.prepare(request)
            await _pump(ws, queue)
        finally:
            self.payments.unwatch_invoices(name, queue)
        return ws

    # --- payments and interception ------------------------------------------------------------
    async def pay(self, request: web.Request) -> web.Response:
        body = await _json(request)
        bolt11 = body.get("bolt11")
        if not isinstance(bolt11, str) or not bolt11:
            raise LnError("invalid_input", "bolt11 is required")
        timeout = body.get("timeout_s", 60)
        if not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
            raise LnError("invalid_input", "timeout_s must be in (0, 3600]")
        result = await self.payments.pay(
            request.match_info["name"],
            bolt11,
            max_fee_msat=body.get("max_fee_msat"),
            max_cltv_delay=body.get("max_cltv_delay"),
            amount_msat=body.get("amount_msat"),
            timeout_s=float(timeout),
        )
        return web.json_response(result, status=202 if result["status"] == "pending" else 200)

    async def get_payment(self, request: web.Request) -> web.Response:
        return web.json_response(
            self.payments.payment(request.match_info["name"], request.match_info["hash"])
        )

    async def list_held(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.net.node(name)
        return web.json_response([h.info() for h in self.payments.held.get(name, {}).values()])

    async def resolve_htlc(self, request: web.Request) -> web.Response:
        body = await _json(request)
        try:
            htlc_id = int(request.match_info["id"])
        except ValueError:
            raise LnError("invalid_input", "htlc id must be an integer") from None
        return web.json_response(self._resolve(request.match_info["name"], htlc_id, body))

    def _resolve(self, name: str, htlc_id: int, body: dict) -> dict:
        return self.payments.resolve_htlc(
            name,
            htlc_id,
            str(body.get("action", "")),
            preimage=body.get("preimage"),
            failure_code=body.get("failure_code"),
        )

    async def intercept(self, request: web.Request) -> web.StreamResponse:
        """Websocket: the server sends each held HTLC as JSON; the client answers
        {"id", "action", "preimage"?, "failure_code"?} and gets {"ack": id, "ok", "error"?}."""
        name = request.match_info["name"]
        queue = self.payments.subscribe_htlcs(name)  # 409 while another interceptor holds it
        ws = web.WebSocketResponse(heartbeat=20)

        async def on_message(data: Any) -> None:
            try:
                if not isinstance(data, dict) or not isinstance(data.get("id"), int):
                    raise LnError("invalid_input", "resolution needs an integer id")
                self._resolve(name, data["id"], data)
                await ws.send_json({"ack": data["id"], "ok": True})
            except LnError as exc:
                await ws.send_json(
                    {
                        "ack": data.get("id") if isinstance(data, dict) else None,
                        "ok": False,
                        "error": exc.message,
                    }
                )

        try:  # a client gone during the handshake must not keep the node's interceptor slot
            await ws.prepare(request)
            await _pump(ws, queue, on_message)
        finally:
            self.payments.unsubscribe_htlcs(name, queue)
        return ws


async def _pump(ws: web.WebSocketResponse, queue: asyncio.Queue[dict], on_message=None) -> None:  # type: ignore[no-untyped-def]
    async def sender() -> None:
        while True:
            await ws.send_json(await queue.get())

    task = asyncio.create_task(sender())
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and on_message is not None:
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    await ws.send_json({"ok": False, "error": "invalid JSON"})
                    continue
                await on_message(data)
            elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": message, "code": code}, status=status)


async def _json(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise LnError("invalid_input", "body must be JSON") from None
    if not isinstance(body, dict):
        raise LnError("invalid_input", "body must be a JSON object")
    return body


def _int_field(body: dict, name: str, default: int | None, *, minimum: int | None = None) -> int:
    value = body.get(name, default)
    if value is None:
        raise LnError("invalid_input", f"{name} is required")
    if not isinstance(value, int) or isinstance(value, bool):
        raise LnError("invalid_input", f"{name} must be an integer")
    if minimum is not None and value < minimum:
        raise LnError("invalid_input", f"{name} must be at least {minimum}")
    return value


def _policy(data: Any) -> Policy | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise LnError("invalid_input", "policy must be an object")
    try:
        pol = Policy(**data)
    except TypeError as exc:
        raise LnError("invalid_input", f"bad policy: {exc}") from None
    for k in ("base_msat", "ppm", "cltv_delta", "htlc_min_msat", "htlc_max_msat"):
        v = getattr(pol, k)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise LnError("invalid_input", f"policy {k} must be a non-negative integer")
    return pol
