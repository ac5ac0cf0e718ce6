"""Mintgate pages with Falcon's TestClient against a fake bus: session, CSRF, every page."""

from __future__ import annotations

import re
import time
from urllib.parse import urlencode

import bcrypt
import pytest
from falcon import testing

from fmclient.invite import InviteCode
from fmclient.mintv2 import ECash, SpendableNote
from gwcore import constants as C
from gwcore.errors import BusTimeout, InvalidInput, ServiceUnavailable
from services.api.app import create_app
from services.api.settings import ApiSettings

from .fakes import ADDRESS, FED, LIGHTNING, PASSWORD, SEED_WORDS, FakeBus


@pytest.fixture
def ui(tmp_path) -> tuple[testing.TestClient, FakeBus]:  # type: ignore[no-untyped-def]
    bus = FakeBus()
    settings = ApiSettings(
        password_hash=bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode(),
        run_dir=tmp_path / "run",
    )
    return testing.TestClient(create_app(settings, bus)), bus


def post_login(c: testing.TestClient, password: str, **kw: object) -> testing.Result:
    """The login form as a browser sends it: the page's token in a field and in its cookie."""
    page = c.simulate_get("/ui/login")
    token = page.cookies["mintgate_login"].value
    assert f'name="login_token" value="{token}"' in page.text
    return c.simulate_post(
        "/ui/login",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=f"login_token={token}&password={password.replace(' ', '+')}",
        cookies={"mintgate_login": token},
        **kw,  # type: ignore[arg-type]
    )


def login(c: testing.TestClient) -> tuple[dict, str]:
    r = post_login(c, PASSWORD)
    assert r.status_code == 303 and r.headers["location"].endswith("/ui/")
    cookie = r.cookies["mintgate_session"]
    assert cookie.http_only and cookie.same_site.lower() == "strict"
    cookies = {"mintgate_session": cookie.value}
    page = c.simulate_get("/ui/", cookies=cookies)
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
    return cookies, csrf


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_login_required_and_wrong_password(ui) -> None:  # type: ignore[no-untyped-def]
    c, _ = ui
    assert c.simulate_get("/ui/").status_code == 303  # to the login page
    assert "Log in" in c.simulate_get("/ui/login").text
    bad = post_login(c, "nope")
    assert bad.status_code == 401 and "Wrong password" in bad.text
    # the login form needs its own token (a form posted from another site has none)
    for cookies in ({}, {"mintgate_login": "ab" * 16}):
        r = c.simulate_post("/ui/login", body=f"password={PASSWORD}", headers=FORM, cookies=cookies)
        assert r.status_code == 403 and "mintgate_session" not in r.cookies
    assert (
        c.simulate_get("/ui/", cookies={"mintgate_session": "1.2.3"}).status_code == 303
    )  # forged


def test_pages_and_forms(ui) -> None:  # type: ignore[no-untyped-def]
    c, bus = ui
    cookies, csrf = login(c)
    overview = c.simulate_get("/ui/", cookies=cookies).text
    assert "alpha" in overview and "1.234 sat" in overview and "Connect a federation" in overview
    # forms need the CSRF token
    assert (
        c.simulate_post(
            "/ui/connect", body="invite_code=fed1x", headers=FORM, cookies=cookies
        ).status_code
        == 403
    )
    bad = c.simulate_post(
        "/ui/connect", body=f"invite_code=fed1x&csrf={csrf}", headers=FORM, cookies=cookies
    )
    assert bad.status_code == 400 and "invalid invite code" in bad.text  # checked by the API
    assert not [m for _, m, _, _ in bus.calls if m == C.METHOD_CONNECT_FED]
    invite = str(InviteCode(FED, {0: "ws://127.0.0.1:9/"}))
    r = c.simulate_post(
        "/ui/connect", body=f"invite_code={invite}&csrf={csrf}", headers=FORM, cookies=cookies
    )
    assert r.status_code == 303 and bus.calls[-1][1] == C.METHOD_CONNECT_FED
    page = c.simulate_get(f"/ui/federations/{FED}", cookies=cookies)
    assert page.status_code == 200 and "Withdraw" in page.text and "Fees" in page.text
    # the modules the federation was set up with (here a v1 federation's)
    assert '<code class="mono">mint</code>, <code class="mono">wallet</code>' in page.text
    addr = c.simulate_post(
        f"/ui/federations/{FED}/address", body=f"csrf={csrf}", headers=FORM, cookies=cookies
    )
    assert addr.status_code == 200 and "<svg" in addr.text  # the QR code
    fees = c.simulate_post(
        f"/ui/federations/{FED}/fees",
        body=f"csrf={csrf}&base_msat=7&ppm=9",
        headers=FORM,
        cookies=cookies,
    )
    set_fees = [b for _, m, b, _ in bus.calls if m == C.METHOD_ACTOR_SET_FEES]
    assert fees.status_code == 200 and set_fees[-1] == {
        "base_msat": 7,
        "proportional_millionths": 9,
    }
    # withdraw: a fee preview first, nothing sent; then the confirmed send shows the txid
    preview = c.simulate_post(
        f"/ui/federations/{FED}/withdraw",
        body=f"csrf={csrf}&amount=1000&address={ADDRESS}",
        headers=FORM,
        cookies=cookies,
    )
    assert "peg-out fee" in preview.text and "1,150 sat" in preview.text
    assert 'name="confirm" value="yes"' in preview.text
    sends = [b for _, m, b, _ in bus.calls if m == C.METHOD_ACTOR_WITHDRAW]
    assert sends[-1]["preview"] is True
    sent = c.simulate_post(
        f"/ui/federations/{FED}/withdraw",
        body=f"csrf={csrf}&amount=1000&address={ADDRESS}&confirm=yes",
        headers=FORM,
        cookies=cookies,
    )
    assert "ee" * 32 in sent.text and "fee 150 sat" in sent.text
    assert [b for _, m, b, _ in bus.calls if m == C.METHOD_ACTOR_WITHDRAW][-1]["preview"] is False
    key = re.search(r'name="key" value="([0-9a-f]{32})"', preview.text).group(1)
    c.simulate_post(
        f"/ui/federations/{FED}/withdraw",
        body=f"csrf={csrf}&amount=1000&address={ADDRESS}&confirm=yes&key={key}",
        headers=FORM,
        cookies=cookies,
    )
    send = [kw for _, m, b, kw in bus.calls if m == C.METHOD_ACTOR_WITHDRAW][-1]
    assert send["idempotent"] is False and send["message_id"].endswith(":" + key)
    # leave asks first
    ask = c.simulate_post(
        f"/ui/federations/{FED}/leave", body=f"csrf={csrf}", headers=FORM, cookies=cookies
    )
    assert ask.status_code == 200 and "Yes, leave alpha" in ask.text
    assert not any(m == C.METHOD_LEAVE_FED for _, m, _, _ in bus.calls)
    left = c.simulate_post(
        f"/ui/federations/{FED}/leave",
        body=f"csrf={csrf}&confirm=yes",
        headers=FORM,
        cookies=cookies,
    )
    assert left.status_code == 303 and bus.calls[-1][1] == C.METHOD_LEAVE_FED
    payments = c.simulate_get("/ui/payments", cookies=cookies)
    assert payments.status_code == 200 and "hx-get" in payments.text and "incoming" in payments.text
    rows = c.simulate_get("/ui/payments/rows", params={"direction": "incoming"}, cookies=cookies)
    assert rows.text.count("<tr>") == 1
    assert c.simulate_get("/ui/static/vendor/htmx-2.0.11.min.js").status_code == 200
    out = c.simulate_post("/ui/logout", body=f"csrf={csrf}", headers=FORM, cookies=cookies)
    assert out.status_code == 303


def test_a_session_is_valid_in_every_worker() -> None:
    """gunicorn runs several workers: a cookie made by one must open pages on another."""
    from services.api.auth import PasswordCheck
    from services.api.sessions import Sessions

    hash_ = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    a, b = Sessions(PasswordCheck(hash_), "s"), Sessions(PasswordCheck(hash_), "s")  # two workers
    token, csrf = a.issue()
    assert b.verify(token) == csrf
    assert b.verify(token[:-1] + ("0" if token[-1] != "0" else "1")) is None  # tampered
    assert (
        Sessions(
            PasswordCheck(bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()), "s"
        ).verify(token)
        is None
    )  # new password: sessions end


def test_overview_shows_the_node_liquidity_and_volume_chart(ui) -> None:  # type: ignore[no-untyped-def]
    c, bus = ui
    cookies, _ = login(c)
    page = c.simulate_get("/ui/", cookies=cookies).text
    assert "Outbound (can send)" in page and "7,000 sat" in page and "3,000 sat" in page
    assert "registered until" in page and "(in 9 min)" in page  # the registration's expiry
    assert LIGHTNING["node"]["pub_key"] in page and "<strong>gateway</strong>" in page
    assert "Fees earned (24 h)" in page
    health = page[page.index('aria-label="process health"') :]
    for program, state in (
        ("gateway-router", "running"),
        ("gateway-actor-abab", "restarting"),
        ("gateway-lnrpc-extension", "crashed"),
    ):
        row = health[health.index(program) :]
        assert row[: row.index("</tr>")].count(state) == 1, program
    assert "1099511627776" not in page and "1x0x0" in page  # scids as block x tx x output
    assert 'aria-label="outbound 7,000 sat, inbound 3,000 sat"' in page
    assert '<svg role="img" aria-labelledby="volume-chart-label"' in page
    assert '<figcaption id="volume-chart-label">Settled volume per hour' in page
    assert page.count('class="bar"') == 24  # one bar per hour of the last day
    bus.fail = ServiceUnavailable("extension down")
    down = c.simulate_get("/ui/", cookies=cookies)  # the bus refuses everything but the listing
    assert down.status_code == 200 and "The Lightning extension does not answer" in down.text


def test_payments_filters_keep_their_choice(ui) -> None:  # type: ignore[no-untyped-def]
    c, bus = ui
    cookies, _ = login(c)
    page = c.simulate_get(
        "/ui/payments", params={"direction": "outgoing", "status": "failed"}, cookies=cookies
    ).text
    assert (
        "<option selected>outgoing</option>" in page and "<option selected>failed</option>" in page
    )
    assert f'<option value="{FED}">alpha</option>' in page
    logs = [b for _, m, b, _ in bus.calls if m == C.METHOD_ACTOR_PAYMENT_LOG]
    assert logs  # the filter went to the actors
    rows = c.simulate_get(
        "/ui/payments/rows", params={"direction": "outgoing", "status": "failed"}, cookies=cookies
    )
    assert rows.text.count("<tr>") == 1 and "2027-01-15" in rows.text  # times shown as dates
    assert C.DUPLICATE_PAYMENT_REASON in rows.text  # why it failed


def test_payment_summary_refreshes_and_follows_the_federation_filter(ui) -> None:  # type: ignore[no-untyped-def]
    c, bus = ui
    cookies, _ = login(c)
    page = c.simulate_get("/ui/payments", params={"federation_id": FED}, cookies=cookies).text
    # the summary and chart are polled beside the log, with the same filter
    assert f'hx-get="/ui/payments/summary?federation_id={FED}"' in page
    assert f'hx-get="/ui/payments/rows?federation_id={FED}"' in page
    bus.calls.clear()
    frag = c.simulate_get("/ui/payments/summary", params={"federation_id": FED}, cookies=cookies)
    assert frag.status_code == 200 and "<html" not in frag.text
    assert "outgoing (24 h)" in frag.text and '<svg role="img"' in frag.text
    assert "<span>now</span>" in frag.text  # the chart's right edge is the present
    asked = [(s, b) for s, m, b, _ in bus.calls if m == C.METHOD_ACTOR_PAYMENT_SUMMARY]
    assert asked and all(s.endswith(FED) for s, _ in asked)
    assert c.simulate_get("/ui/payments/summary").status_code == 303  # a session is needed
    rows = c.simulate_get("/ui/payments/rows", cookies=cookies).text
    assert "<td>alpha</td>" in rows  # federations by name, not by id


def test_the_seed_words_need_the_password_again(ui) -> None:  # type: ignore[no-untyped-def]
    c, bus = ui
    cookies, csrf = login(c)
    ask = c.simulate_get("/ui/secrets", cookies=cookies)
    assert ask.status_code == 200 and 'type="password"' in ask.text and "sausage" not in ask.text
    assert not any(m == C.METHOD_SEED for _, m, _, _ in bus.calls)
    wrong = c.simulate_post(
        "/ui/secrets", body=f"csrf={csrf}&password=nope", headers=FORM, cookies=cookies
    )
    assert wrong.status_code == 401 and "sausage" not in wrong.text
    no_csrf = c.simulate_post(
        "/ui/secrets", body=f"password={PASSWORD.replace(' ', '+')}", headers=FORM, cookies=cookies
    )
    assert no_csrf.status_code == 403
    shown = c.simulate_post(
        "/ui/secrets",
        body=f"csrf={csrf}&password={PASSWORD.replace(' ', '+')}",
        headers=FORM,
        cookies=cookies,
    )
    assert shown.status_code == 200
    words = re.findall(r'<code class="mono secret">(\w+)</code>', shown.text)
    assert " ".join(words) == SEED_WORDS  # in order, numbered
    assert shown.headers["cache-control"] == "no-store"
    assert c.simulate_get("/ui/secrets").status_code == 303  # no session: to the login page


def test_connect_with_progress_and_deposit_confirmations_awaited(ui) -> None:  # type: ignore[no-untyped-def]
    c, bus = ui
    cookies, csrf = login(c)
    htmx = {**FORM, "HX-Request": "true"}
    bad = c.simulate_post(
        "/ui/connect", body=f"invite_code=fed1y&csrf={csrf}", headers=htmx, cookies=cookies
    )
    assert bad.status_code == 200 and "Could not connect: invalid invite code" in bad.text
    assert not [m for _, m, _, _ in bus.calls if m == C.METHOD_CONNECT_FED]  # checked at once
    invite = str(InviteCode(FED, {0: "ws://127.0.0.1:9/"}))
    ok = c.simulate_post(
        "/ui/connect",
        body=f"invite_code={invite}&csrf={csrf}",
        headers=htmx,
        cookies=cookies,
    )
    # the connect runs on; the fragment follows its steps
    assert ok.status_code == 200 and f'hx-get="/ui/connect/{FED}?n=0&amp;since=' in ok.text
    since = re.search(r"since=(\d+)", ok.text).group(1)
    assert abs(int(since) / 1000 - time.time()) < 5  # when it was sent
    deadline = time.monotonic() + 5
    while not [m for _, m, _, _ in bus.calls if m == C.METHOD_CONNECT_FED]:
        assert time.monotonic() < deadline, "the connect never reached the router"
        time.sleep(0.01)
    progress = f"/ui/connect/{FED}"
    early = c.simulate_get(progress, params={"n": "3"}, headers=htmx, cookies=cookies)
    assert f'hx-get="/ui/connect/{FED}?n=4&amp;since=0"' in early.text  # not at the router yet
    # what the router says of an earlier connect of this federation (running, before it was
    # left; or failed) is not this connect's end: asked again
    for step in ("running", "failed"):
        bus.connect_progress = {"federation_id": FED, "step": step, "error": "x"}
        bus.connect_progress["updated"] = int(since) / 1000 - 1
        old = c.simulate_get(
            progress, params={"n": "1", "since": since}, headers=htmx, cookies=cookies
        )
        assert "HX-Redirect" not in old.headers and "Could not connect" not in old.text
        assert f'hx-get="/ui/connect/{FED}?n=2&amp;since={since}"' in old.text
    bus.connect_progress["updated"] = int(since) / 1000 + 0.002  # this connect's
    new = c.simulate_get(progress, params={"n": "2", "since": since}, headers=htmx, cookies=cookies)
    assert "Could not connect: x" in new.text
    bus.connect_progress = {"federation_id": FED, "step": "registering", "error": None}
    mid = c.simulate_get(progress, params={"n": "4"}, headers=htmx, cookies=cookies).text
    assert mid.count('class="done"') == 2 and '<li class="now">Start the actor' in mid
    bus.connect_progress = {"federation_id": FED, "step": "running", "error": None}
    done = c.simulate_get(progress, headers=htmx, cookies=cookies)
    assert done.headers["HX-Redirect"] == "/ui/" and "hx-get" not in done.text
    bus.connect_progress = {"federation_id": FED, "step": "failed", "error": "unreachable"}
    failed = c.simulate_get(progress, headers=htmx, cookies=cookies)
    assert "Could not connect: unreachable" in failed.text and "hx-get" not in failed.text
    tired = c.simulate_get(progress, params={"n": "160"}, headers=htmx, cookies=cookies)
    assert "Could not connect: unreachable" in tired.text
    bus.connect_progress = None
    tired = c.simulate_get(progress, params={"n": "160"}, headers=htmx, cookies=cookies)
    assert "no progress for two minutes" in tired.text  # it does not poll for ever
    odd = c.simulate_get(progress, params={"n": "²"}, headers=htmx, cookies=cookies)
    assert odd.status_code == 200 and f"/ui/connect/{FED}?n=1" in odd.text
    bus.fail_on[C.METHOD_CONNECT_STATUS] = BusTimeout("gateway.connect_status: no reply")
    slow = c.simulate_get(progress, params={"n": "5"}, headers=htmx, cookies=cookies).text
    assert "still following the connect" in slow and "?n=6" in slow  # not the end of it
    del bus.fail_on[C.METHOD_CONNECT_STATUS]
    bus.fail = InvalidInput("the federation at this URL is not the one the invite names")
    plain = c.simulate_post(  # without JavaScript: a page with the error and its status
        "/ui/connect", body=f"invite_code={invite}&csrf={csrf}", headers=FORM, cookies=cookies
    )
    assert plain.status_code == 400 and "not the one the invite names" in plain.text
    bus.fail = None
    page = c.simulate_post(
        f"/ui/federations/{FED}/address", body=f"csrf={csrf}", headers=FORM, cookies=cookies
    )
    assert 'hx-post="/ui/federations/' + FED + '/deposit-status"' in page.text  # it will ask
    status = f"/ui/federations/{FED}/deposit-status"
    waiting = c.simulate_post(
        status, body=f"csrf={csrf}&operation_id=unconfirmed-op", headers=htmx, cookies=cookies
    )
    assert "Waiting for the deposit" in waiting.text and "0 confirmation(s)" in waiting.text
    assert 'hx-trigger="every 4s"' in waiting.text  # and keeps asking
    done = c.simulate_post(
        status, body=f"csrf={csrf}&operation_id=op1", headers=htmx, cookies=cookies
    )
    assert "5,000 sat" in done.text and "hx-trigger" not in done.text  # and stops
    assert (
        c.simulate_post(status, body="operation_id=op1", headers=htmx, cookies=cookies).status_code
        == 403
    )


def test_a_fedimint_invite_connects_with_or_without_guardian_urls(ui) -> None:  # type: ignore[no-untyped-def]
    """A real Fedimint invite (`fed11…`) passes the check at once; the guardians' ws URLs from
    the form (`PEER=URL` a line) go with it; a bad one is an error in place, nothing sent."""
    c, bus = ui
    cookies, csrf = login(c)
    htmx = {**FORM, "HX-Request": "true"}
    fed = "ef" * 32
    invite = str(InviteCode(fed, {0: "ws://127.0.0.1:9/", 1: "iroh://" + "ab" * 32}))
    assert invite.startswith("fed11")

    def connects() -> list[dict]:
        return [b for _, m, b, _ in bus.calls if m == C.METHOD_CONNECT_FED]

    def post(api_urls: str, headers: dict = htmx) -> testing.Result:
        form = {"csrf": csrf, "invite_code": invite, "api_urls": api_urls}
        return c.simulate_post(
            "/ui/connect", body=urlencode(form), headers=headers, cookies=cookies
        )

    # guardian 1 lists only iroh: its ws URL is needed, and the form says so at once
    bad = post("")
    assert "Could not connect" in bad.text and "iroh only" in bad.text and "hx-get" not in bad.text
    for wrong, why in [("1=http://x/", "must be ws://"), ("one", "is not PEER=URL")]:
        assert why in post(wrong).text
    assert connects() == []
    ok = post("1=ws://127.0.0.1:10/\r\n0=wss://g0.example/")
    assert f'hx-get="/ui/connect/{fed}?n=0&amp;since=' in ok.text  # checked; the connect runs on
    deadline = time.monotonic() + 5
    while not connects():
        assert time.monotonic() < deadline, "the connect never reached the router"
        time.sleep(0.01)
    assert connects() == [
        {"invite_code": invite, "api_urls": {"1": "ws://127.0.0.1:10/", "0": "wss://g0.example/"}}
    ]
    # an invite whose guardians all list ws needs none; without JavaScript, one request
    invite = str(InviteCode(fed, {0: "ws://127.0.0.1:9/"}))
    assert f'hx-get="/ui/connect/{fed}?n=0&amp;since=' in post("").text
    assert post("", FORM).status_code == 303 and connects()[-1] == {"invite_code": invite}
    plain = post("0=ws://127.0.0.1:11/", FORM)
    assert plain.status_code == 303
    assert connects()[-1] == {"invite_code": invite, "api_urls": {"0": "ws://127.0.0.1:11/"}}
    page = c.simulate_get("/ui/", cookies=cookies).text
    assert 'name="api_urls"' in page and 'placeholder="fed11' in page  # the form has the field


def test_process_states_read_as_the_operator_says_them() -> None:
    from services.api.formatting import health as _health

    assert [_health(s) for s in ("RUNNING", "BACKOFF", "STARTING", "FATAL", "EXITED")] == [
        "running",
        "restarting",
        "restarting",
        "crashed",
        "crashed",
    ]


def test_guessing_the_password_is_throttled(ui) -> None:  # type: ignore[no-untyped-def]
    """Ten wrong passwords from one address: further new tries wait (429), on the API and on the
    dashboard alike; another address is not affected, nor is a password already found right."""
    c, _ = ui
    bearer = {"Authorization": f"Bearer {PASSWORD}"}
    assert c.simulate_post(C.PATH_INFO, headers=bearer).status_code == 200  # the operator, once
    for _ in range(10):
        guess = c.simulate_post(C.PATH_INFO, headers={"Authorization": "Bearer guess"})
        assert guess.status_code == 401
    blocked = c.simulate_post(C.PATH_INFO, headers={"Authorization": "Bearer another guess"})
    assert blocked.status_code == 429 and blocked.json["code"] == "rate_limited"
    login = post_login(c, "more guesses")
    assert login.status_code == 429 and "Too many wrong passwords" in login.text
    assert 0 < int(login.headers["Retry-After"]) <= 300 and "Retry-After" in blocked.headers
    assert c.simulate_post(C.PATH_INFO, headers=bearer).status_code == 200  # not locked out
    elsewhere = c.simulate_post(
        C.PATH_INFO, headers={"Authorization": "Bearer guess"}, remote_addr="10.0.0.7"
    )
    assert elsewhere.status_code == 401  # its own count


def test_a_password_over_bcrypts_72_bytes_is_refused_as_such(ui) -> None:  # type: ignore[no-untyped-def]
    """bcrypt reads 72 bytes of a password (older releases cut the rest off, so the right one
    plus anything would pass): a longer one is refused with its reason, on the API and the
    dashboard, and costs no guess."""
    c, _ = ui
    too_long = PASSWORD + "x" * (73 - len(PASSWORD))
    for _ in range(11):  # more than the guesses allowed: still its own answer, never 429
        r = c.simulate_post(C.PATH_INFO, headers={"Authorization": f"Bearer {too_long}"})
        assert r.status_code == 401 and "72 bytes" in r.json["error"], r.json
    page = post_login(c, too_long)
    assert page.status_code == 401 and "72 bytes" in page.text
    assert "mintgate_session" not in page.cookies
    assert (
        c.simulate_post(C.PATH_INFO, headers={"Authorization": f"Bearer {PASSWORD}"}).status_code
        == 200
    )


def test_no_password_means_no_session_can_be_made_or_forged() -> None:
    """Without a password hash (a misconfigured front) the dashboard opens to nobody: a cookie
    signed with what would be the key is refused."""
    import hashlib
    import hmac as hmac_
    import time as time_

    c = testing.TestClient(create_app(ApiSettings(password_hash=""), FakeBus()))
    payload = f"{int(time_.time()) + 3600}.{'ab' * 16}"
    key = hashlib.sha256(b"mintgate-session-key::").digest()
    forged = f"{payload}.{hmac_.new(key, payload.encode(), hashlib.sha256).hexdigest()}"
    for path in ("/ui/", "/ui/secrets"):
        assert c.simulate_get(path, cookies={"mintgate_session": forged}).status_code == 303
    assert post_login(c, "").status_code == 401


def test_sessions_depend_on_the_session_secret() -> None:
    from services.api.auth import PasswordCheck
    from services.api.sessions import Sessions

    check = PasswordCheck(bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode())
    token, csrf = Sessions(check, "secret-1").issue()
    assert Sessions(check, "secret-1").verify(token) == csrf
    assert Sessions(check, "secret-2").verify(token) is None  # knowing the hash is not enough


def test_odd_input_is_a_clear_answer_not_a_crash(ui) -> None:  # type: ignore[no-untyped-def]
    from urllib.parse import quote

    c, _ = ui
    assert c.simulate_post("/ui/login", json=[1]).status_code == 403  # JSON, not a form
    cookies, csrf = login(c)
    for amount in ("²", "9" * 5000):
        r = c.simulate_post(
            f"/ui/federations/{FED}/withdraw",
            body=f"csrf={csrf}&amount={quote(amount)}&address={ADDRESS}",
            headers=FORM,
            cookies=cookies,
        )
        assert r.status_code == 400 and "amount" in r.text
    r = c.simulate_post(
        f"/ui/federations/{FED}/fees",
        body=f"csrf={csrf}&base_msat={quote('²')}&ppm=1",
        headers=FORM,
        cookies=cookies,
    )
    assert r.status_code == 400 and "whole numbers" in r.text
    big = c.simulate_post(
        C.PATH_PAYMENT_SUMMARY,
        json={"bucket_s": 10**400},
        headers={"Authorization": f"Bearer {PASSWORD}"},
    )
    assert big.status_code == 400


def test_logout_ends_the_session_in_every_worker(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two workers (two apps on one run directory): a session made by one, ended by a logout on
    it, is refused by the other too, even if the cookie was copied before."""
    hash_ = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    run = tmp_path / "shared-run"
    one, two = (
        testing.TestClient(create_app(ApiSettings(password_hash=hash_, run_dir=run), FakeBus()))
        for _ in range(2)
    )
    secret = run / "session-secret"
    assert secret.exists() and oct(secret.stat().st_mode & 0o777) == "0o600"
    cookies, csrf = login(one)
    assert two.simulate_get("/ui/", cookies=cookies).status_code == 200  # the same secret
    out = one.simulate_post("/ui/logout", body=f"csrf={csrf}", headers=FORM, cookies=cookies)
    assert out.status_code == 303
    for c in (one, two):
        assert c.simulate_get("/ui/", cookies=cookies).status_code == 303  # to the login page
    again, _ = login(two)  # a new session works
    assert one.simulate_get("/ui/", cookies=again).status_code == 200


def test_dashboard_answers_in_html_with_its_security_headers(ui) -> None:  # type: ignore[no-untyped-def]
    c, _ = ui
    cookies, _ = login(c)
    for path in ("/ui/", "/ui/login", "/ui/static/mintgate.css"):
        r = c.simulate_get(path, cookies=cookies)
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" not in c.simulate_get(C.PATH_HEALTH).headers
    page = c.simulate_get("/ui/", cookies=cookies).text
    assert "<style" not in page and "style=" not in page  # the CSP allows no inline style
    # a form without its token: an HTML page saying so (for htmx, a fragment it shows)
    bad = c.simulate_post("/ui/connect", body="invite_code=fed1x", headers=FORM, cookies=cookies)
    assert bad.status_code == 403 and "text/html" in bad.headers["content-type"]
    assert "CSRF token missing or wrong" in bad.text and "Log out" in bad.text  # menu kept
    frag = c.simulate_post(
        "/ui/connect",
        body="invite_code=fed1x",
        headers={**FORM, "HX-Request": "true"},
        cookies=cookies,
    )
    assert frag.status_code == 403 and "<html" not in frag.text and 'role="alert"' in frag.text
    # a page of a federation that is not there
    missing = c.simulate_get(f"/ui/federations/{'cd' * 32}", cookies=cookies)
    assert missing.status_code == 404 and "Not found" in missing.text
    # an htmx poll after the session ended: htmx is told to load the login page
    poll = c.simulate_get("/ui/payments/rows", headers={"HX-Request": "true"})
    assert poll.status_code == 401 and poll.headers["hx-redirect"] == "/ui/login"
    assert c.simulate_get("/ui/payments/rows").status_code == 303  # without htmx, a redirect


def test_parts_that_do_not_answer_are_said_not_zeroed(ui) -> None:  # type: ignore[no-untyped-def]
    c, bus = ui
    cookies, _ = login(c)
    bus.fail_on[C.METHOD_ACTOR_INFO] = ServiceUnavailable("actor restarting")
    page = c.simulate_get("/ui/", cookies=cookies).text
    assert "<mark>unknown</mark> (its actor does not answer)" in page
    assert "without 1 federation(s) whose actor does not answer" in page
    fed_page = c.simulate_get(f"/ui/federations/{FED}", cookies=cookies).text
    assert "<mark>unknown</mark>" in fed_page and "0 sat</strong>" not in fed_page

    bus.down = ServiceUnavailable("the router does not answer")
    down = c.simulate_get("/ui/", cookies=cookies)
    assert down.status_code == 503 and "text/html" in down.headers["content-type"]
    assert "A part of the gateway does not answer" in down.text


def test_cookies_are_secure_behind_https(ui) -> None:  # type: ignore[no-untyped-def]
    c, _ = ui
    plain = c.simulate_get("/ui/login")
    assert not plain.cookies["mintgate_login"].secure  # loopback HTTP keeps working
    proxied = c.simulate_get("/ui/login", headers={"X-Forwarded-Proto": "https"})
    assert proxied.cookies["mintgate_login"].secure


def test_a_log_that_cannot_be_read_is_said_not_shown_empty(ui) -> None:  # type: ignore[no-untyped-def]
    c, bus = ui
    cookies, _ = login(c)
    bus.fail_on[C.METHOD_ACTOR_PAYMENT_LOG] = ServiceUnavailable("no live worker for alpha")
    rows = c.simulate_get("/ui/payments/rows", cookies=cookies).text
    assert "1 federation(s) did not answer: their payments are not listed" in rows
    assert "No payments yet" not in rows
    page = c.simulate_get("/ui/payments", cookies=cookies).text
    assert "did not answer" in page

    bus.down = ServiceUnavailable("the router does not answer")
    poll = c.simulate_get("/ui/payments/rows", headers={"HX-Request": "true"}, cookies=cookies)
    assert poll.status_code == 503 and "could not be read: the router does not answer" in poll.text
    assert poll.text.lstrip().startswith("<tr>")  # a row: htmx swaps it into the table


def test_ecash_in_and_out_from_the_federation_page(ui) -> None:  # type: ignore[no-untyped-def]
    c, bus = ui
    cookies, csrf = login(c)
    page = c.simulate_get(f"/ui/federations/{FED}", cookies=cookies)
    assert 'action="/ui/federations/' + FED + '/receive-ecash"' in page.text
    assert "gateways add http://gw.example:8175/" in page.text  # the URL guardians add
    key = re.search(r'name="key" value="([0-9a-f]{32})"', page.text).group(1)
    notes = str(ECash(FED, (SpendableNote(10, b"\x11" * 32, b"\x02" * 48),)))
    got = c.simulate_post(
        f"/ui/federations/{FED}/receive-ecash",
        body=urlencode({"csrf": csrf, "notes": notes}),
        headers=FORM,
        cookies=cookies,
    )
    assert got.status_code == 200 and 'id="ecash-received">63 sat' in got.text
    assert [b for _, m, b, _ in bus.calls if m == C.METHOD_ACTOR_RECEIVE_ECASH] == [
        {"notes": notes}
    ]
    made = c.simulate_post(
        f"/ui/federations/{FED}/spend-ecash",
        body=f"csrf={csrf}&amount=20&key={key}",
        headers=FORM,
        cookies=cookies,
    )
    assert made.status_code == 200 and 'id="spent-notes"' in made.text and "fedimintq" in made.text
    sent = [(b, kw) for _, m, b, kw in bus.calls if m == C.METHOD_ACTOR_SPEND_ECASH][-1]
    assert sent[0]["operation_id"] == f"spend-{key}" and sent[1]["message_id"].endswith(key)
    for action, body in (
        ("receive-ecash", "notes=fednotes%25%25"),
        ("spend-ecash", "amount=x"),
        ("spend-ecash", "amount=0.0001"),
    ):
        bad = c.simulate_post(
            f"/ui/federations/{FED}/{action}",
            body=f"csrf={csrf}&{body}",
            headers=FORM,
            cookies=cookies,
        )
        assert bad.status_code == 400 and 'role="alert"' in bad.text
