"""fmclient.chain against fakes of bitcoind's JSON-RPC and of an Esplora server (the real
bitcoind: tests/fedimint/test_walletv1.py; no real Esplora server can be installed here, so
EsploraChain is tested only against this fake of its documented API)."""

from __future__ import annotations

import json

import httpx
import pytest

from fmclient.chain import BitcoindChain, ChainError, ChainOutput, EsploraChain

A1 = "bcrt1qdmm5875nd4709xuh7f65k9d46laea9qluek6rv"  # p2wpkh 6ef743fa…
S1 = "00146ef743fa936d7cf29b97f2754b15b5d7fb9e941f"
A2 = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"
S2 = "00204ae81572f06e1b88fd5ced7a1a000945432e83e1551e6f721ee9c00b8cc33260"
TXID = "ab" * 32


def bitcoind(answers: dict, seen: list) -> BitcoindChain:
    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((body["method"], body["params"]))
        answer = answers[body["method"]]
        if isinstance(answer, httpx.Response):
            return answer
        if isinstance(answer, dict) and "error" in answer:
            return httpx.Response(500, json={"result": None, **answer, "id": body["id"]})
        return httpx.Response(200, json={"result": answer, "error": None, "id": body["id"]})

    return BitcoindChain("http://node:8332", "u", "p", transport=httpx.MockTransport(handle))


async def test_bitcoind_finds_our_outputs_with_scantxoutset() -> None:
    seen: list = []
    unspents = [
        {"txid": TXID, "vout": 1, "scriptPubKey": S1, "amount": 0.0015, "height": 120},
        {"txid": "cd" * 32, "vout": 0, "scriptPubKey": S2, "amount": 21.00000001,
         "height": 110, "blockhash": "11" * 32},
    ]  # fmt: skip
    chain = bitcoind({"scantxoutset": {"success": True, "unspents": unspents},
                      "getblockhash": "22" * 32}, seen)  # fmt: skip
    found = await chain.unspent([A1, A2])
    assert found == [
        ChainOutput(A2, "cd" * 32, 0, 2_100_000_001, 110, "11" * 32),
        ChainOutput(A1, TXID, 1, 150_000, 120, "22" * 32),
    ]
    assert seen[0] == ("scantxoutset", ["start", [f"addr({A1})", f"addr({A2})"]])
    assert seen[1] == ("getblockhash", [120])  # an older bitcoind gives no block hash
    assert await chain.unspent([]) == []
    await chain.close()


async def test_bitcoind_reads_a_transaction_and_its_proof_by_block() -> None:
    seen: list = []
    chain = bitcoind(
        {"getrawtransaction": "0200", "gettxoutproof": "beef", "getblockcount": 7}, seen
    )
    assert await chain.transaction(TXID, "11" * 32) == bytes.fromhex("0200")
    assert await chain.txout_proof(TXID, "11" * 32) == bytes.fromhex("beef")
    assert await chain.tip_height() == 7
    assert seen[:2] == [
        ("getrawtransaction", [TXID, False, "11" * 32]),  # no -txindex needed
        ("gettxoutproof", [[TXID], "11" * 32]),
    ]
    await chain.close()


async def test_bitcoind_failures_are_one_line() -> None:
    busy = {"error": {"code": -8, "message": "Scan already in progress, use action abort"}}
    chain = bitcoind({"scantxoutset": busy, "getblockcount": httpx.Response(401)}, [])
    with pytest.raises(ChainError, match="busy with another UTXO scan"):
        await chain.unspent([A1])
    with pytest.raises(ChainError, match="refused the RPC user or password"):
        await chain.tip_height()
    with pytest.raises(ChainError, match="not an address"):
        await chain.unspent(["nope"])
    await chain.close()
    gone = BitcoindChain("http://127.0.0.1:1", "u", "p", timeout=2)
    with pytest.raises(ChainError, match="bitcoind unreachable"):
        await gone.tip_height()
    await gone.close()


def esplora(routes: dict) -> EsploraChain:
    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api")
        if path not in routes:
            return httpx.Response(404, text="not found")
        answer = routes[path]
        return httpx.Response(200, text=answer if isinstance(answer, str) else json.dumps(answer))

    return EsploraChain("https://esplora.example/api/", transport=httpx.MockTransport(handle))


async def test_esplora_lists_confirmed_outputs_and_reads_proofs() -> None:
    confirmed = {"confirmed": True, "block_height": 120, "block_hash": "11" * 32}
    chain = esplora({
        f"/address/{A1}/utxo": [
            {"txid": TXID, "vout": 1, "value": 150_000, "status": confirmed},
            {"txid": "cd" * 32, "vout": 0, "value": 5, "status": {"confirmed": False}},
        ],
        f"/address/{A2}/utxo": [],
        "/blocks/tip/height": "130",
        f"/tx/{TXID}/hex": "0200\n",
        f"/tx/{TXID}/merkleblock-proof": "beef",
    })  # fmt: skip
    assert await chain.unspent([A1, A2]) == [ChainOutput(A1, TXID, 1, 150_000, 120, "11" * 32)]
    assert await chain.tip_height() == 130
    assert await chain.transaction(TXID, "11" * 32) == bytes.fromhex("0200")
    assert await chain.txout_proof(TXID, "11" * 32) == bytes.fromhex("beef")
    with pytest.raises(ChainError, match="HTTP 404"):
        await chain.transaction("cd" * 32, "11" * 32)
    await chain.close()


async def test_esplora_odd_answers_are_one_line() -> None:
    chain = esplora(
        {
            f"/address/{A1}/utxo": [{"txid": TXID, "status": {"confirmed": True}}],
            f"/tx/{TXID}/hex": "zz",
        }
    )
    with pytest.raises(ChainError, match="odd UTXO list"):
        await chain.unspent([A1])
    with pytest.raises(ChainError, match="not hex"):
        await chain.transaction(TXID, "11" * 32)
    await chain.close()
