"""The Lightning module: outgoing contracts (claim, cancel, refund, timelocks), offers and
incoming contracts (funding, decryption, claim, refund), gateway registrations. A small real HTTP
server plays the gateway's /pay_invoice, using the client library's gateway role."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from bolt11 import decode as bolt11_decode
from coincurve import PrivateKey

from devworld.federation.engine import Federation, FedError
from devworld.fedlib import crypto
from devworld.fedlib.client import FederationClient
from devworld.fedlib.tx import registration_message, removal_message, txid
from devworld.fedlib.wallet import WalletError

from .conftest import Regtest, fund, join

GW_NODE = "02" + "22" * 32


class FakeGateway:
    """Serves POST /pay_invoice with `behaviour(contract_id) -> (status, body)`."""

    def __init__(self, behaviour: Callable[[str], tuple[int, dict]]) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, reply = outer.behaviour(body["contract_id"])
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.behaviour = behaviour
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def gw(
    regtest: Regtest, fed: Federation, tmp_path: Path
) -> Iterator[tuple[FederationClient, PrivateKey]]:
    wallet = join(fed, tmp_path / "gw" / "wallet.sqlite")
    yield wallet, PrivateKey()


def register(
    wallet: FederationClient, key: PrivateKey, url: str, base: int = 1000, ppm: int = 10_000
) -> dict:
    return wallet.register_gateway(
        key,
        scid=1,
        node_pubkey=GW_NODE,
        api_url=url,
        fees={"base_msat": base, "proportional_millionths": ppm},
    )


def invoice_for(amount_msat: int, preimage: bytes) -> str:
    """An invoice from some Lightning node, payable by the gateway."""
    from bolt11 import Bolt11, MilliSatoshi, encode
    from bolt11.models.tags import TagChar, Tags

    tags = Tags()
    tags.add(TagChar.payment_hash, hashlib.sha256(preimage).hexdigest())
    tags.add(TagChar.payment_secret, os.urandom(32).hex())
    tags.add(TagChar.description, "coffee")
    return encode(
        Bolt11("bcrt", int(time.time()), tags, MilliSatoshi(amount_msat)), os.urandom(32).hex()
    )


def test_pay_through_a_gateway_that_claims(
    regtest: Regtest, fed: Federation, alice: FederationClient, gw
) -> None:  # type: ignore[no-untyped-def]
    gw_wallet, gw_key = gw
    fund(regtest, alice, 50_000)
    preimage = os.urandom(32)

    def behaviour(cid: str) -> tuple[int, dict]:
        with pytest.raises(WalletError) as wrong:
            gw_wallet.claim_outgoing(cid, os.urandom(32).hex(), gw_key)
        assert wrong.value.code == "wrong_preimage"
        with pytest.raises(WalletError) as wrong_key:
            gw_wallet.claim_outgoing(cid, preimage.hex(), PrivateKey())
        assert wrong_key.value.code == "invalid_signature"
        gw_wallet.claim_outgoing(cid, preimage.hex(), gw_key)
        return 200, {"preimage": preimage.hex()}

    server = FakeGateway(behaviour)
    register(gw_wallet, gw_key, server.url)
    before = alice.balance()
    result = alice.ln_pay(invoice_for(1_000_000, preimage))
    server.close()
    fee = 1000 + 1_000_000 * 10_000 // 1_000_000
    assert result["preimage"] == preimage.hex() and result["fee_msat"] == fee
    assert alice.balance() == before - 1_000_000 - fee
    assert gw_wallet.balance() == 1_000_000 + fee
    contract = fed.contract(result["contract_id"])
    assert contract["spent_by"] and contract["preimage"] == preimage.hex()


def test_gateway_failure_cancels_and_the_user_refunds_at_once(
    regtest: Regtest, fed: Federation, alice: FederationClient, gw
) -> None:  # type: ignore[no-untyped-def]
    gw_wallet, gw_key = gw
    fund(regtest, alice, 50_000)

    def behaviour(cid: str) -> tuple[int, dict]:
        gw_wallet.cancel_outgoing(cid, gw_key)
        return 502, {"error": "route not found", "code": "payment_failed"}

    server = FakeGateway(behaviour)
    register(gw_wallet, gw_key, server.url)
    before = alice.balance()
    result = alice.ln_pay(invoice_for(2_000_000, os.urandom(32)))
    server.close()
    assert result["preimage"] is None and result["refunded_msat"] > 0
    assert alice.balance() == before  # every msat back (no federation fees configured)
    with pytest.raises(WalletError) as late:  # a cancelled contract can no longer be claimed
        gw_wallet.claim_outgoing(result["contract_id"], "00" * 32, gw_key)
    assert late.value.code in ("contract_spent", "contract_cancelled", "wrong_preimage")


def test_timelocks(regtest: Regtest, fed: Federation, alice: FederationClient, gw) -> None:  # type: ignore[no-untyped-def]
    gw_wallet, gw_key = gw
    fund(regtest, alice, 50_000)
    register(gw_wallet, gw_key, "http://127.0.0.1:9")  # unreachable gateway
    preimage = os.urandom(32)
    before = alice.balance()
    result = alice.ln_pay(invoice_for(1_000_000, preimage))
    assert result["preimage"] is None and result["refunded_msat"] == 0  # must wait for the timelock
    op = alice.operation(result["operation"])
    user = PrivateKey(bytes.fromhex(op["data"]["user_key"]))
    refund = {
        "inputs": [{"kind": "outgoing_refund", "contract_id": result["contract_id"]}],
        "outputs": [],
    }
    refund["signatures"] = [crypto.schnorr_sign(user, bytes.fromhex(txid(refund)))]
    with pytest.raises(FedError) as early:
        fed.submit(refund)
    assert early.value.code == "timelock_not_reached" and early.value.status == 409
    regtest.mine(op["data"]["timelock"] - fed.height())
    with pytest.raises(WalletError) as late:
        gw_wallet.claim_outgoing(result["contract_id"], preimage.hex(), gw_key)
    assert late.value.code == "timelock_passed"
    assert alice.refund_outgoing(result["operation"]) > 0
    assert alice.balance() == before


def test_receive_through_a_gateway(
    regtest: Regtest, fed: Federation, bob: FederationClient, gw
) -> None:  # type: ignore[no-untyped-def]
    gw_wallet, gw_key = gw
    fund(regtest, gw_wallet, 50_000)
    register(gw_wallet, gw_key, "http://127.0.0.1:9", base=0, ppm=5_000)
    op, bolt11 = bob.ln_receive(3_000_000, "pizza")
    inv = bolt11_decode(bolt11)
    assert inv.amount_msat == 3_000_000 and inv.description == "pizza"
    (hint,) = inv.route_hints
    last = hint.routes[-1]
    assert (last.public_key, last.short_channel_id, last.ppm_fee) == (GW_NODE, "0x0x1", 5_000)
    offer = fed.offer(inv.payment_hash)
    assert offer["amount"] == 3_000_000 and not offer["funded_by"]
    with pytest.raises(WalletError) as low:
        gw_wallet.fund_incoming(inv.payment_hash, 2_999_999, gw_key)
    assert low.value.code == "underfunded"
    outcome = gw_wallet.fund_incoming(inv.payment_hash, 3_000_000, gw_key)
    assert (
        outcome["valid"]
        and hashlib.sha256(bytes.fromhex(outcome["preimage"])).hexdigest() == inv.payment_hash
    )
    with pytest.raises(WalletError) as twice:
        gw_wallet.fund_incoming(inv.payment_hash, 3_000_000, gw_key)
    assert twice.value.code == "offer_funded"
    with pytest.raises(WalletError) as steal:
        gw_wallet.refund_incoming(outcome["contract_id"], gw_key)
    assert steal.value.code == "contract_valid"
    assert bob.await_ln_receive(op, timeout=5) == 3_000_000 and bob.balance() == 3_000_000


def test_invalid_offers_and_expiry(
    regtest: Regtest, fed: Federation, bob: FederationClient, gw
) -> None:  # type: ignore[no-untyped-def]
    gw_wallet, gw_key = gw
    fund(regtest, gw_wallet, 50_000)
    enc_key = crypto.point(fed.config["modules"]["ln"]["encryption_key"])
    # an offer whose encrypted preimage does not match its hash: the gateway gets its money back
    ph = hashlib.sha256(b"a" * 32).hexdigest()
    bad = {
        "kind": "offer",
        "amount": 1000,
        "payment_hash": ph,
        "encrypted_preimage": crypto.ecies_encrypt(enc_key, b"b" * 32).hex(),
        "expiry": int(time.time()) + 600,
    }
    fed.submit({"inputs": [], "outputs": [bad], "signatures": []})
    before = gw_wallet.balance()
    outcome = gw_wallet.fund_incoming(ph, 1000, gw_key)
    assert outcome["valid"] is False and outcome["preimage"] is None
    assert gw_wallet.refund_incoming(outcome["contract_id"], gw_key) == 1000
    assert gw_wallet.balance() == before
    # expired offer
    ph2 = hashlib.sha256(b"c" * 32).hexdigest()
    short = dict(bad, payment_hash=ph2, expiry=int(time.time()) + 1)
    fed.submit({"inputs": [], "outputs": [short], "signatures": []})
    time.sleep(1.2)
    with pytest.raises(WalletError) as expired:
        gw_wallet.fund_incoming(ph2, 1000, gw_key)
    assert expired.value.code == "offer_expired"
    with pytest.raises(FedError) as past:
        fed.submit(
            {
                "inputs": [],
                "outputs": [
                    dict(bad, payment_hash=hashlib.sha256(b"d" * 32).hexdigest(), expiry=1)
                ],
                "signatures": [],
            }
        )
    assert past.value.code == "invalid_input"


def test_gateway_registry(fed: Federation, gw) -> None:  # type: ignore[no-untyped-def]
    gw_wallet, gw_key = gw
    reg = register(gw_wallet, gw_key, "http://127.0.0.1:8175")
    assert reg["registered"] == crypto.xonly(gw_key)
    (listed,) = fed.gateways()
    assert listed["scid"] == 1 and listed["api_url"] == "http://127.0.0.1:8175"
    forged = dict(listed, api_url="http://evil")
    with pytest.raises(FedError) as err:
        fed.register_gateway(
            {
                "registration": forged,
                "signature": crypto.schnorr_sign(PrivateKey(), registration_message(forged)),
            }
        )
    assert err.value.code == "invalid_signature"
    too_long = dict(listed, valid_until=int(time.time()) + 3600)
    with pytest.raises(FedError):
        fed.register_gateway(
            {
                "registration": too_long,
                "signature": crypto.schnorr_sign(gw_key, registration_message(too_long)),
            }
        )
    with pytest.raises(FedError):
        fed.remove_gateway(
            listed["gateway_key"],
            {
                "signature": crypto.schnorr_sign(
                    PrivateKey(), removal_message(fed.federation_id, listed["gateway_key"])
                )
            },
        )
    fed.remove_gateway(
        listed["gateway_key"],
        {
            "signature": crypto.schnorr_sign(
                gw_key, removal_message(fed.federation_id, listed["gateway_key"])
            )
        },
    )
    assert fed.gateways() == []
