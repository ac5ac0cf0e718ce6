"""Mintgate in headless Chromium (Debian's chromium, driven by Playwright) against the real
process tree serving a real fedimintd federation and its fedimint-cli user.

- Connecting: the operator pastes the guardian's `fed11…` invite with JavaScript on and
  follows the connect to running, the federation listed; leaves it; connects it again from an
  invite that lists only an iroh endpoint, refused in place until the guardian's ws URL is
  given in "Guardian API URLs"; and once more without JavaScript.
- Running it (tests/fedimint/dashboard_tour.py): a deposit address with its QR code and the
  deposit credited, a withdrawal after a fee preview, fees, a payment appearing in the live log
  and the overview's chart, channel liquidity, the seed words after the password again, the
  pages on a phone-sized screen and without JavaScript, leaving after confirming, logging out.

No page may break its Content-Security-Policy. Screenshots under `$TEST_OUTPUT_DIR/browser`
(default `test-output/browser` in the repository, git-ignored), kept for people to look at."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from fmclient.invite import InviteCode
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation
from tests.e2e.conftest import tree  # noqa: F401 - tree: the fixture

from .conftest import User
from .dashboard_tour import ARGS, CHROMIUM, tour

pytestmark = pytest.mark.timeout(900)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shots() -> Path:
    out = Path(os.environ.get("TEST_OUTPUT_DIR") or REPO / "test-output") / "browser"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    return out


def connect(page: Page, invite: str, api_urls: str = "", shot: Path | None = None) -> None:
    """Fill the overview's connect form (a screenshot of it to `shot`) and send it."""
    page.fill("#invite", invite)
    if api_urls:
        if not page.is_visible("#api-urls"):
            page.click("summary:has-text('Guardian API URLs')")
        page.fill("#api-urls", api_urls)
    if shot is not None:
        page.locator("form[action='/ui/connect']").screenshot(path=str(shot))
    page.click("form[action='/ui/connect'] button[type=submit]")


def leave(page: Page, ui: str, fed: Federation, name: str) -> None:
    page.goto(ui + f"federations/{fed.federation_id}")
    page.click("button:has-text('Leave this federation')")
    page.click(f"button:has-text('Yes, leave {name}')")
    page.wait_for_url(ui)
    assert page.locator(f"article[aria-label='federation {name}']").count() == 0


def test_operator_connects_a_real_fedimint_federation_from_the_dashboard(
    tree: dict,  # noqa: F811
    federation1: Federation,
    shots: Path,
) -> None:
    ui = tree["api_url"] + "/ui/"
    name = "fmgw-test"  # start_federation's
    card = f"article[aria-label='federation {name}']"
    assert federation1.invite_code.startswith("fed11")
    iroh_only = str(InviteCode(federation1.federation_id, {0: "iroh://" + "ab" * 32}))
    ws_url = federation1.api_urls[0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        console_errors: list[str] = []  # a CSP violation shows here
        page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
        page.goto(ui)
        page.fill("#password", tree["password"])
        page.click("button[type=submit]")
        page.wait_for_url(ui)

        # the guardian's fed11… invite, as pasted (JavaScript on: checked at once, then the
        # connect's steps as the router reports them, then the overview with the federation)
        connect(page, federation1.invite_code)
        page.wait_for_selector("#connect-status ol[aria-label='connect progress']")
        page.screenshot(path=str(shots / "c1-connecting.png"), full_page=True)
        page.wait_for_selector(card, timeout=120_000)
        assert "running" in page.inner_text(card)
        assert federation1.federation_id in page.inner_text(card)
        page.screenshot(path=str(shots / "c2-connected.png"), full_page=True)
        leave(page, ui, federation1, name)

        # an invite that lists only an iroh endpoint: refused in place, saying what to give
        connect(page, iroh_only)
        alert = page.wait_for_selector("#connect-status [role=alert]")
        assert "iroh only" in alert.inner_text() and "Guardian API URLs" in alert.inner_text()
        page.screenshot(path=str(shots / "c3-iroh-only-refused.png"), full_page=True)
        # with the guardian's ws URL given in the form: connected through it
        connect(page, iroh_only, f"0={ws_url}", shots / "c4-guardian-api-urls.png")
        page.wait_for_selector("#connect-status ol[aria-label='connect progress']")
        page.wait_for_selector(card, timeout=120_000)
        assert "running" in page.inner_text(card)
        page.screenshot(path=str(shots / "c5-connected-by-ws-url.png"), full_page=True)
        leave(page, ui, federation1, name)

        # without JavaScript: the same form, one request that answers once connected
        plain = browser.new_context(java_script_enabled=False).new_page()
        plain.goto(ui)
        plain.fill("#password", tree["password"])
        plain.click("button[type=submit]")
        plain.wait_for_url(ui)
        plain.fill("#invite", iroh_only)
        plain.click("summary:has-text('Guardian API URLs')")
        plain.fill("#api-urls", f"0={ws_url}")
        with plain.expect_navigation(timeout=150_000):  # the answer comes once connected
            plain.click("form[action='/ui/connect'] button[type=submit]")
        assert plain.url == ui
        assert "running" in plain.inner_text(card)
        plain.screenshot(path=str(shots / "c6-connected-without-javascript.png"), full_page=True)
        plain.context.close()

        assert not [e for e in console_errors if "Content Security Policy" in e], console_errors
        browser.close()


def test_operator_runs_the_gateway_from_the_dashboard(
    tree: dict,  # noqa: F811
    federation1: Federation,
    user: User,
    bitcoind: Bitcoind,
    shots: Path,
) -> None:
    """The federation the test above connected, run from the dashboard (dashboard_tour)."""
    tour(tree, federation1, user, bitcoind, shots)
    assert len(list(shots.glob("*.png"))) == 6 + 12
