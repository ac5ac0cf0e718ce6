"""The bitcoind-compatible JSON-RPC, over real HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx
import pytest

from devworld.regtest.app import World


@pytest.fixture
async def rpc(world: World) -> AsyncIterator:  # type: ignore[type-arg]
    await world.start()
    async with httpx.AsyncClient(timeout=10) as http:

        async def call(
            method: str, *params, wallet: str | None = None, version: str = "1.0", raw: bool = False
        ):  # type: ignore[no-untyped-def]
            url = world.rpc_url + (f"/wallet/{wallet}" if wallet else "/")
            body = {"jsonrpc": version, "id": 7, "method": method, "params": list(params)}
            r = await http.post(url, json=body, auth=("regtest", world.rpc_password))
            return r if raw else r.json()

        call.http = http  # type: ignore[attr-defined]
        yield call


async def result(call, method, *params, wallet=None):  # type: ignore[no-untyped-def]
    reply = await call(method, *params, wallet=wallet)
    assert reply["error"] is None, reply
    return reply["result"]


async def test_auth_is_required(world: World, rpc) -> None:  # type: ignore[no-untyped-def]
    r = await rpc.http.post(world.rpc_url + "/", json={"method": "getblockcount", "params": []})
    assert r.status_code == 401
    r = await rpc.http.post(
        world.rpc_url + "/", json={"method": "getblockcount"}, auth=("regtest", "wrong")
    )
    assert r.status_code == 401


async def test_blocks_coinbase_maturity_and_chain_info(rpc) -> None:  # type: ignore[no-untyped-def]
    assert await result(rpc, "getblockcount") == 0
    addr = await result(rpc, "getnewaddress", wallet="miner")
    assert addr.startswith("bcrt1q") and len(addr) == 44
    hashes = await result(rpc, "generatetoaddress", 100, addr)
    assert len(hashes) == 100 and await result(rpc, "getbestblockhash") == hashes[-1]
    assert await result(rpc, "getblockhash", 100) == hashes[-1]
    assert await result(rpc, "getbalance", wallet="miner") == 0  # 100 confirmations: not yet mature
    await result(rpc, "generatetoaddress", 1, addr)
    assert await result(rpc, "getbalance", wallet="miner") == 50
    info = await result(rpc, "getblockchaininfo")
    assert info["chain"] == "regtest" and info["blocks"] == 101 and info["bestblockhash"]
    bad = await rpc("getblockhash", 500)
    assert bad["error"] == {"code": -8, "message": "Block height out of range"}


async def test_sends_fees_confirmations_and_wallet_views(rpc) -> None:  # type: ignore[no-untyped-def]
    miner = await result(rpc, "getnewaddress", wallet="miner")
    await result(rpc, "generatetoaddress", 101, miner)
    assert (await result(rpc, "createwallet", "fed"))["name"] == "fed"
    dest = await result(rpc, "getnewaddress", "peg-in", wallet="fed")
    txid = await result(rpc, "sendtoaddress", dest, 1.25, wallet="miner")
    tx = await result(rpc, "gettransaction", txid, wallet="miner")
    assert tx["confirmations"] == 0 and tx["amount"] == -1.25 and tx["fee"] < 0
    assert await result(rpc, "getbalance", wallet="miner") == pytest.approx(50 - 1.25 + tx["fee"])
    assert await result(rpc, "getbalance", wallet="fed") == 0  # untrusted until confirmed
    assert await result(rpc, "getreceivedbyaddress", dest, 0, wallet="fed") == 1.25
    # as bitcoind: listed unconfirmed with minconf 0 ("safe": false, never counted or spent),
    # unless include_unsafe is false
    (unsafe,) = await result(rpc, "listunspent", 0, 9_999_999, [dest], wallet="fed")
    assert unsafe["txid"] == txid and unsafe["confirmations"] == 0 and unsafe["safe"] is False
    assert await result(rpc, "listunspent", 0, 9_999_999, [dest], False, wallet="fed") == []
    assert await result(rpc, "listunspent", wallet="fed") == []  # minconf 1 by default
    bad = await rpc("listunspent", 0, 9_999_999, [dest], "yes", wallet="fed")
    assert bad["error"]["code"] == -3
    await result(rpc, "generatetoaddress", 3, miner)
    assert (await result(rpc, "gettransaction", txid, wallet="fed"))["confirmations"] == 3
    assert await result(rpc, "getbalance", wallet="fed") == 1.25
    raw = await result(rpc, "getrawtransaction", txid, True)
    assert (
        hashlib.sha256(hashlib.sha256(bytes.fromhex(raw["hex"])).digest()).digest()[::-1].hex()
        == txid
    )
    assert raw["confirmations"] == 3 and {
        o["scriptPubKey"].get("address") for o in raw["vout"]
    } >= {dest}
    (coin,) = await result(rpc, "listunspent", wallet="fed")
    assert coin["txid"] == txid and coin["amount"] == 1.25 and coin["label"] == "peg-in"
    assert coin["safe"] is True
    (entry,) = await result(rpc, "listtransactions", wallet="fed")
    assert (
        entry["category"] == "receive" and entry["amount"] == 1.25 and entry["confirmations"] == 3
    )
    fee = await result(rpc, "estimatesmartfee", 6)
    assert fee["feerate"] > 0 and fee["blocks"] >= 2


async def test_bitcoind_errors(rpc) -> None:  # type: ignore[no-untyped-def]
    miner = await result(rpc, "getnewaddress", wallet="miner")
    await result(rpc, "generatetoaddress", 101, miner)
    assert (await rpc("sendtoaddress", miner, 1000, wallet="miner"))["error"]["code"] == -6
    assert (await rpc("sendtoaddress", "bc1qnotregtest", 1, wallet="miner"))["error"]["code"] == -5
    assert (await rpc("sendtoaddress", miner, "0.000000001", wallet="miner"))["error"]["code"] == -3
    assert (await rpc("getnewaddress", wallet="nope"))["error"]["code"] == -18
    await result(rpc, "createwallet", "second")
    assert (await rpc("getbalance"))["error"]["code"] == -19  # two wallets, none named
    assert (await rpc("createwallet", "second"))["error"]["code"] == -4
    assert (await rpc("loadwallet", "second"))["error"]["code"] == -35
    assert (await rpc("loadwallet", "missing"))["error"]["code"] == -18
    r = await rpc("nosuchmethod", raw=True)
    assert r.status_code == 404 and r.json()["error"]["code"] == -32601
    r = await rpc("gettransaction", "00" * 32, wallet="miner", raw=True)
    assert r.status_code == 500 and r.json()["error"]["code"] == -5
    v2 = await rpc("getblockcount", version="2.0", raw=True)
    assert v2.status_code == 200 and v2.json() == {"jsonrpc": "2.0", "result": 101, "id": 7}
    v2err = await rpc("nosuchmethod", version="2.0", raw=True)
    assert v2err.status_code == 200 and v2err.json()["error"]["code"] == -32601


async def test_batches_and_parse_errors(world: World, rpc) -> None:  # type: ignore[no-untyped-def]
    auth = ("regtest", world.rpc_password)
    r = await rpc.http.post(world.rpc_url, content=b"{not json", auth=auth)
    assert r.status_code == 500 and r.json()["error"]["code"] == -32700
    batch = [{"method": "getblockcount", "params": [], "id": 1}, {"method": "bogus", "id": 2}]
    r = await rpc.http.post(world.rpc_url, json=batch, auth=auth)
    assert r.status_code == 200 and [x["id"] for x in r.json()] == [1, 2]
    assert r.json()[0]["result"] == 0 and r.json()[1]["error"]["code"] == -32601
