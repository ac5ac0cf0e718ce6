"""The operator's tour of Mintgate in headless Chromium, on a connected real fedimintd federation
(walletv2, mintv2, lnv2) with a fedimint-cli user: deposit address with its QR code and the
deposit credited without a click, withdrawal after a fee preview, fees, a user's LNv2 receive
appearing in the live log, the summary and the overview's chart, channel liquidity, the process
list (the gateway's programs only), the seed words after the password again, the pages on a
phone-sized screen and without JavaScript, leaving after confirming, logging out. Used by
tests/fedimint/test_dashboard_fedimint.py; a screenshot of each step goes to `shots`."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from gwcore import constants as C
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation
from tests.e2e.conftest import World, ensure_lightning, wait_until

from .conftest import User

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
NAME = "fmgw-test"  # the harness's federation name


def no_sideways_scroll(page: Page, width: int) -> None:
    wide = page.evaluate(
        f"[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > {width + 2})"
        ".map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).slice(0, 8)"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 10, (page.url, wide)


def _federation_info(api: httpx.Client, fed: str) -> dict:
    feds = api.post(C.PATH_INFO, json={}).json()["federations"]
    return dict(next(f for f in feds if f["federation_id"] == fed))


def tour(tree: dict, federation: Federation, user: User, bitcoind: Bitcoind, shots: Path) -> None:
    world = World(tree["regtest"])
    ensure_lightning(world)
    fed = federation.federation_id
    ui = tree["api_url"] + "/ui/"
    api = httpx.Client(
        base_url=tree["api_url"],
        headers={"Authorization": f"Bearer {tree['password']}"},
        timeout=60,
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        # a step that waits on the gateway (a walletv2 address is ground: seconds of CPU) may
        # take long on a loaded machine: only a hang should fail
        page.set_default_timeout(150_000)
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
        page.fill("#invite", "fed11notaninvite")
        page.click("form[action='/ui/connect'] button")
        page.wait_for_selector("#connect-status [role=alert]")  # a clear error, on the same page
        assert "Could not connect" in page.inner_text("#connect-status")
        page.screenshot(path=str(shots / "02-overview.png"), full_page=True)

        page.click(f"a:has-text('{NAME}')")
        page.click("text=New deposit address")
        address = page.inner_text("#deposit-address")
        assert address.startswith("bcrt1") and page.locator(".qr svg").count() == 1
        page.screenshot(path=str(shots / "03-deposit.png"), full_page=True)
        bitcoind.send(address, 1_000_000)
        # no click needed: the page asks every few seconds and shows the credit once the
        # federation has it (walletv2 waits for confirmations: blocks are mined meanwhile)
        deadline = time.monotonic() + 180
        while not page.locator("#credited").count():
            assert time.monotonic() < deadline, "the deposit not credited on the page"
            bitcoind.mine(1)
            page.wait_for_timeout(1000)
        credited = page.inner_text("#credited")
        assert credited.endswith(" sat") and "999," in credited, credited  # less the fee

        page.fill("#amount", "50000")
        page.fill("#address", bitcoind.new_address())
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

        # a user's LNv2 receive through us, paid by alice: it appears in the live log
        page.goto(ui + "payments")
        url = _federation_info(api, fed)["lnv2_gateway_url"]
        invoice, _ = user("module", "lnv2", "receive", "42000", "--gateway", url)  # type: ignore[misc]
        paid = world.post("/v1/nodes/alice/pay", {"bolt11": str(invoice), "timeout_s": 60})
        assert paid["status"] == "succeeded", paid
        wait_until(lambda: "42 sat" in page.inner_text("tbody"), 30, "the payment in the live log")
        assert NAME in page.inner_text("tbody")  # by name
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

        page.click("a:has-text('Seed words')")
        assert page.locator(".secret").count() == 0  # not before the password, again
        page.fill("#reauth", tree["password"])
        page.click("button:has-text('Show the seed words')")
        words = page.locator(".secret").all_inner_texts()
        assert len(words) == 12 and " ".join(words) == api.post(C.PATH_SEED).json()["words"]
        page.screenshot(path=str(shots / "09-seed-words.png"), full_page=True)

        phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
        phone.context.add_cookies(page.context.cookies())
        phone.goto(ui)
        no_sideways_scroll(phone, 390)
        phone.screenshot(path=str(shots / "10-phone.png"), full_page=True)
        for path in (f"federations/{fed}", "payments"):
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
        assert "Processes" in plain.content() and NAME in plain.inner_text("main")
        plain.goto(ui + "payments")
        assert "42 sat" in plain.inner_text("tbody") and "1 settled" in plain.inner_text("main")
        plain.goto(ui + f"federations/{fed}")
        assert "Withdraw" in plain.inner_text("main")
        plain.context.close()

        # leave once nothing is in flight (the withdrawal's transaction accepted)
        wait_until(lambda: _federation_info(api, fed)["in_flight"] == 0, 60, "nothing in flight")
        page.goto(ui + f"federations/{fed}")
        page.click("button:has-text('Leave this federation')")
        assert f"Leave {NAME}?" in page.inner_text("[role=alert]")  # nothing left yet
        page.screenshot(path=str(shots / "12-leave-confirm.png"), full_page=True)
        page.click(f"button:has-text('Yes, leave {NAME}')")
        page.wait_for_url(ui)
        assert page.locator(f"article[aria-label='federation {NAME}']").count() == 0

        page.click("button:has-text('Log out')")
        page.wait_for_url("**/ui/login")
        page.goto(ui)
        assert "/ui/login" in page.url  # the session is over
        assert not [e for e in console_errors if "Content Security Policy" in e], console_errors
        browser.close()
    api.close()
