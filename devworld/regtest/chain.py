"""The simulated chain and its wallets: blocks, a mempool, UTXOs, coinbase maturity, fees.

Owns the chain tables of the world database. Amounts are integer satoshis here; BTC decimals
exist only at the JSON-RPC edge (rpc.py). Every change (mining a block, a send) is one SQLite
transaction. Listeners registered with `on_block` are told the new height after each block.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from gwcore import bitcoin_address

from . import bitcoin as btc
from .errors import (
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_TYPE_ERROR,
    RPC_WALLET_ERROR,
    RPC_WALLET_INSUFFICIENT_FUNDS,
    RPC_WALLET_NOT_FOUND,
    RpcError,
)
from .store import WorldDB

log = logging.getLogger(__name__)


class Chain:
    """Blocks, transactions and wallets of the simulated regtest chain."""

    def __init__(self, db: WorldDB, *, fee_rate_sat_vb: int = 2) -> None:
        self.db = db
        self.fee_rate_sat_vb = fee_rate_sat_vb
        self.listeners: list[Callable[[int], None]] = []
        if self.db.one("SELECT 1 FROM blocks WHERE height = 0") is None:
            with self.db.tx():
                self._make_block([], "", int(time.time()))

    # --- blocks -------------------------------------------------------------------------------
    def height(self) -> int:
        return int(self.db.one("SELECT MAX(height) AS h FROM blocks")["h"])

    def mempool(self) -> list[str]:
        """The txids of the transactions not yet in a block (bitcoind's getrawmempool)."""
        return [r["txid"] for r in self.db.all("SELECT txid FROM txs WHERE height IS NULL")]

    def best_hash(self) -> str:
        return self.block_hash(self.height())

    def block_hash(self, height: int) -> str:
        row = self.db.one("SELECT hash FROM blocks WHERE height = ?", height)
        if row is None:
            raise RpcError(RPC_INVALID_PARAMETER, "Block height out of range")
        return row["hash"]

    def block(self, block_hash: str) -> dict:
        row = self.db.one("SELECT * FROM blocks WHERE hash = ?", block_hash)
        if row is None:
            raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
        txids = [
            r["txid"]
            for r in self.db.all(
                "SELECT txid FROM txs WHERE height = ? ORDER BY pos", row["height"]
            )
        ]
        return {
            "height": row["height"],
            "hash": row["hash"],
            "prev": row["prev"],
            "time": row["time"],
            "tx": txids,
        }

    def confirmations(self, height: int | None) -> int:
        return 0 if height is None else self.height() - height + 1

    def on_block(self, listener: Callable[[int], None]) -> None:
        self.listeners.append(listener)

    def mine(self, n: int, address: str) -> list[str]:
        """Mine `n` blocks paying their coinbase to `address`; the first takes the mempool."""
        if not 0 < n <= 10_000:
            raise RpcError(RPC_INVALID_PARAMETER, "nblocks must be between 1 and 10000")
        parsed = self._address(address)
        address, script = parsed.text, parsed.script
        hashes = []
        for _ in range(n):
            with self.db.tx():
                hashes.append(self._mine_one(address, script))
            for listener in list(self.listeners):
                listener(self.height())
        return hashes

    def _mine_one(self, address: str, script: bytes) -> str:
        height = self.height() + 1
        mempool = self.db.all(
            "SELECT txid, fee_sat FROM txs WHERE height IS NULL ORDER BY time, txid"
        )
        fees = sum(r["fee_sat"] for r in mempool)
        coinbase = btc.serialize_tx(
            [btc.coinbase_input(height, b"fmgw-regtest")],
            [btc.TxOut(btc.block_subsidy(height) + fees, script)],
        )
        cb_txid = btc.txid_of(coinbase)
        self._insert_tx(
            cb_txid,
            coinbase,
            [],
            [(address, script, btc.block_subsidy(height) + fees)],
            0,
            True,
            None,
        )
        txids = [cb_txid] + [r["txid"] for r in mempool]
        return self._make_block(
            txids, self.best_hash(), max(int(time.time()), self._last_time() + 1)
        )

    def _last_time(self) -> int:
        row = self.db.one("SELECT time FROM blocks ORDER BY height DESC LIMIT 1")
        return row["time"] if row else 0

    def _make_block(self, txids: list[str], prev: str, when: int) -> str:
        row = self.db.one("SELECT MAX(height) AS h FROM blocks")
        height = 0 if row["h"] is None else row["h"] + 1
        header = btc.block_header(prev, txids, when, height)
        bhash = btc.block_hash(header)
        self.db.conn.execute(
            "INSERT INTO blocks (height, hash, prev, time, header) VALUES (?, ?, ?, ?, ?)",
            (height, bhash, prev, when, header),
        )
        for pos, txid in enumerate(txids):
            self.db.conn.execute(
                "UPDATE txs SET height = ?, pos = ? WHERE txid = ?", (height, pos, txid)
            )
        return bhash

    # --- wallets ------------------------------------------------------------------------------
    def wallet_exists(self, name: str) -> bool:
        return self.db.one("SELECT 1 FROM wallets WHERE name = ?", name) is not None

    def create_wallet(self, name: str) -> None:
        if not name or len(name) > 64 or "/" in name:
            raise RpcError(RPC_INVALID_PARAMETER, f"Invalid wallet name {name!r}")
        if self.wallet_exists(name):
            raise RpcError(
                RPC_WALLET_ERROR,
                f"Wallet file verification failed. Failed to create database path '{name}'. Database already exists.",
            )
        with self.db.tx() as c:
            c.execute("INSERT INTO wallets (name, created) VALUES (?, ?)", (name, int(time.time())))

    def wallets(self) -> list[str]:
        return [r["name"] for r in self.db.all("SELECT name FROM wallets ORDER BY created, name")]

    def require_wallet(self, name: str) -> None:
        if not self.wallet_exists(name):
            raise RpcError(RPC_WALLET_NOT_FOUND, "Requested wallet does not exist or is not loaded")

    def new_address(
        self, wallet: str, label: str = "", *, change: bool = False, address_type: str = "bech32"
    ) -> str:
        """A new address of `wallet`, of one of bitcoind's address types: bech32 (P2WPKH),
        legacy (P2PKH), p2sh-segwit (P2SH-P2WPKH), bech32m (P2TR, BIP 86 key-path only)."""
        self.require_wallet(wallet)
        key = btc.new_key()
        pub = key.public_key.format()
        if address_type == "bech32":
            address = bitcoin_address.p2wpkh(pub)
        elif address_type == "legacy":
            address = bitcoin_address.p2pkh(pub)
        elif address_type == "p2sh-segwit":
            address = bitcoin_address.p2sh_p2wpkh(pub)
        elif address_type == "bech32m":
            address = bitcoin_address.p2tr(btc.bip86_output_key(key))
        else:
            raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, f"Unknown address type '{address_type}'")
        with self.db.tx() as c:
            c.execute(
                "INSERT INTO addresses (address, wallet, privkey, label, change, created) VALUES (?, ?, ?, ?, ?, ?)",
                (address, wallet, key.secret.hex(), label, int(change), int(time.time())),
            )
        return address

    def wallet_of(self, address: str) -> str | None:
        try:
            address = bitcoin_address.parse_address(address, "regtest").text
        except bitcoin_address.AddressError:
            return None
        row = self.db.one("SELECT wallet FROM addresses WHERE address = ?", address)
        return row["wallet"] if row else None

    def _script(self, address: str) -> bytes:
        return self._address(address).script

    def _address(self, address: str) -> bitcoin_address.Address:
        """The parsed address; bitcoind's error for one it cannot pay (the reason in the log)."""
        try:
            return bitcoin_address.parse_address(address, "regtest")
        except bitcoin_address.AddressError as exc:
            log.info("refused address %r: %s", address, exc)
            raise RpcError(
                RPC_INVALID_ADDRESS_OR_KEY, f"Invalid Bitcoin address: {address}"
            ) from None

    # --- coins --------------------------------------------------------------------------------
    def _coins(
        self, wallet: str, minconf: int = 0, maxconf: int = 9_999_999, unsafe: bool = False
    ) -> list[dict]:
        """Unspent outputs of `wallet` that it may spend or count (trusted, mature); with
        `unsafe`, also unconfirmed ones paid by others (listed, never spent), as bitcoind's
        listunspent `include_unsafe`. Each has `safe`."""
        tip = self.height()
        rows = self.db.all(
            "SELECT o.txid, o.n, o.address, o.script, o.amount_sat, t.height, t.coinbase, t.from_wallet, a.label"
            " FROM txouts o JOIN addresses a ON a.address = o.address JOIN txs t ON t.txid = o.txid"
            " WHERE a.wallet = ? AND o.spent_by IS NULL ORDER BY t.height, o.txid, o.n",
            wallet,
        )
        out = []
        for r in rows:
            confs = 0 if r["height"] is None else tip - r["height"] + 1
            if r["coinbase"] and confs <= btc.COINBASE_MATURITY:
                continue
            trusted = confs >= 1 or r["from_wallet"] == wallet
            if (not trusted and not unsafe) or confs < minconf or confs > maxconf:
                continue
            out.append({**dict(r), "confirmations": confs, "safe": trusted})
        return out

    def balance(self, wallet: str, minconf: int = 0) -> int:
        self.require_wallet(wallet)
        return sum(c["amount_sat"] for c in self._coins(wallet, minconf))

    def immature_balance(self, wallet: str) -> int:
        tip = self.height()
        row = self.db.one(
            "SELECT COALESCE(SUM(o.amount_sat), 0) AS s FROM txouts o JOIN addresses a ON a.address = o.address"
            " JOIN txs t ON t.txid = o.txid WHERE a.wallet = ? AND o.spent_by IS NULL AND t.coinbase = 1"
            " AND ? - t.height + 1 <= ?",
            wallet,
            tip,
            btc.COINBASE_MATURITY,
        )
        return int(row["s"])

    def untrusted_pending(self, wallet: str) -> int:
        """Unconfirmed incoming coins from others (bitcoind's `untrusted_pending`)."""
        row = self.db.one(
            "SELECT COALESCE(SUM(o.amount_sat), 0) AS s FROM txouts o JOIN addresses a ON a.address = o.address"
            " JOIN txs t ON t.txid = o.txid WHERE a.wallet = ? AND o.spent_by IS NULL AND t.height IS NULL"
            " AND COALESCE(t.from_wallet, '') != ?",
            wallet,
            wallet,
        )
        return int(row["s"])

    def unspent(
        self,
        wallet: str,
        minconf: int = 1,
        maxconf: int = 9_999_999,
        addresses: list[str] | None = None,
        include_unsafe: bool = True,
    ) -> list[dict]:
        self.require_wallet(wallet)
        coins = self._coins(wallet, minconf, maxconf, unsafe=include_unsafe)
        if addresses:
            wanted = {self._address(a).text for a in addresses}
            coins = [c for c in coins if c["address"] in wanted]
        return coins

    def send(
        self,
        wallet: str,
        outputs: list[tuple[str, int]] | list[tuple[bytes, int]],
        *,
        subtract_fee: bool = False,
        fee_rate_sat_vb: int | None = None,
    ) -> str:
        """Pay `outputs` ([(address or raw script, sats)]) from `wallet`; return the txid."""
        self.require_wallet(wallet)
        targets: list[tuple[str | None, bytes, int]] = []
        dust: list[int] = []
        for dest, amount in outputs:
            if not isinstance(amount, int) or amount <= 0:
                raise RpcError(RPC_TYPE_ERROR, "Invalid amount")
            if isinstance(dest, bytes):
                targets.append((bitcoin_address.address_from_script(dest), dest, amount))
                dust.append(bitcoin_address.DUST_SAT["p2wsh"])
            else:
                parsed = self._address(dest)
                targets.append((parsed.text, parsed.script, amount))
                dust.append(parsed.dust_sat)
            if amount < dust[-1] and not subtract_fee:  # bitcoind: CreateTransaction's error
                raise RpcError(RPC_WALLET_INSUFFICIENT_FUNDS, "Transaction amount too small")
        rate = fee_rate_sat_vb or self.fee_rate_sat_vb
        want = sum(t[2] for t in targets)
        coins = sorted(self._coins(wallet), key=lambda c: -c["amount_sat"])
        chosen: list[dict] = []
        total = 0
        fee = 0
        for coin in coins:
            chosen.append(coin)
            total += coin["amount_sat"]
            fee = -(-btc.estimate_vsize(len(chosen), len(targets) + 1) * rate // 1)
            if subtract_fee and total >= want:
                break
            if not subtract_fee and total >= want + fee:
                break
        if not chosen or total < (want if subtract_fee else want + fee):
            raise RpcError(RPC_WALLET_INSUFFICIENT_FUNDS, "Insufficient funds")
        if subtract_fee:
            first = targets[0]
            if first[2] - fee < dust[0]:
                raise RpcError(
                    RPC_WALLET_INSUFFICIENT_FUNDS,
                    "The transaction amount is too small to pay the fee",
                )
            targets[0] = (first[0], first[1], first[2] - fee)
            change = total - want
        else:
            change = total - want - fee
        outs = [(a, s, v) for a, s, v in targets]
        if change >= bitcoin_address.DUST_SAT["p2wpkh"]:
            change_addr = self.new_address(wallet, change=True)
            outs.append((change_addr, self._script(change_addr), change))
        else:
            fee += change
        vin = [btc.TxIn(c["txid"], c["n"]) for c in chosen]
        raw = btc.serialize_tx(vin, [btc.TxOut(v, s) for _, s, v in outs])
        txid = btc.txid_of(raw)
        with self.db.tx():
            self._insert_tx(
                txid, raw, [(c["txid"], c["n"]) for c in chosen], outs, fee, False, wallet
            )
        return txid

    def _insert_tx(self, txid, raw, spends, outs, fee, coinbase, from_wallet) -> None:  # type: ignore[no-untyped-def]
        c = self.db.conn
        c.execute(
            "INSERT INTO txs (txid, raw, height, pos, time, fee_sat, coinbase, from_wallet)"
            " VALUES (?, ?, NULL, NULL, ?, ?, ?, ?)",
            (txid, raw, int(time.time()), fee, int(coinbase), from_wallet),
        )
        for n, (prev_txid, prev_n) in enumerate(spends):
            cur = c.execute(
                "UPDATE txouts SET spent_by = ? WHERE txid = ? AND n = ? AND spent_by IS NULL",
                (txid, prev_txid, prev_n),
            )
            if cur.rowcount != 1:
                raise RpcError(RPC_WALLET_ERROR, f"input {prev_txid}:{prev_n} is already spent")
            c.execute(
                "INSERT INTO txins (txid, n, prev_txid, prev_n) VALUES (?, ?, ?, ?)",
                (txid, n, prev_txid, prev_n),
            )
        for n, (address, script, amount) in enumerate(outs):
            c.execute(
                "INSERT INTO txouts (txid, n, address, script, amount_sat) VALUES (?, ?, ?, ?, ?)",
                (txid, n, address, script, amount),
            )

    # --- transactions -------------------------------------------------------------------------
    def tx(self, txid: str) -> dict | None:
        row = self.db.one("SELECT * FROM txs WHERE txid = ?", txid)
        return dict(row) if row else None

    def txouts(self, txid: str) -> list[dict]:
        return [
            dict(r) for r in self.db.all("SELECT * FROM txouts WHERE txid = ? ORDER BY n", txid)
        ]

    def txins(self, txid: str) -> list[dict]:
        return [dict(r) for r in self.db.all("SELECT * FROM txins WHERE txid = ? ORDER BY n", txid)]

    def received_by_address(self, address: str, minconf: int = 1) -> int:
        address = self._address(address).text
        if self.wallet_of(address) is None:
            raise RpcError(RPC_WALLET_ERROR, "Address not found in wallet")
        tip = self.height()
        rows = self.db.all(
            "SELECT o.amount_sat, t.height, t.coinbase FROM txouts o JOIN txs t ON t.txid = o.txid WHERE o.address = ?",
            address,
        )
        total = 0
        for r in rows:
            confs = 0 if r["height"] is None else tip - r["height"] + 1
            if confs >= minconf and not (r["coinbase"] and confs <= btc.COINBASE_MATURITY):
                total += r["amount_sat"]
        return total

    def wallet_entries(self, wallet: str, txid: str) -> list[dict]:
        """bitcoind's per-wallet view of one transaction: receive/send/generate/immature entries."""
        t = self.tx(txid)
        if t is None:
            return []
        confs = self.confirmations(t["height"])
        entries = []
        ours = {
            r["address"]: r
            for r in self.db.all(
                "SELECT a.address, a.label, a.change FROM txouts o JOIN addresses a ON a.address = o.address"
                " WHERE o.txid = ? AND a.wallet = ?",
                txid,
                wallet,
            )
        }
        for o in self.txouts(txid):
            mine = ours.get(o["address"])
            if t["from_wallet"] == wallet and mine is None:
                entries.append(
                    {
                        "address": o["address"],
                        "category": "send",
                        "amount": -o["amount_sat"],
                        "vout": o["n"],
                        "fee": -t["fee_sat"],
                        "label": "",
                    }
                )
            elif mine is not None and not mine["change"]:
                if t["coinbase"]:
                    category = "generate" if confs > btc.COINBASE_MATURITY else "immature"
                else:
                    category = "receive"
                entries.append(
                    {
                        "address": o["address"],
                        "category": category,
                        "amount": o["amount_sat"],
                        "vout": o["n"],
                        "label": mine["label"],
                    }
                )
        return entries

    def wallet_txids(self, wallet: str) -> list[str]:
        rows = self.db.all(
            "SELECT DISTINCT t.txid, t.time, COALESCE(t.height, 1e18) AS h FROM txs t"
            " LEFT JOIN txouts o ON o.txid = t.txid LEFT JOIN addresses a ON a.address = o.address"
            " WHERE a.wallet = ? OR t.from_wallet = ? ORDER BY h, t.time, t.txid",
            wallet,
            wallet,
        )
        return [r["txid"] for r in rows]

    def fee_rate_btc_kvb(self) -> int:
        """Fee rate in sats per kvB (bitcoind reports BTC/kvB)."""
        return self.fee_rate_sat_vb * 1000
