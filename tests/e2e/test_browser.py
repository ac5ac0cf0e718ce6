"""Mintgate in headless Chromium (Debian's chromium, driven by Playwright) against the real tree:
log in, connect a federation, get a deposit address with its QR code and see the deposit
credited, withdraw after a fee preview, change fees, watch a payment appear in the live log and
the overview's chart, see channel liquidity, show the recovery keys after entering the password
again, the pages on a phone-sized screen and without JavaScript, leave the federation after
confirming, log out. No
page may break its Content-Security-Policy. A screenshot of each page is saved under the test's
output folder: `$TEST_OUTPUT_DIR/browser` (default `test-output/browser` in the repository,
git-ignored), kept after the run for people to look at."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from devworld.fedlib.client import FederationClient

from .conftest import World, ensure_lightning, wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def shots() -> Path:
    out = Path(os.environ.get("TEST_OUTPUT_DIR") or REPO / "test-output") / "browser"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    return out


def no_sideways_scroll(page, width: int) -> None:  # type: ignore[no-untyped-def]
    wide = page.evaluate(
        f"[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > {width + 2})"
        ".map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).slice(0, 8)"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 10, (page.url, wide)


def test_operator_runs_the_gateway_from_the_dashboard(
    tree: dict, shots: Path, tmp_path: Path
) -> None:
    world = World(tree["regtest"])
    ensure_lightning(world)
    alpha = tree["feds"]["alpha"]
    ui = tree["api_url"] + "/ui/"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        console_errors: list[str] = []  # a CSP violation shows here
        page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
        page.goto(ui)
        assert "/ui/login" in page.url
        page.screenshot(path=str(shots / "01-login.png"))
        page.fill("#password", "wrong")
        page.click("button[type=submit]")
        assert "Wrong password" in page.content()
        page.fill("#password", tree["password"])
        page.click("button[type=submit]")
        page.wait_for_url(ui)

        page.fill("#invite", "fed1notaninvite")
        page.click("form[action='/ui/connect'] button")
        page.wait_for_selector("#connect-status [role=alert]")  # a clear error, on the same page
        assert "Could not connect" in page.inner_text("#connect-status")
        page.fill("#invite", alpha["invite_code"])
        page.click("form[action='/ui/connect'] button")
        # the steps of the connect, as the router reports them, then the overview
        page.wait_for_selector("#connect-status ol[aria-label='connect progress']")
        page.screenshot(path=str(shots / "02-connecting.png"), full_page=True)
        page.wait_for_selector("a:has-text('alpha')", timeout=60_000)
        page.screenshot(path=str(shots / "02-overview.png"), full_page=True)  # after connecting

        page.click("a:has-text('alpha')")
        page.click("text=New deposit address")
        address = page.inner_text("#deposit-address")
        assert address.startswith("bcrt1") and page.locator(".qr svg").count() == 1
        page.screenshot(path=str(shots / "03-deposit.png"), full_page=True)
        world.send(address, "0.01")
        # no click needed: the page asks every few seconds and shows the credit once confirmed
        page.wait_for_selector("#credited", timeout=30_000)
        assert page.inner_text("#credited") == "1,000,000 sat"

        miner = json.loads(
            __import__("httpx")
            .post(
                world.rpc_url + "/wallet/miner",
                json={"method": "getnewaddress", "params": []},
                auth=world.rpc_auth,
            )
            .text
        )["result"]
        page.fill("#amount", "50000")
        page.fill("#address", miner)
        page.click("button:has-text('Preview the fee')")
        quote = page.inner_text("#withdraw-quote")  # the confirmation step: nothing sent yet
        assert "50,000 sat" in quote and "peg-out fee" in quote
        page.screenshot(path=str(shots / "04-withdraw-preview.png"), full_page=True)
        page.click("button:has-text('Confirm: send 50,000 sat')")
        # sent, or (on a slow machine, when the federation has not sent it within the actor's
        # wait) accepted and pending: both are right answers, and the page says which
        done = page.wait_for_selector("#withdraw-txid, #withdraw-pending", timeout=150_000)
        if done.get_attribute("id") == "withdraw-txid":
            assert len(done.inner_text()) == 64
        else:
            assert "Do not send it again" in done.inner_text()
        page.screenshot(path=str(shots / "05-withdraw.png"), full_page=True)

        page.fill("#base", "500")
        page.fill("#ppm", "2500")
        page.click("button:has-text('Apply')")
        page.wait_for_selector("text=500 msat + 2500 ppm")
        page.screenshot(path=str(shots / "06-fees.png"), full_page=True)

        page.goto(ui + "payments")
        user = FederationClient.join(tmp_path / "user" / "wallet.sqlite", alpha["invite_code"])
        _, invoice = user.ln_receive(42_000, "seen in the log")
        assert world.post("/v1/nodes/alice/pay", {"bolt11": invoice})["status"] == "succeeded"
        wait_until(lambda: "42 sat" in page.inner_text("tbody"), 20, "the payment in the live log")
        assert "alpha" in page.inner_text("tbody")  # by name
        # the 24 h summary above refreshes by itself too
        wait_until(
            lambda: "1 settled" in page.inner_text("#payment-summary"), 30, "the summary refreshed"
        )
        page.screenshot(path=str(shots / "07-payments.png"), full_page=True)

        page.goto(ui)  # the overview: node, liquidity per channel, the day's volume
        assert "Outbound (can send)" in page.content()
        assert page.locator(".liq").count() == len(world.get("/v1/nodes/gateway")["channels"]) > 0
        page.reload()  # the chart now holds the payment above
        assert page.locator("svg.chart rect.bar[height]:not([height='0.0'])").count() >= 1
        processes = page.inner_text("table[aria-label='process health']")
        for program in ("gateway-router", "gateway-lnrpc-extension", "gateway-api"):
            assert program in processes
        assert "regtestd" not in processes  # the simulated world's: not the gateway's
        assert "gateway-actor-" in processes and "crashed" not in processes
        page.screenshot(path=str(shots / "08-overview-lightning.png"), full_page=True)

        page.click("a:has-text('Recovery keys')")
        assert page.locator(".secret").count() == 0  # not before the password, again
        page.fill("#reauth", tree["password"])
        page.click("button:has-text('Show recovery keys')")
        assert len(page.inner_text(".secret")) == 64
        page.screenshot(path=str(shots / "09-recovery-keys.png"), full_page=True)

        phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
        phone.context.add_cookies(page.context.cookies())
        phone.goto(ui)
        no_sideways_scroll(phone, 390)
        phone.screenshot(path=str(shots / "10-phone.png"), full_page=True)
        for path in (f"federations/{alpha['federation_id']}", "payments"):
            phone.goto(ui + path)
            no_sideways_scroll(phone, 390)
        phone.screenshot(path=str(shots / "11-phone-payments.png"), full_page=True)
        phone.close()

        # without JavaScript: log in, and every read-only page is whole
        plain = browser.new_context(java_script_enabled=False).new_page()
        plain.goto(ui)
        plain.fill("#password", tree["password"])
        plain.click("button[type=submit]")
        plain.wait_for_url(ui)
        assert "Processes" in plain.content() and "alpha" in plain.inner_text("main")
        plain.goto(ui + "payments")
        assert "42 sat" in plain.inner_text("tbody") and "1 settled" in plain.inner_text("main")
        plain.goto(ui + f"federations/{alpha['federation_id']}")
        assert "Withdraw" in plain.inner_text("main")
        plain.context.close()

        page.goto(ui + f"federations/{alpha['federation_id']}")
        page.click("button:has-text('Leave this federation')")
        assert "Leave alpha?" in page.inner_text("[role=alert]")  # nothing left yet
        page.screenshot(path=str(shots / "12-leave-confirm.png"), full_page=True)
        page.click("button:has-text('Yes, leave alpha')")
        page.wait_for_url(ui)
        assert page.locator("article[aria-label='federation alpha']").count() == 0

        page.click("button:has-text('Log out')")
        page.wait_for_url("**/ui/login")
        page.goto(ui)
        assert "/ui/login" in page.url  # the session is over
        assert not [e for e in console_errors if "Content Security Policy" in e], console_errors
        browser.close()
    assert len(list(shots.glob("*.png"))) == 13
