"""Mint, transactions, peg-in/out and notes: the rules and their refusals."""

from __future__ import annotations

import hashlib
import threading

import pytest
from coincurve import PrivateKey

from devworld.federation.engine import Federation, FedError
from devworld.fedlib import crypto
from devworld.fedlib.api import FedApiError
from devworld.fedlib.client import FederationClient
from devworld.fedlib.tx import decode_invite, encode_invite, txid
from devworld.fedlib.wallet import WalletError

from .conftest import Regtest, fund


def test_blind_signatures_and_dleq() -> None:
    k = crypto.new_key()
    nonce = bytes.fromhex(crypto.xonly(crypto.new_key()))
    blinded, r = crypto.blind(nonce)
    c_, e, s = crypto.sign_blinded(k, blinded)
    assert crypto.verify_dleq(blinded, c_, e, s, k.public_key)
    assert not crypto.verify_dleq(blinded, c_, e, s, crypto.new_key().public_key)  # another key
    assert not crypto.verify_dleq(blinded, c_, (e + 1) % crypto.N, s, k.public_key)
    c = crypto.unblind(c_, r, k.public_key)
    assert crypto.verify_note(k, nonce, c) and not crypto.verify_note(crypto.new_key(), nonce, c)
    ct = crypto.ecies_encrypt(k.public_key, b"p" * 32)
    assert crypto.ecies_decrypt(k, ct) == b"p" * 32
    with pytest.raises(crypto.CryptoError):
        crypto.ecies_decrypt(crypto.new_key(), ct)


def test_invite_codes(fed: Federation) -> None:
    code = encode_invite(fed.federation_id, fed.config["api_url"])
    assert code.startswith("fed1") and decode_invite(code) == (
        fed.federation_id,
        fed.config["api_url"],
    )
    for bad in (
        "",
        "fed1",
        code[:-1] + ("q" if code[-1] != "q" else "p"),
        "xyz1" + code[4:],
        code.replace("fed1", "bc1"),
    ):
        with pytest.raises(ValueError):
            decode_invite(bad)


def test_peg_in_reissue_spend_and_peg_out(
    regtest: Regtest, fed: Federation, alice: FederationClient, bob: FederationClient
) -> None:
    assert fund(regtest, alice, 100_000) == 100_000_000
    assert alice.balance() == 100_000_000
    notes = alice.spend(12_345_678)
    assert alice.balance() == 100_000_000 - 12_345_678
    assert bob.reissue(notes) == 12_345_678 and bob.balance() == 12_345_678
    with pytest.raises(WalletError) as again:  # the same notes twice: a double spend
        bob.reissue(notes)
    assert again.value.code == "double_spend"
    address = regtest.rpc("getnewaddress", wallet="miner")
    before = regtest.rpc("getreceivedbyaddress", address, 0, wallet="miner")
    out = bob.withdraw(5_000, address)
    assert out["txid"] and out["fee_sat"] > 0
    assert regtest.rpc(
        "getreceivedbyaddress", address, 0, wallet="miner"
    ) - before == pytest.approx(0.00005)
    assert bob.balance() == 12_345_678 - (5_000 + out["fee_sat"]) * 1000
    audit = fed.audit()
    assert audit["pegin_msat"] - audit["pegout_msat"] - audit["fees_msat"] == (
        audit["notes_outstanding_msat"] + audit["outgoing_open_msat"] + audit["incoming_open_msat"]
    )
    with pytest.raises(WalletError) as too_much:
        bob.withdraw(10_000_000, address)
    assert too_much.value.code == "insufficient_funds"


def _note_tx(fed: Federation, wallet: FederationClient, amount_out: int, tamper=None):  # type: ignore[no-untyped-def]
    """A raw transaction spending all of `wallet`'s notes into one note output of `amount_out`."""
    notes = wallet.db.execute("SELECT * FROM notes WHERE state = 'unspent'").fetchall()
    inputs, signers = wallet._note_inputs(notes)
    blinded, _ = crypto.blind(bytes.fromhex(crypto.xonly(PrivateKey())))
    tx = {
        "inputs": inputs,
        "outputs": [{"kind": "note", "amount": amount_out, "blinded": blinded.format().hex()}],
        "signatures": [],
    }
    if tamper:
        tamper(tx)
    tid = txid(tx)
    tx["signatures"] = [crypto.schnorr_sign(k, bytes.fromhex(tid)) for k in signers]
    return tx


def test_bad_transactions_change_nothing(
    regtest: Regtest, fed: Federation, alice: FederationClient
) -> None:
    fund(regtest, alice, 2_000)  # 2_000_000 msat = notes of 2^n summing to it
    before = fed.audit()
    cases = {
        "unbalanced": _note_tx(fed, alice, 1 << 20),
        "invalid_input": _note_tx(fed, alice, 3),  # not a power of two
        "invalid_signature": dict(_note_tx(fed, alice, 1 << 20), signatures=["00" * 64] * 1),
        "invalid_note": _note_tx(
            fed,
            alice,
            1 << 20,
            tamper=lambda t: t["inputs"][0].update(
                signature=crypto.new_key().public_key.format().hex()
            ),
        ),
        "invalid_blind_message": _note_tx(
            fed, alice, 1 << 20, tamper=lambda t: t["outputs"][0].update(blinded="02" + "00" * 32)
        ),
    }
    for code, tx in cases.items():
        if code == "invalid_signature":
            tx["signatures"] = ["00" * 64] * len(tx["inputs"])
        with pytest.raises(FedError) as err:
            fed.submit(tx)
        assert err.value.code == code and 400 <= err.value.status < 500, (code, err.value.code)
    assert fed.audit() == before
    assert alice.db.execute("SELECT COUNT(*) FROM notes WHERE state = 'unspent'").fetchone()[0] > 0


def test_resubmission_is_harmless_and_racing_double_spends_lose(
    regtest: Regtest, fed: Federation, alice: FederationClient
) -> None:
    fund(regtest, alice, 1_000)
    total = alice.balance()
    one = _note_tx(fed, alice, 0)
    # a balanced pair of transactions spending the same notes into different outputs
    notes = alice.db.execute("SELECT * FROM notes WHERE state = 'unspent'").fetchall()

    def make() -> dict:
        inputs, signers = alice._note_inputs(notes)
        outs = []
        for d in [d for d in (1 << i for i in range(41)) if total & d]:
            b, _ = crypto.blind(bytes.fromhex(crypto.xonly(PrivateKey())))
            outs.append({"kind": "note", "amount": d, "blinded": b.format().hex()})
        tx = {"inputs": inputs, "outputs": outs, "signatures": []}
        tid = txid(tx)
        tx["signatures"] = [crypto.schnorr_sign(k, bytes.fromhex(tid)) for k in signers]
        return tx

    del one
    a, b = make(), make()
    # a, b and a again, released at the same moment. Either a or b wins: when a wins both of
    # its submissions answer its txid (the resubmission is the same transaction, accepted
    # once) and b is a double spend; when b wins, both of a's are double spends.
    results = _submit_at_once(fed, [a, b, a])
    assert results in (
        [txid(a), "double_spend", txid(a)],
        ["double_spend", txid(b), "double_spend"],
    ), results
    assert fed.audit()["notes_outstanding_msat"] == total


def test_peg_in_rules(regtest: Regtest, fed: Federation, alice: FederationClient) -> None:
    op, address = alice.deposit_address()
    btxid = regtest.send(address, "0.0001")
    with pytest.raises(WalletError):  # unconfirmed: nothing to claim yet
        alice.await_deposit(op, timeout=0.5)
    regtest.mine(1)
    assert alice.await_deposit(op, timeout=5) == 10_000_000
    vout = next(d["vout"] for d in alice.api.deposits(address) if d["txid"] == btxid)
    key = PrivateKey(bytes.fromhex(alice.operation(op)["data"]["user_key"]))
    b, _ = crypto.blind(bytes.fromhex(crypto.xonly(PrivateKey())))
    tx = {
        "inputs": [{"kind": "pegin", "txid": btxid, "vout": vout}],
        "outputs": [{"kind": "note", "amount": 1 << 23, "blinded": b.format().hex()}],
    }
    tx["signatures"] = [crypto.schnorr_sign(key, bytes.fromhex(txid(tx)))]
    with pytest.raises(FedError) as err:
        fed.submit(tx)
    assert err.value.code == "double_spend"
    with pytest.raises(FedError) as err:
        fed.submit(
            {
                "inputs": [{"kind": "pegin", "txid": hashlib.sha256(b"x").hexdigest(), "vout": 0}],
                "outputs": [],
                "signatures": [""],
            }
        )
    assert err.value.code == "unknown_deposit"


def test_deposit_by_txid(
    regtest: Regtest, fed: Federation, alice: FederationClient, bob: FederationClient
) -> None:
    """A deposit named by its transaction: found among the wallet's addresses, claimed alone,
    and a second claim of the same transaction credits nothing twice."""
    op1, _ = alice.deposit_address()
    op2, address2 = alice.deposit_address()
    _, bob_address = bob.deposit_address()
    mine, other = regtest.send(address2, "0.0002"), regtest.send(bob_address, "0.0003")
    # like bitcoind's listunspent (include_unsafe), the federation sees it in the mempool
    # already: found, but not claimable before its confirmations
    assert alice.find_deposit(mine) == op2
    with pytest.raises(WalletError) as err:
        alice.await_deposit(op2, timeout=0.3, txid=mine)
    assert err.value.code == "pending" and "confirmation" in err.value.message
    assert alice.balance() == 0
    regtest.mine(1)
    assert alice.find_deposit(mine) == op2
    assert alice.find_deposit(other) is None  # paid bob's address, not ours
    with pytest.raises(WalletError) as err:  # the wrong address for this transaction
        alice.await_deposit(op1, timeout=0.3, txid=mine)
    assert err.value.code == "pending"
    assert alice.await_deposit(op2, timeout=5, txid=mine) == 20_000_000
    assert alice.credited_by(mine) == 20_000_000 and alice.balance() == 20_000_000
    with pytest.raises(WalletError) as err:
        alice.await_deposit(op2, timeout=0.3, txid=mine)
    assert err.value.code == "already_claimed"
    assert alice.balance() == 20_000_000


def test_backup_and_restore(
    regtest: Regtest, fed: Federation, alice: FederationClient, bob: FederationClient
) -> None:
    fund(regtest, alice, 30_000)
    key = PrivateKey()
    backed_up = {
        r["nonce"] for r in alice.db.execute("SELECT nonce FROM notes WHERE state = 'unspent'")
    }
    info = alice.backup(key)
    assert info["amount_msat"] == 30_000_000 and info["notes"] == len(backed_up)
    spent = alice.spend(1_000_000)  # after the backup: the notes this consumed do not come back
    bob.reissue(spent)
    still = sum(
        r["amount"]
        for r in alice.db.execute("SELECT nonce, amount, state FROM notes")
        if r["nonce"] in backed_up and r["state"] == "unspent"
    )
    assert 0 < still < 30_000_000
    # alice's device is lost; her backup key restores what is left of it into a new wallet
    assert bob.restore(key) == still
    assert bob.balance() == 1_000_000 + still
    assert bob.restore(key) == 0  # twice: nothing more
    with pytest.raises(WalletError) as wrong:
        bob.restore(PrivateKey())
    assert wrong.value.code in ("unknown_backup", "invalid_backup")


def test_offers_and_cancellations_pay_the_federations_fees(regtest: Regtest, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """In a federation with fees, outputs worth nothing (offers, cancellations) still pay their
    fee from the wallet's notes: the books balance to the msat."""
    import time

    from .conftest import join, make_fed

    fed = make_fed(regtest, tmp_path, input_fee_msat=7, output_fee_msat=3)
    try:
        alice = join(fed, tmp_path / "alice" / "wallet.sqlite")
        fund(regtest, alice, 20_000)
        before, fees_before = alice.balance(), fed.audit()["fees_msat"]
        k = PrivateKey()
        pre = bytes.fromhex(crypto.xonly(k))
        enc = crypto.ecies_encrypt(
            crypto.point(fed.config["modules"]["ln"]["encryption_key"]), pre
        ).hex()
        op = alice._new_op("ln-receive", {"claim_key": k.secret.hex()})
        offer = {
            "kind": "offer",
            "amount": 5_000,
            "payment_hash": hashlib.sha256(pre).hexdigest(),
            "encrypted_preimage": enc,
            "expiry": int(time.time()) + 600,
        }
        alice._run_paid(op, [offer])
        paid = before - alice.balance()
        audit = fed.audit()
        assert paid > 0 and audit["fees_msat"] - fees_before == paid  # only the fees left
        assert audit["pegin_msat"] - audit["pegout_msat"] - audit["fees_msat"] == (
            audit["notes_outstanding_msat"]
            + audit["outgoing_open_msat"]
            + audit["incoming_open_msat"]
        )
        broke = join(fed, tmp_path / "broke" / "wallet.sqlite")
        with pytest.raises(WalletError) as err:  # no notes: cannot pay the fee
            broke._run_paid(broke._new_op("ln-receive", {}), [{**offer, "payment_hash": "00" * 32}])
        assert err.value.code == "insufficient_funds"
    finally:
        fed.db.close()


def test_resume_takes_in_submitted_and_releases_never_submitted(
    regtest: Regtest, fed: Federation, alice: FederationClient
) -> None:
    """A crash after notes were reserved but before the transaction was saved leaves them
    reserved; one after submitting leaves the outputs unclaimed. resume() fixes both."""
    fund(regtest, alice, 20_000)
    before = alice.balance()
    op = alice._new_op("spend", {})
    with alice.lock:
        alice._select(op, 5_000_000)  # ... and the process dies here
    assert alice.balance() < before
    reopened = FederationClient(alice.path, api=alice.api)
    reopened.resume()
    assert reopened.balance() == before and reopened.operation(op)["state"] == "failed"

    # submitted, then the federation's answer lost: resume takes the outcome in, once
    real_submit = reopened.api.submit
    calls: list[int] = []

    def lost_answer(tx: dict) -> dict:
        real_submit(tx)  # the federation accepts it...
        calls.append(1)
        raise FedApiError("unreachable", "connection reset", 0)  # ...but we never hear back

    reopened.api.submit = lost_answer  # type: ignore[method-assign]
    with pytest.raises(WalletError):
        reopened.reissue(reopened.spend(3_000_000))
    reopened.api.submit = real_submit  # type: ignore[method-assign]
    assert reopened.balance() < before  # the reissued notes are not in yet
    assert len(reopened.resume()) == 1
    assert reopened.balance() == before  # all of it back (no fees in this federation)
    assert fed.audit()["notes_outstanding_msat"] == reopened.balance()


def test_many_identical_submissions_at_once_are_one_transaction(
    regtest: Regtest, fed: Federation, alice: FederationClient
) -> None:
    """The "already accepted" check and the spend are one SQLite transaction: eight threads
    submitting the same transaction at the same moment all get its txid, and it counts once."""
    fund(regtest, alice, 1_000)
    total = alice.balance()
    tx = _note_tx(fed, alice, 0)  # into notes of 2^n summing to the total
    tx["outputs"] = []
    for d in [d for d in (1 << i for i in range(41)) if total & d]:
        blinded, _ = crypto.blind(bytes.fromhex(crypto.xonly(PrivateKey())))
        tx["outputs"].append({"kind": "note", "amount": d, "blinded": blinded.format().hex()})
    notes = alice.db.execute("SELECT * FROM notes WHERE state = 'unspent'").fetchall()
    _, signers = alice._note_inputs(notes)
    tx["signatures"] = [crypto.schnorr_sign(k, bytes.fromhex(txid(tx))) for k in signers]
    before = fed.audit()
    results = _submit_at_once(fed, [tx] * 8)
    assert results == [txid(tx)] * len(results)
    assert fed.audit()["notes_outstanding_msat"] == before["notes_outstanding_msat"] == total
    assert fed.db.one("SELECT COUNT(*) AS n FROM txs WHERE txid = ?", txid(tx))["n"] == 1


def _submit_at_once(fed: Federation, txs: list[dict]) -> list[object]:
    """Submit `txs` from one thread each, released by a barrier: each one's txid or error code."""
    results: list[object] = [None] * len(txs)
    start = threading.Barrier(len(txs))

    def go(i: int) -> None:
        start.wait()
        try:
            results[i] = fed.submit(txs[i])["txid"]
        except FedError as exc:
            results[i] = exc.code

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(txs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
