"""Bad input never costs money: a table of malformed, mistyped, out-of-range and wrong-network
values for every route, dashboard form and CLI command that moves money, each sent to the real
tree (gunicorn, the router, the actor of a connected real fedimintd 0.13 federation holding
e-cash, the extension), each answered with a 4xx (or a CLI exit code) and a one-line reason, and
after each the money compared to the msat with what it was before: the gateway's e-cash and
Lightning balances, the guardians' audit, the chain's mempool, the payment log and the fees.
A fedimint-cli user of the federation holds e-cash throughout: its balance is compared once,
across every module's case (each fedimint-cli call starts a client: seconds, not milliseconds)."""

# ruff: noqa: F811 - `tree`, the fixture imported below, is every test's argument

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from coincurve import PrivateKey
from embit import bech32

from fmclient.invite import InviteCode
from gwcore import constants as C
from gwcore.bitcoin_address import p2pkh, p2tr, p2wpkh
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation
from tests.e2e.conftest import World, bus, ensure_lightning, tree  # noqa: F401 - tree: the fixture

from .conftest import User
from .lnv1_world import balance_of
from .test_gateway_fedimint import Gateway

BIN = Path(sys.executable).parent
ZERO_FED = "00" * 32
LNV2 = json.loads(
    (Path(__file__).parents[1] / "fmclient" / "data" / "lnv2_vectors.json").read_text()
)
_KEY = PrivateKey(hashlib.sha256(b"bad input").digest()).public_key.format()
WRONG_NETWORK = {
    "mainnet p2wpkh": p2wpkh(_KEY, "mainnet"),
    "mainnet p2pkh": p2pkh(_KEY, "mainnet"),
    "mainnet p2tr": p2tr(_KEY[1:], "mainnet"),
    "testnet p2wpkh": p2wpkh(_KEY, "testnet"),
    "signet p2tr": p2tr(_KEY[1:], "signet"),
    # (testnet's base58 addresses are regtest's too, in bitcoind as here: not a wrong network)
}
NON_STANDARD = bech32.encode("bcrt", 2, b"\x01" * 20)  # witness v2: valid bech32m, anyone-can-spend
pytestmark = pytest.mark.timeout(900)


def _typo(address: str) -> str:
    """The address with one character changed in the middle: its checksum no longer holds."""
    i = len(address) // 2
    return address[:i] + ("q" if address[i] != "q" else "p") + address[i + 1 :]


@pytest.fixture(scope="module")
def world_ready(
    tree: dict,
    federation1: Federation,
    user: User,
    bitcoind: Bitcoind,
) -> Iterator[dict]:
    """The federation connected, the gateway holding e-cash the user gave it, the Lightning
    network, a regtest address of the chain's wallet; the user's balance checked at the end."""
    gw = Gateway(tree)
    fed = federation1.federation_id
    gw.post(C.PATH_CONNECT_FED, {"invite_code": federation1.invite_code})
    ensure_lightning(World(tree["regtest"]))
    gw.public(C.PATH_RECEIVE_ECASH, {"notes": str(user("module", "mintv2", "send", "200000"))})
    ecash = str(user("module", "mintv2", "send", "5000"))  # the user's, given to nobody
    user_msat = balance_of(user)
    yield {
        "fed": fed,
        "miner": bitcoind.new_address(),
        "federation": federation1,
        "bitcoind": bitcoind,
        "invite": federation1.invite_code,
        "ecash": ecash,
    }
    assert balance_of(user) == user_msat
    gw.http.close()


def _money(tree: dict, ready: dict) -> dict:
    """Everything a bad request could move, to the msat."""
    auth = {"Authorization": f"Bearer {tree['password']}"}
    with httpx.Client(base_url=tree["api_url"], headers=auth, timeout=60) as api:
        log = api.post(C.PATH_PAYMENT_LOG, json={"limit": 1000}).json()["payments"]
        info = api.post(C.PATH_INFO, json={}).json()
        balances = api.post(C.PATH_BALANCES, json={}).json()
    federation: Federation = ready["federation"]
    return {
        "balances": balances,
        "audit": [g.call("audit", auth=True) for g in federation.guardians],
        "mempool": sorted(ready["bitcoind"].rpc("getrawmempool")),
        "log": sorted((p["id"], p["status"], p.get("amount_msat")) for p in log),
        "federations": sorted(
            (f["federation_id"], f["state"], repr(f.get("fees"))) for f in info["federations"]
        ),
    }


def _check_each(tree: dict, ready: dict, cases: list, send: Callable) -> None:
    """Send every case; each must be refused with a one-line reason and move nothing."""
    problems = []
    before = _money(tree, ready)
    for case in cases:
        reason = send(case)
        after = _money(tree, ready)
        if reason is not None:
            problems.append(f"{case!r}: {reason}")
        if after != before:
            moved = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
            problems.append(f"{case!r} moved {moved}")
            before = after
    assert not problems, "\n".join(problems)


# -- the HTTP API ------------------------------------------------------------------------------

FED = "<federation>"
MINER = "<miner>"
TYPO = "<typo>"
BAD_INVITE = "<bad invite>"
BAD_NOTES = "<the user's e-cash with a typo>"


def _api_cases() -> list[tuple[str, dict, bool]]:
    """(path, body, with the password)."""
    w = {"federation_id": FED, "address": MINER, "amount": 10_000}
    withdraw = [
        *({**w, "amount": a} for a in (0, -5, "lots", 1.5, True, None, "10000", 10**30, 545)),
        {**w, "amount_sat": 0, "amount": None},
        *({**w, "address": a} for a in (TYPO, "", None, 42, "bcrt1", NON_STANDARD, " " * 3)),
        *({**w, "address": a} for a in WRONG_NETWORK.values()),
        {**w, "amount": "all", "address": TYPO},
        {**w, "amount": "all", "address": WRONG_NETWORK["mainnet p2wpkh"]},
        {**w, "federation_id": "zz"},
        {**w, "federation_id": ZERO_FED},
        {k: v for k, v in w.items() if k != "federation_id"},
        {**w, "preview": "yes"},
        {**w, "idempotency_key": 5},
        {**w, "idempotency_key": "short"},
        {**w, "idempotency_key": "x" * 65},
        {**w, "amount": 10**12},  # more than the gateway holds
    ]
    cases = [(C.PATH_WITHDRAW, b, True) for b in withdraw]
    cases.append((C.PATH_WITHDRAW, w, False))  # a good body without the password
    cases += [
        (C.PATH_PAY_INVOICE, b, False)
        for b in (
            {},
            {"federation_id": FED},
            {"federation_id": FED, "contract_id": "zz"},
            {"federation_id": FED, "contract_id": 5},
            {"federation_id": FED, "contract_id": "ab" * 32},  # no such contract
            {"federation_id": ZERO_FED, "contract_id": "ab" * 32},
            {"federation_id": "zz", "contract_id": "ab" * 32},
        )
    ]
    d = {"federation_id": FED}
    cases += [
        (C.PATH_DEPOSIT, b, True)
        for b in (
            {**d, "txid": "zz"},
            {**d, "txid": 5},
            {**d, "txid": "ab" * 32, "timeout_s": 0},  # no such transaction
            {**d, "transaction": "zz"},
            {**d, "transaction": "00ff"},
            {**d, "operation_id": "nope"},
            {**d, "txid": "ab" * 32, "operation_id": "ab" * 32},
            {**d, "timeout_s": -1},
            {**d, "timeout_s": "x"},
            {"federation_id": ZERO_FED},
        )
    ]
    f = {"federation_id": FED, "base_msat": 0, "proportional_millionths": 10_000}
    cases += [
        (C.PATH_SET_FEES, b, True)
        for b in (
            {**f, "base_msat": -1},
            {**f, "base_msat": "1"},
            {**f, "base_msat": 1.5},
            {**f, "base_msat": True},
            {**f, "proportional_millionths": -1},
            {**f, "proportional_millionths": 10**12},
            {**f, "federation_id": ZERO_FED},
            {"federation_id": FED},
            {**f, "base_msat": 10**30},
        )
    ]
    cases += [
        (C.PATH_CONNECT_FED, b, True)
        for b in (
            {},
            {"invite_code": ""},
            {"invite_code": 5},
            {"invite_code": "fed11abc"},
            {"invite_code": BAD_INVITE},
        )
    ]
    cases += [
        (C.PATH_LEAVE_FED, b, True)
        for b in ({}, {"federation_id": "zz"}, {"federation_id": ZERO_FED}, {"federation_id": 5})
    ]
    cases.append((C.PATH_LEAVE_FED, {"federation_id": FED}, False))
    send = {**LNV2["send_payment_payload"], "federation_id": FED}
    cases += [
        (C.PATH_SEND_PAYMENT, b, False)  # LNv2 clients: public
        for b in (
            {},
            {"federation_id": FED},
            {**send, "contract": {}},
            {**send, "contract": "zz"},
            {**send, "auth": "zz"},
            {**send, "invoice": {"Bolt11": "lnbcrt1garbage"}},
            send,  # a real client's payload, but its contract was never funded here
            {**send, "federation_id": ZERO_FED},
        )
    ]
    invoice = {**LNV2["create_bolt11_invoice_payload"], "federation_id": FED}
    cases += [
        (C.PATH_CREATE_BOLT11_INVOICE, b, False)
        for b in (
            {},
            {**invoice, "contract": {}},
            {**invoice, "amount": 0},
            {**invoice, "amount": -1},
            {**invoice, "amount": 10**30},
            {**invoice, "expiry_secs": 0},
            {**invoice, "federation_id": ZERO_FED},
        )
    ]
    cases += [
        (C.PATH_RECEIVE_ECASH, b, False)
        for b in (
            {},
            {"notes": ""},
            {"notes": 5},
            {"notes": "fedimintgarbage"},
            {"notes": BAD_NOTES},
            {"notes": "x" * 2_000_000},
        )
    ]
    e = {"federation_id": FED, "amount_msat": 1_000}
    cases += [
        (C.PATH_SPEND_ECASH, b, True)
        for b in (
            *({**e, "amount_msat": a} for a in (0, -1, 1.5, "1000", True, 10**15, 10**30)),
            {**e, "federation_id": ZERO_FED},
            {**e, "idempotency_key": "short"},
            {"amount_msat": 1_000},
        )
    ]
    cases.append((C.PATH_SPEND_ECASH, e, False))  # a good body without the password
    return cases


def _fill(value: object, tree: dict, ready: dict) -> object:
    if isinstance(value, dict):
        return {k: _fill(v, tree, ready) for k, v in value.items() if v is not None}
    places = {FED: ready["fed"], MINER: ready["miner"], TYPO: _typo(ready["miner"])}
    places[BAD_INVITE] = _typo(ready["invite"])
    places[BAD_NOTES] = _typo(ready["ecash"])
    return places.get(value, value) if isinstance(value, str) else value


def test_the_http_api_refuses_bad_input_and_moves_nothing(tree: dict, world_ready: dict) -> None:
    auth = {"Authorization": f"Bearer {tree['password']}"}

    def send(case: tuple[str, dict, bool]) -> str | None:
        path, body, with_password = case
        r = httpx.post(
            tree["api_url"] + path,
            json=_fill(body, tree, world_ready),
            headers=auth if with_password else {},
            timeout=120,
        )
        if not 400 <= r.status_code < 500:
            return f"answered {r.status_code} {r.text[:200]}"
        err = r.json()
        if not (err.get("code") and err.get("error")) or "\n" in err["error"]:
            return f"not a one-line reason: {err}"
        return None

    _check_each(tree, world_ready, _api_cases(), send)
    # and the reasons name what is wrong
    body = _fill({"federation_id": FED, "amount": 10_000, "address": TYPO}, tree, world_ready)
    r = httpx.post(tree["api_url"] + C.PATH_WITHDRAW, json=body, headers=auth, timeout=60)
    assert r.status_code == 400 and r.json()["code"] == "invalid_address", r.text
    assert "checksum" in r.json()["error"]
    body["address"] = WRONG_NETWORK["mainnet p2wpkh"]
    r = httpx.post(tree["api_url"] + C.PATH_WITHDRAW, json=body, headers=auth, timeout=60)
    assert r.status_code == 400 and r.json()["code"] == "invalid_address", r.text
    assert "mainnet" in r.json()["error"] and "regtest" in r.json()["error"]


# -- the dashboard's forms ---------------------------------------------------------------------


def test_the_dashboards_forms_refuse_bad_input_and_move_nothing(
    tree: dict, world_ready: dict
) -> None:
    fed, miner = world_ready["fed"], world_ready["miner"]
    ui = httpx.Client(base_url=tree["api_url"], timeout=120)
    token = re.search(r'name="login_token" value="(\w+)"', ui.get("/ui/login").text)[1]
    ui.post("/ui/login", data={"password": tree["password"], "login_token": token})
    csrf = re.search(r'name="csrf" value="(\w+)"', ui.get("/ui/").text)[1]
    page = f"/ui/federations/{fed}"
    w = {"amount": "10000", "address": miner}

    def sure() -> dict:  # the confirming step, each with its own idempotency key
        return {"confirm": "yes", "key": os.urandom(8).hex()}

    cases: list[tuple[str, dict, str]] = [
        *((f"{page}/withdraw", {**w, "amount": a}, "amount") for a in ("lots", "0", "-5", "1.5")),
        (f"{page}/withdraw", {**w, "address": _typo(miner)}, "checksum"),
        (f"{page}/withdraw", {**w, **sure(), "address": _typo(miner)}, "checksum"),
        (
            f"{page}/withdraw",
            {**w, **sure(), "address": WRONG_NETWORK["testnet p2wpkh"]},
            "network",
        ),
        (f"{page}/withdraw", {**w, **sure(), "address": ""}, "address"),
        (f"{page}/withdraw", {**w, **sure(), "amount": "545"}, "dust limit"),
        (f"{page}/withdraw", {**w, **sure(), "amount": str(10**12)}, ""),
        (f"/ui/federations/{ZERO_FED}/withdraw", {**w, **sure()}, ""),
        (f"{page}/fees", {"base_msat": "x", "ppm": "10000"}, "whole"),
        (f"{page}/fees", {"base_msat": "0", "ppm": "-1"}, "whole"),
        (f"{page}/claim", {"txid": "zz"}, "txid"),
        *(
            (f"{page}/spend-ecash", {"amount": a, "key": os.urandom(8).hex()}, "")
            for a in ("0", "-1", "lots", "1.0001", str(10**12))
        ),
        (f"{page}/receive-ecash", {"notes": ""}, ""),
        (f"{page}/receive-ecash", {"notes": "garbage"}, "invalid notes"),
        (f"{page}/receive-ecash", {"notes": _typo(world_ready["ecash"])}, "signature"),
        ("/ui/connect", {"invite_code": "garbage"}, "invite"),
        ("/ui/connect", {"invite_code": _typo(world_ready["invite"])}, "invite"),
        (f"/ui/federations/{ZERO_FED}/leave", {"confirm": "yes"}, ""),
    ]
    cases.append((f"{page}/withdraw", {**w, **sure(), "csrf": "forged"}, ""))  # a forged form

    def send(case: tuple[str, dict, str]) -> str | None:
        path, form, words = case
        r = ui.post(path, data={"csrf": csrf, **form})
        if not 400 <= r.status_code < 500:
            return f"answered {r.status_code}"
        if words and words not in r.text:
            shown = re.findall(r"<mark>(.*?)</mark>", r.text, re.S) or [r.text[-300:]]
            return f"the page does not say {words!r}: {shown}"
        return None

    try:
        _check_each(tree, world_ready, cases, send)
    finally:
        ui.close()


# -- the CLIs ----------------------------------------------------------------------------------


def _run(program: str, args: list[str], env: dict) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / program), *args],
        capture_output=True,
        text=True,
        timeout=150,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
    )


def _cli_refusal(out: subprocess.CompletedProcess[str]) -> str | None:
    if out.returncode == 0:
        return f"exit 0: {out.stdout[:200]}"
    if not out.stderr.startswith("error: ") or out.stderr.count("\n") != 1:
        return f"exit {out.returncode}, not one line: {out.stderr[:300]!r}"
    return None


def test_gateway_cli_refuses_bad_input_and_moves_nothing(tree: dict, world_ready: dict) -> None:
    fed, miner = world_ready["fed"], world_ready["miner"]
    env = {"GATEWAY_RPCPASSWORD": tree["password"], "GATEWAY_ADDRESS": tree["api_url"]}
    f = ["--federation-id", fed]
    wd = ["withdraw", *f, "--address", miner, "--amount"]
    cases: list[list[str]] = [
        *([*wd, a] for a in ("0", "-5", "lots", "1.5", "545", str(10**12), "")),
        ["withdraw", *f, "--amount", "10000", "--address", _typo(miner)],
        *(["withdraw", *f, "--amount", "10000", "--address", a] for a in WRONG_NETWORK.values()),
        ["withdraw", *f, "--amount", "10000", "--address", NON_STANDARD],
        ["withdraw", *f, "--amount", "all", "--address", _typo(miner)],
        ["withdraw", "--federation-id", "zz", "--amount", "10000", "--address", miner],
        ["withdraw", "--federation-id", ZERO_FED, "--amount", "10000", "--address", miner],
        [*wd, "10000", "--idempotency-key", "x"],
        ["withdraw", *f, "--amount", "10000"],
        ["set-fees", *f, "--base-msat", "-1", "--ppm", "1"],
        ["set-fees", *f, "--base-msat", "x", "--ppm", "1"],
        ["set-fees", *f, "--base-msat", "0", "--ppm", str(10**12)],
        ["set-fees", "--federation-id", ZERO_FED, "--base-msat", "0", "--ppm", "1"],
        ["deposit", *f, "--txid", "zz"],
        ["deposit", *f, "--transaction", "zz"],
        ["deposit", *f, "--txid", "ab" * 32, "--transaction", "00"],
        ["deposit", *f, "--timeout", "-1"],
        ["connect-fed", "garbage"],
        ["connect-fed", _typo(world_ready["invite"])],
        ["spend-ecash", *f, "--amount-msat", "0"],
        ["spend-ecash", *f, "--amount-msat", str(10**15)],
        ["spend-ecash", "--federation-id", ZERO_FED, "--amount-msat", "1000"],
        ["receive-ecash", "garbage"],
        ["receive-ecash", _typo(world_ready["ecash"])],
        ["leave-fed", "--federation-id", "zz"],
        ["leave-fed", "--federation-id", ZERO_FED],
    ]

    def send(args: list[str]) -> str | None:
        return _cli_refusal(_run("gateway-cli", args, env))

    _check_each(tree, world_ready, cases, send)


def test_connect_fed_is_no_port_scanner(tree: dict) -> None:
    """An invite naming a closed port, a port of another service, or a port that never
    answers: the admin API (and the dashboard's progress) says the same fixed thing each time,
    nothing of the host, the port or the OS's error."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen(8)

    def ssh() -> None:
        other.settimeout(30)
        with contextlib.suppress(OSError):
            while True:
                conn = other.accept()[0]
                conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
                conn.close()

    threading.Thread(target=ssh, daemon=True).start()
    api = httpx.Client(
        base_url=tree["api_url"],
        headers={"Authorization": f"Bearer {tree['password']}"},
        timeout=120,
    )
    answers = []
    try:
        for port in (closed.getsockname()[1], other.getsockname()[1]):
            for peers in (
                {0: f"ws://127.0.0.1:{port}/"},
                {0: f"ws://127.0.0.1:{port}/", 1: "ws://127.0.0.1:9/"},
            ):
                invite = str(InviteCode("ef" * 32, peers))
                r = api.post(C.PATH_CONNECT_FED, json={"invite_code": invite})
                answers.append((r.status_code, r.json()["error"]))
                assert str(port) not in r.text and "Errno" not in r.text, r.text
        progress = bus(
            tree, C.GATEWAY_SERVICE, C.METHOD_CONNECT_STATUS, {"federation_id": "ef" * 32}
        )
    finally:
        api.close()
        closed.close()
        other.close()
    assert len(set(answers)) == 1 and answers[0][0] == 503, answers
    assert "unreachable" in answers[0][1]
    assert progress["step"] == "failed" and progress["error"] == answers[0][1]
