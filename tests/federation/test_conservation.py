"""Property: random sequences of deposits, spends, reissues, withdrawals and Lightning contracts
conserve value: notes outstanding + open contracts == deposits - withdrawals - fees, and every
wallet's notes are exactly what the federation says is outstanding."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from pathlib import Path

import pytest
from coincurve import PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devworld.federation.app import run_pegout_sender
from devworld.fedlib import crypto
from devworld.fedlib.notes import decode_notes
from devworld.fedlib.wallet import WalletError
from tests.fuzzing import examples

from .conftest import Regtest, fund, join, make_fed


@pytest.mark.fuzz
@settings(
    max_examples=examples(3),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(seed=st.integers(0, 2**32 - 1), fees=st.sampled_from([(0, 0), (7, 3)]))
def test_random_operations_conserve_value(
    regtest: Regtest, tmp_path_factory, seed: int, fees: tuple[int, int]
) -> None:  # type: ignore[no-untyped-def]
    rnd = random.Random(seed)
    tmp: Path = tmp_path_factory.mktemp("conserve")
    fed = make_fed(regtest, tmp, input_fee_msat=fees[0], output_fee_msat=fees[1])
    stop = threading.Event()
    run_pegout_sender(fed, stop, interval_s=0.05)
    wallets = [join(fed, tmp / f"w{i}" / "wallet.sqlite") for i in range(3)]
    gw_key = PrivateKey()
    for w in wallets:
        fund(regtest, w, rnd.randint(20_000, 200_000))
    loose: list[str] = []  # notes strings handed over but not yet reissued
    contracts: list[tuple[str, bytes]] = []
    for _ in range(40):
        w = rnd.choice(wallets)
        action = rnd.choice(["spend", "reissue", "withdraw", "contract", "claim", "incoming"])
        try:
            if action == "spend" and w.balance() > 10_000:
                loose.append(w.spend(rnd.randint(1, w.balance() // 2)))
            elif action == "reissue" and loose:
                w.reissue(loose.pop(rnd.randrange(len(loose))))
            elif action == "withdraw" and w.balance() > 2_000_000:
                w.withdraw(rnd.randint(1_000, w.balance() // 2000), regtest.miner)
            elif action == "contract" and w.balance() > 100_000:
                pre = os.urandom(32)
                amount = rnd.randint(1, w.balance() // 2)
                op = w._new_op("test-contract", {})
                with w.lock:
                    notes = w._select(op, amount)
                inputs, signers = w._note_inputs(notes)
                out = {
                    "kind": "outgoing_contract",
                    "amount": amount,
                    "payment_hash": hashlib.sha256(pre).hexdigest(),
                    "gateway_key": crypto.xonly(gw_key),
                    "user_key": crypto.xonly(PrivateKey()),
                    "timelock": fed.height() + 100,
                    "invoice": "",
                }
                change = w._change_outputs(sum(n["amount"] for n in notes) - amount, len(inputs), 1)
                cid = w._run(op, inputs, signers, [out], change)[0]["contract_id"]
                contracts.append((cid, pre))
            elif action == "claim" and contracts:
                cid, pre = contracts.pop()
                w.claim_outgoing(cid, pre.hex(), gw_key)
            elif action == "incoming" and len(wallets) > 1:
                receiver = rnd.choice([x for x in wallets if x is not w])
                if w.balance() > 100_000:
                    amount = rnd.randint(1, w.balance() // 2)
                    k = PrivateKey()
                    pre = bytes.fromhex(crypto.xonly(k))
                    ph = hashlib.sha256(pre).hexdigest()
                    enc = crypto.ecies_encrypt(
                        crypto.point(fed.config["modules"]["ln"]["encryption_key"]), pre
                    ).hex()
                    op = receiver._new_op(
                        "ln-receive", {"claim_key": k.secret.hex(), "payment_hash": ph}
                    )
                    # with fees the receiver pays the offer's fee from its notes
                    receiver._run_paid(
                        op,
                        [
                            {
                                "kind": "offer",
                                "amount": amount,
                                "payment_hash": ph,
                                "encrypted_preimage": enc,
                                "expiry": int(time.time()) + 600,
                            }
                        ],
                    )
                    w.fund_incoming(ph, amount, gw_key)
                    receiver.await_ln_receive(op, timeout=5)
        except WalletError as exc:
            assert exc.code in ("insufficient_funds", "insufficient_reserves"), exc.code
        audit = fed.audit()
        assert audit["pegin_msat"] - audit["pegout_msat"] - audit["fees_msat"] == (
            audit["notes_outstanding_msat"]
            + audit["outgoing_open_msat"]
            + audit["incoming_open_msat"]
        )
    in_wallets = sum(x.balance() for x in wallets)
    exported = sum(sum(n["amount"] for n in decode_notes(s)[1]) for s in loose)
    assert in_wallets + exported == fed.audit()["notes_outstanding_msat"]
    stop.set()
    time.sleep(0.1)
    fed.db.close()
