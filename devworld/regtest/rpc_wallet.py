"""bitcoind's wallet RPCs over the simulated chain (mixed into `BitcoindRpc`): wallets,
addresses, balances, sends, transactions and coins."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .chain import Chain
from .errors import (
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_TYPE_ERROR,
    RPC_WALLET_ALREADY_LOADED,
    RPC_WALLET_NOT_FOUND,
    RpcError,
)
from .rpc_values import btc_to_sat, rpc_int, sat_to_btc


class WalletRpc:
    chain: Chain

    def createwallet(self, wallet_name: str) -> dict:
        self.chain.create_wallet(str(wallet_name))
        return {"name": wallet_name, "warning": ""}

    def loadwallet(self, filename: str) -> dict:
        if not self.chain.wallet_exists(str(filename)):
            raise RpcError(
                RPC_WALLET_NOT_FOUND,
                f"Wallet file verification failed. Failed to load database path '{filename}'. Path does not exist.",
            )
        raise RpcError(
            RPC_WALLET_ALREADY_LOADED,
            f"Wallet file verification failed. Data file '{filename}' is already loaded.",
        )

    def generatetoaddress(self, nblocks: Any, address: str, maxtries: Any = None) -> list[str]:
        return self.chain.mine(rpc_int(nblocks, "nblocks"), str(address))

    # --- wallet methods -----------------------------------------------------------------------
    def getnewaddress(self, wallet: str, label: str = "", address_type: str = "bech32") -> str:
        return self.chain.new_address(wallet, str(label), address_type=str(address_type))

    def getbalance(
        self,
        wallet: str,
        dummy: Any = "*",
        minconf: Any = 0,
        include_watchonly: Any = None,
        avoid_reuse: Any = None,
    ) -> float:
        if dummy != "*":
            raise RpcError(
                RPC_INVALID_PARAMETER, 'dummy first argument must be excluded or set to "*".'
            )
        return sat_to_btc(self.chain.balance(wallet, rpc_int(minconf, "minconf")))

    def getbalances(self, wallet: str) -> dict:
        mine = {
            "trusted": sat_to_btc(self.chain.balance(wallet)),
            "untrusted_pending": sat_to_btc(self.chain.untrusted_pending(wallet)),
            "immature": sat_to_btc(self.chain.immature_balance(wallet)),
        }
        return {"mine": mine}

    def sendtoaddress(
        self,
        wallet: str,
        address: str,
        amount: Any,
        comment: str = "",
        comment_to: str = "",
        subtractfeefromamount: bool = False,
        replaceable: Any = None,
        conf_target: Any = None,
        estimate_mode: Any = None,
        avoid_reuse: Any = None,
        fee_rate: Any = None,
    ) -> str:
        sats = btc_to_sat(amount)
        if sats <= 0:
            raise RpcError(RPC_TYPE_ERROR, "Invalid amount for send")
        rate = None
        if fee_rate is not None:
            rate = int(Decimal(str(fee_rate)).to_integral_value(rounding="ROUND_CEILING"))
            if rate <= 0:
                raise RpcError(RPC_INVALID_PARAMETER, "Invalid fee_rate")
        return self.chain.send(
            wallet,
            [(str(address), sats)],
            subtract_fee=bool(subtractfeefromamount),
            fee_rate_sat_vb=rate,
        )

    def gettransaction(
        self, wallet: str, txid: str, include_watchonly: Any = None, verbose: Any = False
    ) -> dict:
        t = self.chain.tx(str(txid))
        entries = self.chain.wallet_entries(wallet, str(txid)) if t else []
        if t is None or (not entries and t["from_wallet"] != wallet):
            raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "Invalid or non-wallet transaction id")
        amount = sum(
            e["amount"]
            for e in entries
            if e["category"] in ("send", "receive", "generate", "immature")
        )
        out: dict = {
            "amount": sat_to_btc(amount),
            "confirmations": self.chain.confirmations(t["height"]),
            "txid": t["txid"],
            "time": t["time"],
            "timereceived": t["time"],
            "details": [self._entry_json(e) for e in entries],
            "hex": bytes(t["raw"]).hex(),
        }
        if t["from_wallet"] == wallet:
            out["fee"] = sat_to_btc(-t["fee_sat"])
        if t["coinbase"]:
            out["generated"] = True
        if t["height"] is not None:
            blk = self.chain.block(self.chain.block_hash(t["height"]))
            out.update(
                blockhash=blk["hash"],
                blockheight=t["height"],
                blockindex=t["pos"],
                blocktime=blk["time"],
            )
        return out

    @staticmethod
    def _entry_json(e: dict) -> dict:
        out = {
            "address": e["address"],
            "category": e["category"],
            "amount": sat_to_btc(e["amount"]),
            "vout": e["vout"],
        }
        if e.get("label"):
            out["label"] = e["label"]
        if "fee" in e:
            out["fee"] = sat_to_btc(e["fee"])
        return out

    def listunspent(
        self,
        wallet: str,
        minconf: Any = 1,
        maxconf: Any = 9_999_999,
        addresses: Any = None,
        include_unsafe: Any = True,
    ) -> list[dict]:
        """As bitcoind: `include_unsafe` (default true) also lists unconfirmed outputs paid by
        others, with "safe": false."""
        if not isinstance(include_unsafe, bool):
            raise RpcError(RPC_TYPE_ERROR, "JSON value is not a boolean as expected")
        coins = self.chain.unspent(
            wallet,
            rpc_int(minconf, "minconf"),
            rpc_int(maxconf, "maxconf"),
            list(addresses or []),
            include_unsafe,
        )
        return [
            {
                "txid": c["txid"],
                "vout": c["n"],
                "address": c["address"],
                "label": c["label"],
                "scriptPubKey": bytes(c["script"]).hex(),
                "amount": sat_to_btc(c["amount_sat"]),
                "confirmations": c["confirmations"],
                "spendable": True,
                "solvable": True,
                "safe": c["safe"],
            }
            for c in coins
        ]

    def listtransactions(
        self,
        wallet: str,
        label: str = "*",
        count: Any = 10,
        skip: Any = 0,
        include_watchonly: Any = None,
    ) -> list[dict]:
        count, skip = rpc_int(count, "count"), rpc_int(skip, "skip")
        if count < 0 or skip < 0:
            raise RpcError(
                RPC_INVALID_PARAMETER, "Negative count" if count < 0 else "Negative from"
            )
        rows = []
        for txid in self.chain.wallet_txids(wallet):
            t = self.chain.tx(txid)
            assert t is not None
            for e in self.chain.wallet_entries(wallet, txid):
                if label != "*" and e.get("label", "") != label:
                    continue
                item = self._entry_json(e)
                item.update(
                    confirmations=self.chain.confirmations(t["height"]),
                    txid=txid,
                    time=t["time"],
                    timereceived=t["time"],
                )
                if t["height"] is not None:
                    item.update(
                        blockhash=self.chain.block_hash(t["height"]),
                        blockheight=t["height"],
                        blockindex=t["pos"],
                    )
                rows.append(item)
        end = len(rows) - skip
        return rows[max(0, end - count) : max(0, end)]

    def getreceivedbyaddress(self, wallet: str, address: str, minconf: Any = 1) -> float:
        owner = self.chain.wallet_of(str(address))
        if owner is not None and owner != wallet:
            raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "Address not found in wallet")
        return sat_to_btc(self.chain.received_by_address(str(address), rpc_int(minconf, "minconf")))
