"""A bitcoind-compatible JSON-RPC endpoint over the simulated chain.

Same method names, parameter orders, JSON shapes, error codes and HTTP conventions as bitcoind:
POST to `/` or `/wallet/<name>`, HTTP basic auth, JSON-RPC 1.0 (errors with HTTP 500, 404 for an
unknown method) or 2.0 (HTTP 200), batches as JSON arrays. Amounts are BTC numbers on the wire and
integer satoshis inside; an amount with more than 8 decimals is refused.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from gwcore import bitcoin_address

from . import bitcoin as btc
from .chain import Chain
from .errors import (
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_INVALID_PARAMS,
    RPC_INVALID_REQUEST,
    RPC_METHOD_NOT_FOUND,
    RPC_MISC_ERROR,
    RPC_PARSE_ERROR,
    RPC_WALLET_NOT_FOUND,
    RPC_WALLET_NOT_SPECIFIED,
    RpcError,
)
from .rpc_values import rpc_int, sat_to_btc
from .rpc_wallet import WalletRpc

log = logging.getLogger(__name__)


class BitcoindRpc(WalletRpc):
    """Dispatches bitcoind JSON-RPC calls to the chain."""

    def __init__(self, chain: Chain, user: str, password: str) -> None:
        self.chain = chain
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._auth = f"Basic {token}"
        w = True
        # name -> (function, parameter names, needs a wallet)
        self.methods: dict[str, tuple[Callable[..., Any], list[str], bool]] = {
            "getblockchaininfo": (self.getblockchaininfo, [], False),
            "getblockcount": (lambda: chain.height(), [], False),
            "getbestblockhash": (lambda: chain.best_hash(), [], False),
            "getrawmempool": (self.getrawmempool, ["verbose"], False),
            "getblockhash": (self.getblockhash, ["height"], False),
            "getblock": (self.getblock, ["blockhash", "verbosity"], False),
            "getrawtransaction": (self.getrawtransaction, ["txid", "verbose", "blockhash"], False),
            "estimatesmartfee": (self.estimatesmartfee, ["conf_target", "estimate_mode"], False),
            "createwallet": (self.createwallet, ["wallet_name"], False),
            "loadwallet": (self.loadwallet, ["filename"], False),
            "listwallets": (lambda: chain.wallets(), [], False),
            "generatetoaddress": (
                self.generatetoaddress,
                ["nblocks", "address", "maxtries"],
                False,
            ),
            "getnewaddress": (self.getnewaddress, ["label", "address_type"], w),
            "getbalance": (
                self.getbalance,
                ["dummy", "minconf", "include_watchonly", "avoid_reuse"],
                w,
            ),
            "getbalances": (self.getbalances, [], w),
            "sendtoaddress": (
                self.sendtoaddress,
                [
                    "address",
                    "amount",
                    "comment",
                    "comment_to",
                    "subtractfeefromamount",
                    "replaceable",
                    "conf_target",
                    "estimate_mode",
                    "avoid_reuse",
                    "fee_rate",
                ],
                w,
            ),
            "gettransaction": (self.gettransaction, ["txid", "include_watchonly", "verbose"], w),
            "listunspent": (
                self.listunspent,
                ["minconf", "maxconf", "addresses", "include_unsafe"],
                w,
            ),
            "listtransactions": (
                self.listtransactions,
                ["label", "count", "skip", "include_watchonly"],
                w,
            ),
            "getreceivedbyaddress": (self.getreceivedbyaddress, ["address", "minconf"], w),
        }

    # --- HTTP ---------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.Response:
        if not hmac.compare_digest(request.headers.get("Authorization", ""), self._auth):
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="jsonrpc"'})
        wallet = unquote(request.match_info["wallet"]) if "wallet" in request.match_info else None
        try:
            body = json.loads(await request.text(), parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            return self._respond(
                {
                    "result": None,
                    "error": {"code": RPC_PARSE_ERROR, "message": "Parse error"},
                    "id": None,
                },
                500,
            )
        if isinstance(body, list):
            return self._respond([self._one(item, wallet)[0] for item in body], 200)
        reply, status = self._one(body, wallet)
        return self._respond(reply, status)

    @staticmethod
    def _respond(payload: Any, status: int) -> web.Response:
        return web.Response(
            text=json.dumps(payload), status=status, content_type="application/json"
        )

    def _one(self, req: Any, wallet: str | None) -> tuple[dict, int]:
        if not isinstance(req, dict):
            return {
                "result": None,
                "error": {"code": RPC_INVALID_REQUEST, "message": "Invalid Request object"},
                "id": None,
            }, 500
        v2 = req.get("jsonrpc") == "2.0"
        rid = req.get("id")
        try:
            result = self.call(req.get("method"), req.get("params"), wallet)
        except RpcError as exc:
            err = {"code": exc.code, "message": exc.message}
            status = 200 if v2 else (404 if exc.code == RPC_METHOD_NOT_FOUND else 500)
            return (
                {"jsonrpc": "2.0", "error": err, "id": rid}
                if v2
                else {"result": None, "error": err, "id": rid}
            ), status
        except Exception as exc:  # a bug: report it as bitcoind would a misc error
            log.exception("rpc method failed")
            err = {"code": RPC_MISC_ERROR, "message": str(exc)}
            return {"result": None, "error": err, "id": rid}, 200 if v2 else 500
        return (
            {"jsonrpc": "2.0", "result": result, "id": rid}
            if v2
            else {"result": result, "error": None, "id": rid}
        ), 200

    def call(self, method: Any, params: Any, wallet: str | None) -> Any:
        if not isinstance(method, str):
            raise RpcError(RPC_INVALID_REQUEST, "Method must be a string")
        entry = self.methods.get(method)
        if entry is None:
            raise RpcError(RPC_METHOD_NOT_FOUND, "Method not found")
        func, names, needs_wallet = entry
        if params is None:
            params = []
        if isinstance(params, dict):
            unknown = set(params) - set(names)
            if unknown:
                raise RpcError(
                    RPC_INVALID_PARAMETER, f"Unknown named parameter {sorted(unknown)[0]}"
                )
            kwargs = dict(params)
        elif isinstance(params, list):
            if len(params) > len(names):
                raise RpcError(RPC_MISC_ERROR, f"{method}: too many parameters")
            kwargs = dict(zip(names, params, strict=False))
        else:
            raise RpcError(RPC_INVALID_PARAMS, "Params must be an array or object")
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        if needs_wallet:
            kwargs["wallet"] = self._wallet(wallet)
        try:
            return func(**kwargs)
        except TypeError as exc:
            raise RpcError(
                RPC_MISC_ERROR, f"{method}: missing or wrong parameters ({exc})"
            ) from None

    def _wallet(self, name: str | None) -> str:
        if name is not None:
            self.chain.require_wallet(name)
            return name
        wallets = self.chain.wallets()
        if len(wallets) == 1:
            return wallets[0]
        if not wallets:
            raise RpcError(
                RPC_WALLET_NOT_FOUND,
                "No wallet is loaded. Load a wallet using loadwallet or create a new one with createwallet."
                " (Note: A default wallet is no longer automatically created)",
            )
        raise RpcError(
            RPC_WALLET_NOT_SPECIFIED,
            "Wallet file not specified (must request wallet RPC through /wallet/<filename> uri-path).",
        )

    # --- chain methods ------------------------------------------------------------------------
    def getblockchaininfo(self) -> dict:
        h = self.chain.height()
        blk = self.chain.block(self.chain.best_hash())
        return {
            "chain": "regtest",
            "blocks": h,
            "headers": h,
            "bestblockhash": blk["hash"],
            "difficulty": 4.656542373906925e-10,
            "time": blk["time"],
            "mediantime": blk["time"],
            "verificationprogress": 1,
            "initialblockdownload": False,
            "chainwork": f"{(h + 1) * 2:064x}",
            "size_on_disk": 0,
            "pruned": False,
            "warnings": "",
        }

    def getrawmempool(self, verbose: bool = False) -> list[str]:
        if verbose:
            raise RpcError(RPC_INVALID_PARAMS, "getrawmempool: only the txid list (verbose false)")
        return self.chain.mempool()

    def getblockhash(self, height: Any) -> str:
        return self.chain.block_hash(rpc_int(height, "height"))

    def getblock(self, blockhash: str, verbosity: Any = 1) -> Any:
        blk = self.chain.block(str(blockhash))
        if verbosity == 0:
            row = self.chain.db.one("SELECT header FROM blocks WHERE hash = ?", blk["hash"])
            return bytes(row["header"]).hex()
        return {
            "hash": blk["hash"],
            "confirmations": self.chain.confirmations(blk["height"]),
            "height": blk["height"],
            "version": 0x20000000,
            "time": blk["time"],
            "mediantime": blk["time"],
            "nTx": len(blk["tx"]),
            "previousblockhash": blk["prev"] or None,
            "tx": blk["tx"] if verbosity == 1 else [self._rawtx_json(t) for t in blk["tx"]],
        }

    def getrawtransaction(
        self, txid: str, verbose: Any = False, blockhash: str | None = None
    ) -> Any:
        t = self.chain.tx(str(txid))
        if t is None:
            raise RpcError(
                RPC_INVALID_ADDRESS_OR_KEY,
                "No such mempool or blockchain transaction. Use gettransaction for wallet transactions.",
            )
        if not verbose:
            return bytes(t["raw"]).hex()
        return self._rawtx_json(t["txid"])

    def _rawtx_json(self, txid: str) -> dict:
        t = self.chain.tx(txid)
        assert t is not None
        raw = bytes(t["raw"])
        vin: list[dict] = []
        if t["coinbase"]:
            vin.append(
                {
                    "coinbase": btc.coinbase_input(
                        t["height"] or 0, b"fmgw-regtest"
                    ).script_sig.hex(),
                    "sequence": 0xFFFFFFFF,
                }
            )
        for i in self.chain.txins(txid):
            vin.append(
                {
                    "txid": i["prev_txid"],
                    "vout": i["prev_n"],
                    "scriptSig": {"asm": "", "hex": ""},
                    "sequence": 0xFFFFFFFD,
                }
            )
        vout = []
        for o in self.chain.txouts(txid):
            script = bytes(o["script"])
            spk = {
                "asm": bitcoin_address.script_asm(script),
                "hex": script.hex(),
                "type": bitcoin_address.script_type(script),
            }
            if o["address"]:
                spk["address"] = o["address"]
            vout.append({"value": sat_to_btc(o["amount_sat"]), "n": o["n"], "scriptPubKey": spk})
        out = {
            "txid": txid,
            "hash": txid,
            "version": 2,
            "size": len(raw),
            "vsize": len(raw),
            "weight": 4 * len(raw),
            "locktime": 0,
            "vin": vin,
            "vout": vout,
            "hex": raw.hex(),
        }
        if t["height"] is not None:
            blk_hash = self.chain.block_hash(t["height"])
            blk = self.chain.block(blk_hash)
            out.update(
                blockhash=blk_hash,
                confirmations=self.chain.confirmations(t["height"]),
                time=blk["time"],
                blocktime=blk["time"],
            )
        return out

    def estimatesmartfee(self, conf_target: Any, estimate_mode: str = "conservative") -> dict:
        target = rpc_int(conf_target, "conf_target")
        if not 1 <= target <= 1008:
            raise RpcError(RPC_INVALID_PARAMETER, "Invalid conf_target, must be between 1 and 1008")
        return {"feerate": sat_to_btc(self.chain.fee_rate_btc_kvb()), "blocks": max(target, 2)}
