"""The whole gateway (the real process tree under supervisord) serving a real fedimintd
federation, with a real fedimint-cli user and a real bitcoind: connect by `fed11…` invite,
e-cash received (exactly the amount less the federation's fees, once) and spent (received by
the user), peg-in through walletv2 and a withdrawal back to the chain, bad input changing
nothing, and leaving."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from typing import Any

import httpx
import pytest
from coincurve import PrivateKey

from fmclient import derive, tbs
from fmclient.config import parse_client_config
from fmclient.derive import FederationSecrets
from fmclient.invite import InviteCode
from fmclient.mintv2 import parse_ecash
from gwcore.seed import GatewaySeed
from gwcore.values import amount_text
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation
from tests.e2e.conftest import World, ensure_lightning, tree  # noqa: F401 - tree: the fixture

from .conftest import User

pytestmark = pytest.mark.timeout(900)


class Gateway:
    def __init__(self, tree: dict) -> None:  # noqa: F811
        self.url = tree["api_url"]
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {tree['password']}"}, timeout=150
        )

    def post(self, path: str, body: dict, status: int = 200) -> dict:
        r = self.http.post(path, json=body)
        assert r.status_code == status, (path, r.status_code, r.text)
        return r.json()

    def public(self, path: str, body: object, status: int = 200) -> Any:
        r = httpx.post(self.url + path, json=body, timeout=150)
        assert r.status_code == status, (path, r.status_code, r.text)
        return r.json()

    def balance(self, fed: str) -> int:
        return self.post("/balance", {"federation_id": fed})["balance_msat"]


def refuses_bad_withdrawals(gw: Gateway, fed: str, bitcoind: Bitcoind, dust_sat: int) -> None:
    """An address of another network, dust, more than held (also at the preview): each a 400,
    nothing spent."""
    balance = gw.balance(fed)
    for body in [
        {"amount": 20_000, "address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"},
        {"amount": dust_sat, "address": bitcoind.new_address()},
        {"amount": 10**9, "address": bitcoind.new_address()},
    ]:
        gw.post("/withdraw", {"federation_id": fed, **body}, status=400)
    # more than held is refused at the quote already (gateway-cli --preview, the dashboard's
    # first step), saying why
    over = {"amount": balance // 1000 + 1_000, "address": bitcoind.new_address(), "preview": True}
    refused = gw.post("/withdraw", {"federation_id": fed, **over}, status=400)
    assert "does not cover this withdrawal" in refused["error"], refused
    assert gw.balance(fed) == balance


def withdrawn(gw: Gateway, fed: str, bitcoind: Bitcoind, to: str, sat: int) -> None:
    """Until the withdrawal of `sat` to `to` is on chain (mining), and in the payment log."""

    def on_chain() -> bool:
        bitcoind.mine(1)
        found = bitcoind.rpc("scantxoutset", "start", [f"addr({to})"])
        return round(found["total_amount"] * 100_000_000) == sat

    _until("the withdrawal on chain", 120, on_chain)
    log = gw.post("/payment_log", {"federation_id": fed})["payments"]
    assert any(p["direction"] == "withdrawal" and p["amount_msat"] == sat * 1000 for p in log)


def derived_from_the_seed(tree: dict, fed: Federation, module_public_key: str) -> None:  # noqa: F811
    """The gateway's LNv2 key and every mintv2 note it holds come from the seed it made at its
    first start: each note's nonce is recomputed from the words, its denomination and its
    tweak, and each tweak passes the mintv2 client's recovery filter."""
    words = GatewaySeed.load(tree["data_dir"]).words
    config = parse_client_config(fed.client_config)
    secrets = FederationSecrets.from_root(derive.bip39_root_secret(words), fed.federation_id)
    lnv2 = PrivateKey(derive.lnv2_gateway_secret(secrets.module(config.module_id("lnv2"))))
    assert module_public_key == lnv2.public_key.format(compressed=True).hex()
    mint = secrets.module(config.module_id("mintv2"))
    home = tree["data_dir"] / "actors" / fed.federation_id[:16]
    db = sqlite3.connect(home / "fedimint.sqlite")
    derived = set()
    for (outputs,) in db.execute("SELECT outputs FROM operations WHERE outputs IS NOT NULL"):
        for o in json.loads(outputs):
            tweak = bytes.fromhex(o["tweak"])
            assert derive.mintv2_tweak_passes(tweak, derive.mintv2_tweak_filter(mint))
            spend, r = derive.mintv2_note_keys(mint, o["d"], tweak)
            assert (o["secret"], o["r"]) == (spend.hex(), tbs.scalar_to_le(r).hex())
            derived.add(PrivateKey(spend).public_key.format(compressed=True).hex())
    held = [n for (n,) in db.execute("SELECT nonce FROM notes WHERE state = 'unspent'")]
    assert held and set(held) <= derived


def _until(what: str, timeout: float, check):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.5)


def test_the_gateway_serves_a_real_fedimint_federation(
    tree: dict,  # noqa: F811
    federation1: Federation,
    user: User,
    bitcoind: Bitcoind,
) -> None:
    gw = Gateway(tree)
    fed = federation1.federation_id
    # bad invites first: a typo is a 400 with the reason; guardians nobody answers at, a 503
    code = federation1.invite_code
    typo = code[:-3] + ("q" if code[-3] != "q" else "p") + code[-2:]
    assert "invalid invite code" in gw.post("/connect-fed", {"invite_code": typo}, 400)["error"]
    nowhere = str(InviteCode("ef" * 32, {0: "ws://127.0.0.1:9/"}))
    gw.post("/connect-fed", {"invite_code": nowhere}, 503)
    # a federation that lists only iroh endpoints (as production 0.13 setups do): refused with
    # what to do, then served through the guardians' ws URLs given by hand
    iroh_only = str(InviteCode(fed, {0: "iroh://" + "ab" * 32}))
    why = gw.post("/connect-fed", {"invite_code": iroh_only}, 400)["error"]
    assert "iroh" in why and "api_urls" in why
    connected = gw.post(
        "/connect-fed", {"invite_code": iroh_only, "api_urls": {"0": federation1.api_urls[0]}}
    )
    assert connected["federation_id"] == fed and connected["state"] == "running"
    assert (
        gw.post("/connect-fed", {"invite_code": federation1.invite_code})["scid"]
        == (connected["scid"])
    )  # twice: the same
    info = next(f for f in gw.post("/info", {})["federations"] if f["federation_id"] == fed)
    assert info["kind"] == "fedimint" and info["balance_msat"] == 0

    # LNv2: our routing info at / and /v1/ (null for a federation we do not serve), and once
    # every guardian added our URL, fedimint-cli finds and selects us
    url = info["lnv2_gateway_url"]
    routing = gw.public("/routing_info", fed)
    assert routing["module_public_key"] and routing["lightning_public_key"]
    assert routing["send_fee_default"] == {"base": 0, "parts_per_million": 10_000}
    assert gw.public("/v1/routing_info", fed) == routing
    assert gw.public("/routing_info", "ef" * 32) is None
    gw.public("/routing_info", {"federation_id": fed}, 400)
    federation1.add_gateway(url)
    assert str(user("module", "lnv2", "gateways", "select")).rstrip("/") == url.rstrip("/")

    # e-cash from the user, exactly its amount less the federation's fees, credited once
    text = str(user("module", "mintv2", "send", "64000"))
    ecash = parse_ecash(text)
    got = gw.public("/receive_ecash", {"notes": text})
    n_in = len(ecash.notes)
    assert got["federation_id"] == fed and got["amount"] == got["amount_msat"]
    leftover = ecash.amount_msat - 100 * n_in - got["amount_msat"]
    assert 100 <= leftover < 100 * 20 + 512, got  # the new notes' fees, and what is below 512
    assert gw.balance(fed) == got["amount_msat"]
    assert gw.public("/receive_ecash", {"notes": text}) == got  # the same notes: nothing more
    assert gw.balance(fed) == got["amount_msat"]
    derived_from_the_seed(tree, federation1, routing["module_public_key"])
    bad = gw.public("/receive_ecash", {"notes": "fedimintgarbage"}, status=400)
    assert "invalid notes" in bad["error"]

    # LNv2 out: the user pays bob's invoice through us; bob is paid, the user gets the
    # preimage, we claim the contract: our balance grows by the invoice plus our 1 % fee,
    # less the federation's fees on the claim
    world = World(tree["regtest"])
    ensure_lightning(world)
    bob = world.post("/v1/nodes/bob/invoices", {"amount_msat": 2_000_000})
    before_gw = gw.balance(fed)
    op = str(user("module", "lnv2", "send", bob["bolt11"], "--gateway", url))
    assert user("module", "lnv2", "await-send", op) == {"Success": bob["preimage"]}
    assert world.get(f"/v1/nodes/bob/invoices/{bob['payment_hash']}")["state"] == "settled"
    contract_msat = 2_000_000 + 20_000

    def claimed() -> int:
        gained = gw.balance(fed) - before_gw
        return gained if gained > 0 else 0

    gained = _until("the contract claimed", 60, claimed)
    assert contract_msat - 100 * 20 - 512 - 1000 < gained <= contract_msat, gained

    # an invoice nobody can route to: the payment fails, we forfeit, the user refunds at once
    # (and the user's client picks our gateway by itself: every guardian lists it)
    if world.http.get("/v1/nodes/carol").status_code != 200:
        world.post("/v1/nodes", {"name": "carol"})  # no channels
    carol = world.post("/v1/nodes/carol/invoices", {"amount_msat": 1_000_000})
    user("dev", "wait-complete")  # the last send's change in
    before_user = user("info")["total_amount_msat"]
    before_gw = gw.balance(fed)
    op = str(user("module", "lnv2", "send", carol["bolt11"]))  # no --gateway: the client finds us
    assert user("module", "lnv2", "await-send", op) == "Refunded"
    user("dev", "wait-complete")
    lost = before_user - user("info")["total_amount_msat"]
    assert 0 <= lost < 20_000, lost  # only the federation's fees of funding and refunding
    assert gw.balance(fed) == before_gw  # nothing taken, nothing paid

    # e-cash for the operator, received by the user
    before_spend = gw.balance(fed)
    before_user = user("info")["total_amount_msat"]  # type: ignore[index]
    spent = gw.post("/spend_ecash", {"federation_id": fed, "amount_msat": 20_000})
    assert spent["amount_msat"] == 20_480  # rounded up to the smallest note, 512 msat
    assert user("module", "mintv2", "receive", spent["notes"]) == "Success"
    user("dev", "wait-complete")
    assert user("info")["total_amount_msat"] > before_user  # type: ignore[index]
    balance = gw.balance(fed)
    assert balance <= before_spend - spent["amount_msat"]

    # peg-in through walletv2
    address = gw.post("/address", {"federation_id": fed})["address"]
    bitcoind.send(address, 150_000)
    bitcoind.mine(21)

    def claimed() -> dict | None:
        r = gw.http.post("/deposit", json={"federation_id": fed})
        if r.status_code == 409:
            bitcoind.mine(1)
            return None
        assert r.status_code == 200, r.text
        return r.json()

    dep = _until("the deposit claimed", 120, claimed)  # by this call or the actor's own scan
    assert dep["credited_msat"] > 140_000_000
    assert gw.balance(fed) == balance + dep["credited_msat"]
    assert gw.post("/deposit", {"federation_id": fed})["already_credited"]
    balance = gw.balance(fed)

    refuses_bad_withdrawals(gw, fed, bitcoind, 5_000)

    # a withdrawal: preview, then sent; it reaches the chain
    to = bitcoind.new_address("bech32m")
    quote = gw.post(
        "/withdraw", {"federation_id": fed, "amount": 30_000, "address": to, "preview": True}
    )
    assert (
        quote["preview"]
        and quote["total_msat"]
        == (30_000 + quote["fee_sat"]) * 1000 + (quote["federation_fee_msat"])
    )
    assert gw.balance(fed) == balance
    sent = gw.post(
        "/withdraw",
        {"federation_id": fed, "amount": 30_000, "address": to, "idempotency_key": "wd-000001"},
    )
    assert sent["amount_sat"] == 30_000 and sent["status"] in ("pending", "sent")
    paid = balance - gw.balance(fed)
    assert quote["total_msat"] <= paid < quote["total_msat"] + 100 * 40 + 512
    again = gw.post(
        "/withdraw",
        {"federation_id": fed, "amount": 30_000, "address": to, "idempotency_key": "wd-000001"},
    )
    assert again["operation_id"] == sent["operation_id"]
    assert balance - gw.balance(fed) == paid  # paid once
    withdrawn(gw, fed, bitcoind, to, 30_000)

    # the dashboard's page of the federation, as a browser without JavaScript uses it
    ui = httpx.Client(base_url=gw.url, timeout=150)
    page = ui.get("/ui/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    ui.post("/ui/login", data={"login_token": token, "password": tree["password"]})
    page = ui.get(f"/ui/federations/{fed}")
    assert page.status_code == 200 and "Fedimint" in page.text
    assert amount_text(gw.balance(fed)) in page.text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)  # type: ignore[union-attr]
    more = str(user("module", "mintv2", "send", "4096"))
    got_ui = ui.post(f"/ui/federations/{fed}/receive-ecash", data={"csrf": csrf, "notes": more})
    assert got_ui.status_code == 200 and 'id="ecash-received"' in got_ui.text, got_ui.text[-500:]

    # leave
    assert gw.post("/leave-fed", {"federation_id": fed})["left"] == fed
