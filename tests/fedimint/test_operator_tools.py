"""The operator's tools, on a real fedimintd federation with the v1 modules (the shape of every
federation that has users) served by the whole tree: the admin API through gunicorn (the node
as the Lightning network sees it, deposits pending then claimed once), /metrics summed over
gunicorn's workers, gateway-cli end to end (e-cash out and back, a withdrawal quoted and sent
once, the payment log and summary, passwords, leave and back), the dashboard's sessions across
workers; an HTLC for our channel without a contract failed back; leave refused while an LNv1
payment is in flight; and a second (v2) federation connected at run time while payments flow
into the first: nobody is restarted, every payment settles."""

# ruff: noqa: F811 - the fixtures imported below are the tests' arguments

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import bcrypt
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gwcore import constants as C
from peers.harness.fedimintd import Federation
from tests.e2e.conftest import supervisor_rpc, tree  # noqa: F401 - tree: the fixture
from tests.regtest.helpers import federation_invoice

from .conftest import User
from .lnv1_world import (  # noqa: F401 - tree_env, v1, v1_user: the module's fixtures
    V1World,
    balance_of,
    tree_env,
    v1,
    v1_gateway_id,
    v1_user,
)
from .test_gateway_fedimint import _until

pytestmark = pytest.mark.timeout(900)
CLI = str(Path(sys.executable).parent / "gateway-cli")


def _metric(v1: V1World, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    text = v1.gw.http.get(C.PATH_METRICS).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    )


def test_admin_api_through_gunicorn(v1: V1World) -> None:
    gw, fed, api = v1.gw, {"federation_id": v1.federation_id}, v1.gw.url
    assert httpx.post(api + C.PATH_INFO).status_code == 401
    r = gw.http.post(C.PATH_CONNECT_FED, json={"invite_code": v1.fed.invite_code})
    assert r.status_code == 200 and r.json()["scid"] == v1.connected["scid"]  # twice: the same
    assert r.headers["X-Request-Id"]

    def states() -> dict:
        return {p["name"]: p["state"] for p in gw.post(C.PATH_INFO, {})["programs"]}

    # supervisord says RUNNING once a program has lived `startsecs`, which may be just after now
    _until("router and api RUNNING", 10, lambda: states()["gateway-router"] == "RUNNING")
    assert all(name.startswith(C.PROGRAM_PREFIX) for name in states())  # the gateway's only
    info = gw.post(C.PATH_INFO, {})
    node = v1.world.get("/v1/nodes/gateway")
    assert info["node"]["pub_key"] == node["pubkey"] and info["node"]["synced"]
    ln = gw.post(C.PATH_LIGHTNING, {})["balances"]
    assert ln["onchain_balance_sat"] == node["onchain_balance_sat"]
    assert ln["lightning_balance_msat"] == node["lightning_balance_msat"]
    assert {c["short_channel_id"] for c in ln["channels"]} == {
        c["scid_int"] for c in node["channels"]
    }
    assert gw.post(C.PATH_BALANCES, {})["total_msat"] >= gw.balance(v1.federation_id)
    gw.post(C.PATH_SET_FEES, {**fed, "base_msat": 0, "proportional_millionths": 10_000})
    gw.post(C.PATH_BALANCE, {"federation_id": "00" * 32}, status=404)
    gw.post(C.PATH_CONNECT_FED, {"invite_code": "fed11broken"}, status=400)

    # a deposit: in the mempool it is pending (409, ask again), confirmed it is claimed once
    address = gw.post(C.PATH_ADDRESS, fed)["address"]
    txid = v1.bitcoind.send(address, 50_000)
    pending = gw.post(C.PATH_DEPOSIT, {**fed, "txid": txid, "timeout_s": 0}, status=409)
    assert pending["code"] == "deposit_pending", pending
    v1.bitcoind.mine(1)

    def claimed() -> dict | None:
        r = gw.http.post(C.PATH_DEPOSIT, json={**fed, "txid": txid})
        if r.status_code == 409:  # the federation has not synced the block yet
            v1.bitcoind.mine(1)
            return None
        assert r.status_code == 200, r.text
        return dict(r.json())

    got = _until("the deposit claimed", 300, claimed)
    again = gw.post(C.PATH_DEPOSIT, {**fed, "txid": txid})
    assert again["already_credited"] and again["credited_msat"] == got["credited_msat"]
    assert again["balance_msat"] == gw.balance(v1.federation_id)

    health = httpx.get(api + C.PATH_HEALTH, timeout=10).json()
    assert health["router"] is True and health["extension"] is True
    # /metrics: the front's counters summed over gunicorn's workers, balances from the actors
    before = _metric(v1, "gateway_http_requests_total", route=C.PATH_HEALTH)
    for _ in range(12):
        httpx.get(api + C.PATH_HEALTH, timeout=10)
    for _ in range(4):  # whichever worker answers, it reports all workers' requests
        assert _metric(v1, "gateway_http_requests_total", route=C.PATH_HEALTH) >= before + 12
    balance = gw.balance(v1.federation_id)
    assert _metric(v1, "gateway_ecash_balance_msat", **fed) == balance
    assert _metric(v1, "gateway_federation_up", **fed) == 1


def test_dashboard_sessions_through_gunicorn(v1: V1World) -> None:
    with httpx.Client(base_url=v1.gw.url, timeout=30) as ui:
        assert ui.get("/ui/").status_code == 303
        token = re.search(r'name="login_token" value="(\w+)"', ui.get("/ui/login").text)[1]  # type: ignore[index]
        r = ui.post("/ui/login", data={"password": v1.tree["password"], "login_token": token})
        assert r.status_code == 303 and "mintgate_session" in ui.cookies
        page = ui.get("/ui/")
        csrf = re.search(r'name="csrf" value="(\w+)"', page.text)[1]  # type: ignore[index]
        copied = dict(ui.cookies)
        assert page.status_code == 200 and v1.federation_id in page.text
        # process health from supervisor: the gateway's programs, nothing of the world beside
        assert "gateway-router" in page.text and "regtestd" not in page.text
        assert ui.get(f"/ui/federations/{v1.federation_id}").status_code == 200
        assert ui.get("/ui/payments").status_code == 200
        assert ui.get("/ui/static/vendor/pico-2.1.1.min.css").status_code == 200
        # logging out on one worker ends the session on every worker (a copied cookie is dead)
        assert ui.post("/ui/logout", data={"csrf": csrf}).status_code == 303
        for _ in range(4):  # gunicorn spreads these over its workers
            assert httpx.get(v1.gw.url + "/ui/", cookies=copied).status_code == 303


def _cli(v1: V1World):  # type: ignore[no-untyped-def]
    env = {**os.environ, "GATEWAY_RPCPASSWORD": v1.tree["password"], "GATEWAY_ADDRESS": v1.gw.url}

    def run(*args: str, **kw: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, *args],
            capture_output=True,
            text=True,
            timeout=150,
            env={**env, **kw},
            stdin=subprocess.DEVNULL,
        )

    return run


def test_gateway_cli(v1: V1World) -> None:
    run, fed = _cli(v1), v1.federation_id
    f = ("--federation-id", fed)
    assert json.loads(run("version-hash").stdout)["version_hash"]
    assert json.loads(run("lightning").stdout)["node"]["alias"]
    assert fed in json.loads(run("balances").stdout)["balances_msat"]
    assert json.loads(run("balance", *f).stdout)["balance_msat"] == v1.gw.balance(fed)
    assert json.loads(run("set-fees", "--base-msat", "0", "--ppm", "10000").stdout)
    # e-cash out and back in (mint v1 notes): spent once however often asked, credited once
    key = ("--idempotency-key", "cli-" + os.urandom(4).hex())
    spend = run("spend-ecash", *f, "--amount-msat", "100000", *key)
    assert spend.returncode == 0, spend.stderr
    notes = json.loads(spend.stdout)["notes"]
    assert json.loads(run("spend-ecash", *f, "--amount-msat", "100000", *key).stdout)["notes"] == (
        notes
    )
    before = v1.gw.balance(fed)
    got = run("receive-ecash", notes)
    assert got.returncode == 0, got.stderr
    credited = json.loads(got.stdout)["amount_msat"]
    assert 0 < credited <= 100_000 and v1.gw.balance(fed) == before + credited
    assert json.loads(run("receive-ecash", notes).stdout)["amount_msat"] == credited
    assert v1.gw.balance(fed) == before + credited
    bad = run("receive-ecash", "fedimint-broken")
    assert bad.returncode != 0 and "invalid notes" in bad.stderr, bad.stderr
    # exit codes: not found 5, unauthorized 4, unreachable 3, bad input 2 (one line)
    missing = run("balance", "--federation-id", "00" * 32)
    assert missing.returncode == 5 and missing.stderr.startswith("error: not_found")
    wrong = run("info", GATEWAY_RPCPASSWORD="nope")
    assert wrong.returncode == 4 and "unauthorized" in wrong.stderr
    assert run("info", GATEWAY_ADDRESS="http://127.0.0.1:9").returncode == 3
    bad = run("withdraw", *f, "--amount", "lots", "--address", "x")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    # the operator's money: a withdrawal quoted, then sent once
    to = v1.bitcoind.new_address()
    wd = ("withdraw", *f, "--amount", "10000", "--address", to)
    quote = json.loads(run(*wd, "--preview").stdout)
    assert quote["preview"] and quote["amount_sat"] == 10_000
    key = ("--idempotency-key", "cli-withdraw-" + os.urandom(4).hex())
    sent = json.loads(run(*wd, *key).stdout)
    assert sent["txid"] and json.loads(run(*wd, *key).stdout) == sent  # once
    shown = json.loads(run("payment-log", "--kind", "withdrawal").stdout)["payments"]
    row = next(p for p in shown if p["id"] == sent["operation_id"])
    assert row["txid"] == sent["txid"] and row["amount_msat"] == 10_000_000
    # the payment log, paged back, and its summary
    log = json.loads(run("payment-log", "--limit", "100").stdout)["payments"]
    assert log and all(
        p["direction"] in ("incoming", "outgoing", "swap", "withdrawal")
        and p["status"] in ("settled", "failed", "pending", "unknown")
        for p in log
    )
    if len(log) >= 2:
        older = json.loads(run("payment-log", "--before", str(log[0]["created"])).stdout)
        assert [p["id"] for p in older["payments"]][:1] == [log[1]["id"]]
    summary = json.loads(run("payment-summary").stdout)
    assert set(summary["directions"]) == {"incoming", "outgoing", "swap", "withdrawal"}
    assert summary["directions"]["withdrawal"]["count"] >= 1 and summary["fees_earned_msat"] >= 0
    table = run("--table", "balances")
    assert table.returncode == 0 and "total_msat" in table.stdout and " sat" in table.stdout
    assert not table.stdout.lstrip().startswith("{")
    assert (
        "payment-summary" in run("help").stdout and "--federation" in run("help", "balance").stdout
    )
    # passwords: hashed from an argument (warned about) or a pipe
    h = run("create-password-hash", "pw")
    assert h.returncode == 0 and json.loads(h.stdout)["password_hash"].startswith("$2")
    assert "visible to other users" in h.stderr
    piped = subprocess.run(
        [CLI, "create-password-hash"], input="from a pipe\n", capture_output=True, text=True
    )
    assert piped.returncode == 0 and bcrypt.checkpw(
        b"from a pipe", json.loads(piped.stdout)["password_hash"].encode()
    )
    flag = run("--rpcpassword", v1.tree["password"], "config", GATEWAY_RPCPASSWORD="")
    assert flag.returncode == 0 and "visible to other users" in flag.stderr
    assert json.loads(flag.stdout)["worker_timeout_s"] > json.loads(flag.stdout)["pay_timeout_s"]
    words = json.loads(run("seed").stdout)["words"]  # every key and note comes back with them
    assert len(words if isinstance(words, list) else words.split()) == 12


def test_a_stray_htlc_is_failed_back_and_leave_waits_for_payments(
    v1: V1World, v1_user: User
) -> None:
    """An HTLC for our channel of the federation whose payment hash no contract offers:
    failed back. Leave is refused while a user's LNv1 payment of bob's hold invoice is in
    flight, and done once it settled; connecting again gives the same channel."""
    gw, fed, world = v1.gw, v1.federation_id, v1.world
    node = world.get("/v1/nodes/gateway")["pubkey"]
    stray = federation_invoice(node, 5_000, os.urandom(32), scid=v1.connected["scid"])
    paid = world.post("/v1/nodes/alice/pay", {"bolt11": stray, "timeout_s": 60})
    assert paid["status"] == "failed" and paid["failure"] == "incorrect_or_unknown_payment_details"

    preimage = os.urandom(32)
    payment_hash = hashlib.sha256(preimage).hexdigest()
    hold = world.post(
        "/v1/nodes/bob/invoices", {"amount_msat": 15_000, "payment_hash": payment_hash}
    )
    gateway_id = v1_gateway_id(gw, fed)
    result: dict = {}

    def pay() -> None:
        try:
            result["out"] = v1_user("ln-pay", hold["bolt11"], "--gateway-id", gateway_id)
        except BaseException as exc:
            result["error"] = repr(exc)

    def in_flight() -> int:
        info = next(f for f in gw.post(C.PATH_INFO, {})["federations"] if f["federation_id"] == fed)
        return int(info.get("in_flight", 0))

    payer = threading.Thread(target=pay)
    payer.start()
    try:
        _until("the payment in flight", 120, lambda: in_flight() >= 1)
        refused = gw.post(C.PATH_LEAVE_FED, {"federation_id": fed}, status=409)
        assert refused["code"] == "payments_in_flight" and "1 outgoing" in refused["error"]
    finally:
        world.post(f"/v1/nodes/bob/invoices/{payment_hash}/settle", {"preimage": preimage.hex()})
        payer.join(150)
    assert result.get("out") == {"Success": {"preimage": preimage.hex()}}, result
    _until("nothing in flight", 60, lambda: in_flight() == 0)
    run = _cli(v1)
    left = run("leave-fed", "--federation", fed)
    assert left.returncode == 0 and json.loads(left.stdout)["left"] == fed
    assert run("balance", "--federation", fed).returncode == 5  # not served any more
    back = run("connect-fed", v1.fed.invite_code)
    assert back.returncode == 0 and json.loads(back.stdout)["scid"] == v1.connected["scid"]


def test_connecting_another_federation_interrupts_nobody(
    v1: V1World, v1_user: User, federation1: Federation
) -> None:
    """While alice pays a user of the v1 federation again and again, the gateway connects a
    second (v2) federation: every payment settles, and no program is restarted."""
    gw, fed, world = v1.gw, v1.federation_id, v1.world
    rpc = supervisor_rpc(v1.tree)
    programs = [p["name"] for p in rpc.supervisor.getAllProcessInfo()]
    pids = {p: rpc.supervisor.getProcessInfo(p)["pid"] for p in programs}
    gateway_id = v1_gateway_id(gw, fed)
    results: list[str] = []
    stop = threading.Event()

    def pay_loop() -> None:
        while not stop.is_set():
            made = v1_user(
                "ln-invoice", "--amount", str(20_000 + len(results)), "--gateway-id", gateway_id
            )
            assert isinstance(made, dict)
            paid = world.post("/v1/nodes/alice/pay", {"bolt11": made["invoice"], "timeout_s": 60})
            results.append(paid["status"])

    payer = threading.Thread(target=pay_loop)
    payer.start()
    try:
        _until("a first payment", 120, lambda: results)
        connected = gw.post(C.PATH_CONNECT_FED, {"invite_code": federation1.invite_code})
        done = len(results)
        _until("a payment after the connect", 120, lambda: len(results) > done)
    finally:
        stop.set()
        payer.join(150)
    assert connected["state"] == "running" and connected["scid"] != v1.connected["scid"]
    assert results and all(r == "succeeded" for r in results), results
    assert {
        p: rpc.supervisor.getProcessInfo(p)["pid"] for p in programs
    } == pids  # nobody restarted
    balance_of(v1_user)  # the user's client finishes its claims


def test_metrics_and_the_summary_count_what_the_payment_log_shows(v1: V1World) -> None:
    """/metrics' payment counters, volumes and fees per direction, and the payment summary,
    agree with the payment log's rows (this module's payments: LNv1 in and out, a withdrawal)."""
    fed = v1.federation_id
    log = v1.gw.post(C.PATH_PAYMENT_LOG, {"federation_id": fed, "limit": 1000})["payments"]
    summary = v1.gw.post(C.PATH_PAYMENT_SUMMARY, {"federation_id": fed})["directions"]
    seen = {p["direction"] for p in log if p["status"] == "settled"}
    assert {"incoming", "outgoing", "withdrawal"} <= seen, seen
    for direction in seen:
        rows = [p for p in log if p["direction"] == direction]
        settled = [p for p in rows if p["status"] == "settled"]
        labels = {"federation_id": fed, "direction": direction}
        assert _metric(v1, "gateway_payments_total", status="settled", **labels) == len(settled)
        volume = sum(p["amount_msat"] for p in settled)
        assert _metric(v1, "gateway_payment_volume_msat_total", **labels) == volume
        fees = sum(p.get("fee_earned_msat") or 0 for p in settled)
        assert _metric(v1, "gateway_fees_earned_msat_total", **labels) == fees
        assert summary[direction]["count"] == len(rows), (direction, summary[direction])
