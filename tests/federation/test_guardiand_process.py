"""guardiand for real (gunicorn, its own process group), driven by fed-cli and by wallets under
load; kill -9 mid-load, restart, and nothing is lost or spent twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devworld.fedlib.client import FederationClient
from devworld.fedlib.wallet import WalletError

from .conftest import Regtest

BIN = Path(sys.executable).parent


class Guardian:
    def __init__(self, data_dir: Path, chain_rpc: str) -> None:
        self.data_dir, self.chain_rpc = data_dir, chain_rpc
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> dict:
        self.proc = subprocess.Popen([str(BIN / "guardiand"), "--data-dir", str(self.data_dir), "--name", "proc-test",
                                      "--chain-rpc", self.chain_rpc], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                info = json.loads((self.data_dir / "federation.json").read_text())
                if (
                    info["pid"] == self.proc.pid
                    and httpx.get(info["api_url"] + "/health", timeout=1).status_code == 200
                ):
                    return info
            except (OSError, ValueError, KeyError, httpx.HTTPError):
                pass
            time.sleep(0.1)
        raise AssertionError("guardiand did not start")

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def guardian(regtest: Regtest, tmp_path: Path) -> Iterator[Guardian]:
    g = Guardian(tmp_path / "fed", regtest.rpc_url)
    yield g
    g.kill9()


def fedcli(wallet: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "fed-cli"), "--wallet", str(wallet), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(wallet: Path, *args: str) -> dict:
    out = fedcli(wallet, *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_fed_cli_against_a_real_guardian(
    regtest: Regtest, guardian: Guardian, tmp_path: Path
) -> None:
    info = guardian.start()
    assert info["invite_code"].startswith("fed1")
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    assert ok(alice, "join", info["invite_code"])["federation_id"] == info["federation_id"]
    ok(bob, "join", info["invite_code"])
    dep = ok(alice, "deposit-address")
    regtest.send(dep["address"], "0.001")
    regtest.mine(1)
    assert ok(alice, "await-deposit", "--timeout", "20")["credited_msat"] == 100_000_000
    notes = ok(alice, "spend", "--amount-msat", "21000000")["notes"]
    assert ok(bob, "reissue", notes)["received_msat"] == 21_000_000
    again = fedcli(bob, "reissue", notes)
    assert (
        again.returncode == 1
        and again.stderr.startswith("error: double_spend")
        and again.stderr.count("\n") == 1
    )
    address = regtest.rpc("getnewaddress", wallet="miner")
    out = ok(bob, "withdraw", "--amount-sat", "10000", "--address", address)
    assert out["txid"] and out["balance_msat"] == 21_000_000 - (10_000 + out["fee_sat"]) * 1000
    assert fedcli(bob, "withdraw", "--amount-sat", "99999999", "--address", address).returncode == 1
    assert ok(alice, "info")["balance_msat"] == 79_000_000
    assert ok(alice, "list-gateways") == []
    assert fedcli(tmp_path / "carol", "join", "fed1notaninvite").returncode == 1
    assert fedcli(tmp_path / "carol", "balance").returncode == 1
    r = httpx.post(info["api_url"] + "/v1/transactions", content=b"x" * (2 << 20))
    assert r.status_code == 413 and r.json()["code"] == "too_large"
    r = httpx.post(info["api_url"] + "/v1/transactions", content=b"{nope")
    assert r.status_code == 400 and r.json()["code"] == "invalid_json"
    assert httpx.get(info["api_url"] + "/v1/ln/contracts/" + "00" * 32).status_code == 404
    assert httpx.get(info["api_url"] + "/v1/transactions/" + "00" * 32).status_code == 404


def test_kill9_mid_load_loses_nothing_and_spends_nothing_twice(
    regtest: Regtest, guardian: Guardian, tmp_path: Path
) -> None:
    info = guardian.start()
    wallets = [
        FederationClient.join(tmp_path / f"w{i}" / "wallet.sqlite", info["invite_code"])
        for i in range(3)
    ]
    for w in wallets:
        op, address = w.deposit_address()
        regtest.send(address, "0.0005")
    regtest.mine(1)
    for w in wallets:
        w.await_deposit(w.operations(1)[0]["id"], timeout=20)
    total = sum(w.balance() for w in wallets)
    assert total == 3 * 50_000_000
    stop = threading.Event()
    errors: list[str] = []

    def churn(w: FederationClient) -> None:  # split and reissue notes to itself until stopped
        while not stop.is_set():
            try:
                w.reissue(w.spend(1 + (w.balance() // 3)))
            except WalletError as exc:
                errors.append(exc.code)
                time.sleep(0.05)

    threads = [threading.Thread(target=churn, args=(w,)) for w in wallets]
    for t in threads:
        t.start()
    time.sleep(1.5)
    guardian.kill9()  # mid-load: transactions in flight
    time.sleep(0.5)
    guardian.start()
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(30)
    assert "federation_unreachable" in errors  # the crash was felt
    for w in wallets:
        w.resume()
        # notes exported by a spend whose reissue never ran are still ours to take back
        for op in w.operations(500):
            if op["kind"] == "spend" and op["data"].get("notes"):
                try:
                    w.reissue(op["data"]["notes"])
                except WalletError as exc:
                    assert exc.code == "double_spend"  # already reissued before the crash
    assert sum(w.balance() for w in wallets) == total  # no note lost
    audit = httpx.get(info["api_url"] + "/v1/audit").json()
    assert audit["notes_outstanding_msat"] == total == audit["pegin_msat"]
    # every note a wallet spent is refused if spent again
    w = wallets[0]
    spent = w.db.execute("SELECT * FROM notes WHERE state = 'spent' LIMIT 5").fetchall()
    assert spent
    from devworld.fedlib.notes import encode_notes

    replay = encode_notes(
        w.federation_id,
        [
            {"amount": n["amount"], "spend_key": n["spend_key"], "signature": n["signature"]}
            for n in spent
        ],
    )
    with pytest.raises(WalletError) as err:
        wallets[1].reissue(replay)
    assert err.value.code == "double_spend"
