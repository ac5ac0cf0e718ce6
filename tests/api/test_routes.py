"""The HTTP front with Falcon's TestClient against a fake bus: every route, auth, errors."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from falcon import testing
from prometheus_client.parser import text_string_to_metric_families

from fmclient.invite import InviteCode
from fmclient.mintv1 import OOBNotes
from fmclient.mintv2 import ECash, SpendableNote
from gwcore import constants as C
from gwcore import summary
from gwcore.errors import (
    BusTimeout,
    DepositPending,
    InvalidInput,
    NotFound,
    PaymentFailed,
    ServiceUnavailable,
)
from services.api.app import create_app
from services.api.gateway import RESEND_S
from services.api.settings import ApiSettings

from .fakes import ADDRESS, CID, FED, LIGHTNING, PASSWORD, FakeBus


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def client(bus: FakeBus) -> testing.TestClient:
    settings = ApiSettings(
        password_hash=bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode(),
        public_rate_per_s=1000,
    )
    return testing.TestClient(create_app(settings, bus))


AUTH = {"Authorization": f"Bearer {PASSWORD}"}


def test_pay_invoice_is_public_idempotent_and_traced(
    client: testing.TestClient, bus: FakeBus
) -> None:
    r = client.simulate_post(
        C.PATH_PAY_INVOICE,
        json={"federation_id": FED, "contract_id": CID},
        headers={C.REQUEST_ID_HEADER: "req-42"},
    )
    assert r.status_code == 200 and r.json == "11" * 32
    assert r.headers[C.REQUEST_ID_HEADER] == "req-42"
    service, method, body, kw = bus.calls[-1]
    assert (service, method, body) == (
        FED,
        C.METHOD_ACTOR_PAY,
        {"federation_id": FED, "contract_id": CID},
    )
    assert (
        kw["idempotent"] is False
        and kw["message_id"] == f"pay-{FED[:32]}-{CID}"
        and kw["request_id"] == "req-42"
    )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"federation_id": FED},
        {"federation_id": "zz", "contract_id": CID},
        {"federation_id": FED, "contract_id": 5},
    ],
)
def test_pay_invoice_bad_input(client: testing.TestClient, bus: FakeBus, body: dict) -> None:
    r = client.simulate_post(C.PATH_PAY_INVOICE, json=body)
    assert r.status_code == 400 and r.json["code"] == "invalid_input"
    assert bus.calls == []  # nothing reached the gateway


def test_public_errors_are_redacted_admin_errors_are_not(
    client: testing.TestClient, bus: FakeBus
) -> None:
    bus.fail = PaymentFailed("route not found through peer 02abc: secret detail")
    r = client.simulate_post(C.PATH_PAY_INVOICE, json={"federation_id": FED, "contract_id": CID})
    assert r.status_code == 502 and r.json == {"error": "payment failed", "code": "payment_failed"}
    bus.fail = InvalidInput("contract 123 is not addressed to this gateway")
    r = client.simulate_post(C.PATH_BALANCE, json={"federation_id": FED}, headers=AUTH)
    assert r.status_code == 400 and "not addressed" in r.json["error"]
    bus.fail = ServiceUnavailable("no live worker")
    r = client.simulate_post(C.PATH_ADDRESS, json={"federation_id": FED}, headers=AUTH)
    assert r.status_code == 503


def test_admin_routes_need_the_password(client: testing.TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": PASSWORD}):
        r = client.simulate_post(C.PATH_INFO, headers=headers)
        assert r.status_code == 401 and r.json["code"] == "unauthorized"
    assert client.simulate_post(C.PATH_INFO, headers=AUTH).status_code == 200


def test_admin_routes(client: testing.TestClient, bus: FakeBus) -> None:
    info = client.simulate_post(C.PATH_INFO, headers=AUTH).json
    assert info["federations"][0]["balance_msat"] == 1234 and info["gateway_state"] == "running"
    assert (
        client.simulate_post(C.PATH_BALANCE, json={"federation_id": FED}, headers=AUTH).json[
            "balance_msat"
        ]
        == 1234
    )
    assert client.simulate_get(C.PATH_BALANCES, headers=AUTH).json == {
        "balances_msat": {FED: 1234},
        "total_msat": 1234,
        "onchain_balance_sat": 5000,
        "lightning_balance_msat": 7_000_000,
        "inbound_lightning_liquidity_msat": 3_000_000,
    }
    assert info["node"]["alias"] == "gateway"
    assert client.simulate_get(C.PATH_LIGHTNING, headers=AUTH).json == LIGHTNING
    assert (
        client.simulate_post(C.PATH_ADDRESS, json={"federation_id": FED}, headers=AUTH).json[
            "operation_id"
        ]
        == "op1"
    )
    w = client.simulate_post(
        C.PATH_WITHDRAW,
        json={"federation_id": FED, "amount": "all", "address": ADDRESS},
        headers=AUTH,
    ).json
    assert w["status"] == "sent" and w["txid"] == "ee" * 32 and w["fee_sat"] == 150
    assert bus.calls[-1][2] == {"amount_sat": "all", "address": ADDRESS, "preview": False}
    assert bus.calls[-1][3]["idempotent"] is False and bus.calls[-1][3]["message_id"] is None
    keyed = {"federation_id": FED, "amount": 5, "address": ADDRESS, "idempotency_key": "k" * 20}
    client.simulate_post(C.PATH_WITHDRAW, json=keyed, headers=AUTH)
    assert bus.calls[-1][3]["message_id"] == f"withdraw:{FED[:16]}:{'k' * 20}"
    for bad in (
        {"amount": 0},
        {"amount": "some"},
        {"address": ""},
        {"address": ADDRESS[:-1] + "x"},  # a typo: the checksum
        {"address": 5},
        {"preview": "yes"},
        {"idempotency_key": "short"},
        {"idempotency_key": "no spaces allowed"},
    ):
        body = {"federation_id": FED, "amount": 5, "address": ADDRESS, **bad}
        refused = client.simulate_post(C.PATH_WITHDRAW, json=body, headers=AUTH)
        assert refused.status_code == 400
        if "address" in bad:
            assert refused.json["code"] == "invalid_address", refused.json
    fees = client.simulate_post(
        C.PATH_SET_FEES, json={"base_msat": 5, "proportional_millionths": 7}, headers=AUTH
    ).json
    assert fees == {FED: {"base_msat": 5, "proportional_millionths": 7}}
    assert (
        client.simulate_post(
            C.PATH_SET_FEES, json={"base_msat": -1, "proportional_millionths": 7}, headers=AUTH
        ).status_code
        == 400
    )
    invite = str(InviteCode(FED, {0: "ws://127.0.0.1:9/"}))
    connect = {"invite_code": invite, "api_urls": {"0": "ws://127.0.0.1:10/"}}
    ok = client.simulate_post(C.PATH_CONNECT_FED, json=connect, headers=AUTH).json
    assert ok["ok"] == C.METHOD_CONNECT_FED and ok["body"] == connect
    # a bad invite is refused by the API itself, with the reason: the router is not asked
    n = len(bus.calls)
    for body, why in [
        ({}, "invite_code is required"),
        ({"invite_code": "fed1x"}, "invalid invite code"),
        ({"invite_code": invite[:-1] + "x"}, "invalid invite code"),
        ({"invite_code": invite, "api_urls": {"0": "http://a/"}}, "ws:// or wss://"),
    ]:
        r = client.simulate_post(C.PATH_CONNECT_FED, json=body, headers=AUTH)
        assert r.status_code == 400 and why in r.json["error"], r.json
    assert len(bus.calls) == n
    assert (
        client.simulate_post(C.PATH_LEAVE_FED, json={"federation_id": FED}, headers=AUTH).json[
            "body"
        ]["force"]
        is False
    )
    assert (
        client.simulate_post(
            C.PATH_BALANCE, json={"federation_id": "ef" * 32}, headers=AUTH
        ).status_code
        == 404
    )
    assert client.simulate_get(C.PATH_CONFIG, headers=AUTH).json["bind"] == "127.0.0.1:8175"


def test_body_rules(client: testing.TestClient) -> None:
    assert client.simulate_post(C.PATH_PAY_INVOICE, body="{nope").status_code == 400
    assert client.simulate_post(C.PATH_PAY_INVOICE, body="[1, 2]").status_code == 400
    assert client.simulate_post(C.PATH_PAY_INVOICE, body="NaN").status_code == 400
    big = client.simulate_post(C.PATH_PAY_INVOICE, body="x" * (128 * 1024))
    assert big.status_code == 413 and big.json["code"] == "too_large"
    deep = client.simulate_post(C.PATH_PAY_INVOICE, body="[" * 50_000)
    assert deep.status_code == 400 and deep.json["code"] == "invalid_input"
    nowhere = client.simulate_get("/no/such/route")
    assert nowhere.status_code == 404 and nowhere.json["code"] == "not_found"
    wrong = client.simulate_delete(C.PATH_PAY_INVOICE)
    assert wrong.status_code == 405 and wrong.json["code"] == "method_not_allowed"


def test_pay_invoice_for_a_federation_not_served_is_a_quick_404(
    client: testing.TestClient, bus: FakeBus
) -> None:
    """A made-up federation id never reaches an actor (the bus would hold the request, and a
    server thread, until its deadline): 404 after one listing, which is then reused."""
    other = {"federation_id": "ef" * 32, "contract_id": CID}
    r = client.simulate_post(C.PATH_PAY_INVOICE, json=other)
    assert r.status_code == 404 and r.json == {"error": "not found", "code": "not_found"}
    assert [m for _, m, _, _ in bus.calls] == [C.METHOD_LIST_FEDS]  # asked the router only
    bus.calls.clear()
    ok = client.simulate_post(C.PATH_PAY_INVOICE, json={"federation_id": FED, "contract_id": CID})
    assert ok.status_code == 200 and [m for _, m, _, _ in bus.calls] == [C.METHOD_ACTOR_PAY]


def test_flags_and_fees_are_checked_strictly(client: testing.TestClient, bus: FakeBus) -> None:
    typo = client.simulate_post(
        C.PATH_LEAVE_FED, json={"federation_id": FED, "froce": True}, headers=AUTH
    )
    assert typo.status_code == 400 and "unknown field(s) froce" in typo.json["error"]
    assert "allowed: federation_id, force" in typo.json["error"]
    extra = client.simulate_post(C.PATH_INFO, json={"verbose": True}, headers=AUTH)
    assert extra.status_code == 400
    # the public route takes what federation clients of every version send
    newer = {"federation_id": FED, "contract_id": CID, "preimage_auth": "00" * 32}
    newer["payment_data"] = {"invoice": "lnbcrt1..."}
    assert client.simulate_post(C.PATH_PAY_INVOICE, json=newer).status_code == 200
    # the actor gets the whole LNv1 PayInvoicePayload (it checks the federation id too)
    assert [b for _, m, b, _ in bus.calls if m == C.METHOD_ACTOR_PAY][-1] == newer
    for force in ("false", 1, "yes", []):
        r = client.simulate_post(
            C.PATH_LEAVE_FED, json={"federation_id": FED, "force": force}, headers=AUTH
        )
        assert r.status_code == 400 and "force" in r.json["error"]
    assert not [b for _, m, b, _ in bus.calls if m == C.METHOD_LEAVE_FED]  # nothing left
    for base, ppm in ((10**30, 0), (0, 1_000_001), (1.5, 0), (True, 0), (0, None)):
        r = client.simulate_post(
            C.PATH_SET_FEES,
            json={"federation_id": FED, "base_msat": base, "proportional_millionths": ppm},
            headers=AUTH,
        )
        assert r.status_code == 400, (base, ppm)
    assert not [b for _, m, b, _ in bus.calls if m == C.METHOD_ACTOR_SET_FEES]
    top = {"base_msat": 100_000_000, "proportional_millionths": 1_000_000}
    assert client.simulate_post(C.PATH_SET_FEES, json=top, headers=AUTH).json == {FED: top}


def test_fees_for_every_federation_say_which_did_not_take_them(bus: FakeBus) -> None:
    """One actor down while fees are set for all: the answer names it (and the ones that took
    the new fees), rather than a success that is not one."""
    settings = ApiSettings(
        password_hash=bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    )
    answer = bus.call
    second = "cd" * 32

    tried: list[str] = []

    def two_feds(service: str, method: str, payload: bytes, **kw: Any) -> bytes:
        if method == C.METHOD_ACTOR_SET_FEES:
            tried.append(service)
        if method == C.METHOD_LIST_FEDS:
            feds = [
                {"federation_id": FED, "name": "alpha", "scid": 1, "state": "running"},
                {"federation_id": second, "name": "beta", "scid": 2, "state": "crashed"},
            ]
            return json.dumps({"federations": feds, "extension_connected": True}).encode()
        if service == second:
            raise ServiceUnavailable("no live worker for beta")
        return answer(service, method, payload, **kw)

    bus.call = two_feds  # type: ignore[method-assign]
    c = testing.TestClient(create_app(settings, bus))
    r = c.simulate_post(
        C.PATH_SET_FEES, json={"base_msat": 1, "proportional_millionths": 2}, headers=AUTH
    )
    assert r.status_code == 503
    assert r.json["error"].startswith("fees applied to alpha; not to beta (its actor is crashed)")
    assert tried == [FED]  # a crashed actor is not asked (it would only time out)


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_health_metrics_openapi(client: testing.TestClient, bus: FakeBus) -> None:
    h = client.simulate_get(C.PATH_HEALTH)
    assert h.status_code == 200 and h.json["status"] == "ready"
    client.simulate_post(C.PATH_PAY_INVOICE, json={"federation_id": FED, "contract_id": CID})
    client.simulate_get("/no/such/" + "x" * 40)
    assert client.simulate_get(C.PATH_METRICS).status_code == 401  # balances are not public
    samples = _samples(client.simulate_get(C.PATH_METRICS, headers=AUTH).text)
    assert samples[("gateway_pay_invoice_requests_total", (("result", "settled"),))] == 1
    route = (("route", "unmatched"), ("status", "404"))  # templates, never raw paths
    assert samples[("gateway_http_requests_total", route)] == 1
    fed = (("federation_id", FED), ("name", "alpha"))
    out, inc = (*fed, ("direction", "outgoing")), (*fed, ("direction", "incoming"))
    for name, labels, value in (
        ("gateway_payments_total", (*out, ("status", "settled")), 2),
        ("gateway_payments_total", (*out, ("status", "failed")), 1),
        ("gateway_payments_pending", inc, 1),
        ("gateway_payment_volume_msat_total", out, 30_000),
        ("gateway_fees_earned_msat_total", out, 300),
        ("gateway_payment_latency_seconds_bucket", (*out, ("le", "0.5")), 1),
        ("gateway_payment_latency_seconds_bucket", (*out, ("le", "1.0")), 2),
        ("gateway_payment_latency_seconds_bucket", (*out, ("le", "+Inf")), 2),
        ("gateway_payment_latency_seconds_count", out, 2),
        ("gateway_payment_latency_seconds_sum", out, 1.25),
        ("gateway_ecash_balance_msat", fed, 1234),
        ("gateway_federation_up", fed, 1),
        ("gateway_lightning_extension_connected", (), 1),
    ):
        assert samples[(name, tuple(sorted(labels)))] == value, name
    bus.fail = ServiceUnavailable("actor gone")  # an actor that does not answer: down, no 500
    time.sleep(1.1)  # past the per-worker cache of the actors' figures
    m = client.simulate_get(C.PATH_METRICS, headers=AUTH)
    assert m.status_code == 200
    assert _samples(m.text)[("gateway_federation_up", tuple(sorted(fed)))] == 0
    doc = client.simulate_get(C.PATH_OPENAPI).json
    assert (
        doc["openapi"].startswith("3.")
        and C.PATH_PAY_INVOICE in doc["paths"]
        and C.PATH_SET_FEES in doc["paths"]
    )


def test_rate_limit_on_the_public_route(bus: FakeBus) -> None:
    settings = ApiSettings(password_hash="", public_rate_per_s=0.001)
    c = testing.TestClient(create_app(settings, bus))
    codes = [
        c.simulate_post(
            C.PATH_PAY_INVOICE, json={"federation_id": FED, "contract_id": CID}
        ).status_code
        for _ in range(45)
    ]
    assert codes.count(429) >= 1 and codes[0] == 200


def test_payment_log_and_summary(client: testing.TestClient) -> None:
    log = client.simulate_post(C.PATH_PAYMENT_LOG, json={"limit": 10}, headers=AUTH).json[
        "payments"
    ]
    assert [p["id"] for p in log] == ["b", "a"]  # newest first
    only_in = client.simulate_post(
        C.PATH_PAYMENT_LOG, json={"kinds": ["incoming"]}, headers=AUTH
    ).json["payments"]
    assert [p["id"] for p in only_in] == ["a"]
    assert (
        client.simulate_post(C.PATH_PAYMENT_LOG, json={"limit": 0}, headers=AUTH).status_code == 400
    )
    assert (
        client.simulate_post(
            C.PATH_PAYMENT_LOG, json={"kinds": ["sideways"]}, headers=AUTH
        ).status_code
        == 400
    )
    s = client.simulate_post(
        C.PATH_PAYMENT_SUMMARY, json={"start": 1_799_999_000, "end": 1_800_001_000}, headers=AUTH
    ).json
    assert (
        s["directions"]["incoming"]["settled"] == 1
        and s["directions"]["incoming"]["volume_msat"] == 1000
    )
    assert s["directions"]["outgoing"]["failed"] == 1 and s["fees_earned_msat"] == 10
    assert s["directions"]["incoming"]["latency_p50_s"] == 1.0
    assert (
        client.simulate_post(
            C.PATH_PAYMENT_SUMMARY, json={"start": 5, "end": 1}, headers=AUTH
        ).status_code
        == 400
    )
    # the default window is clamped at the epoch (found by the API fuzz test: start -86400)
    early = client.simulate_post(C.PATH_PAYMENT_SUMMARY, json={"end": 0}, headers=AUTH)
    assert early.status_code == 200 and (early.json["start"], early.json["end"]) == (0.0, 0.0)
    early = client.simulate_post(C.PATH_PAYMENT_SUMMARY, json={"end": 3600}, headers=AUTH)
    assert early.status_code == 200 and early.json["start"] == 0.0


def test_deposit_forms(client: testing.TestClient, bus: FakeBus) -> None:
    def post(body: dict) -> testing.Result:
        return client.simulate_post(
            C.PATH_DEPOSIT, json={"federation_id": FED, **body}, headers=AUTH
        )

    txid = "ab" * 32
    assert post({"txid": txid.upper()}).status_code == 200
    assert bus.calls[-1][1:3] == (C.METHOD_ACTOR_DEPOSIT, {"txid": txid, "timeout_s": 10})
    raw = "02000000" + "00" * 10
    assert post({"transaction": raw, "txout_proof": "00ff", "timeout_s": 3}).status_code == 200
    assert bus.calls[-1][2] == {"transaction": raw, "timeout_s": 3}  # the proof is not needed
    assert post({}).status_code == 200 and bus.calls[-1][2] == {"timeout_s": 10}
    n = len(bus.calls)
    for bad in (
        {"txid": "zz"},
        {"txid": txid, "transaction": raw},
        {"transaction": "xyz"},
        {"transaction": 5},
        {"transaction": raw, "txout_proof": "nothex"},
        {"operation_id": ""},
        {"timeout_s": 500},
        {"timeout_s": True},
    ):
        r = post(bad)
        assert r.status_code == 400 and r.json["code"] == "invalid_input", bad
    assert len(bus.calls) == n  # bad input reached nothing
    bus.fail = DepositPending("deposit ab… has 0 confirmation(s)")
    r = post({"txid": txid})
    assert r.status_code == 409 and r.json["code"] == "deposit_pending"


class ManyPayments(FakeBus):
    """An actor with 2,500 payments, one every 10 s, answering pages as the real one does."""

    NOW = 1_800_000_000

    def call(
        self, service: str, method: str, payload: bytes, *, timeout: float, **kw: Any
    ) -> bytes:
        q = json.loads(payload)
        if method == C.METHOD_ACTOR_PAYMENT_SUMMARY:
            everything = {"limit": 10_000, "since": q["start"], "before": q["end"]}
            rows = json.loads(
                self.call(
                    service, C.METHOD_ACTOR_PAYMENT_LOG, json.dumps(everything).encode(), timeout=1
                )
            )
            return json.dumps(
                summary.partial(rows["payments"], q["start"], q["end"], q["bucket_s"])
            ).encode()
        if method != C.METHOD_ACTOR_PAYMENT_LOG:
            return super().call(service, method, payload, timeout=timeout, **kw)
        self.calls.append((service, method, q, kw))
        rows = []
        for i in range(2500):
            created = self.NOW - i * 10
            if created < q.get("since", 0) or ("before" in q and created >= q["before"]):
                continue
            rows.append(
                {
                    "id": str(i),
                    "federation_id": FED,
                    "direction": ("incoming", "outgoing", "swap")[i % 3],
                    "status": "failed" if i % 5 == 0 else "settled",
                    "amount_msat": 1000,
                    "fee_earned_msat": 0 if i % 5 == 0 else 10,
                    "payment_hash": f"{i:064x}",
                    "created": created,
                    "finished": created + 1,
                    "latency_s": 1.0,
                }
            )
        return json.dumps({"payments": rows[: q["limit"]]}).encode()


def test_log_and_summary_page_through_every_payment() -> None:
    bus = ManyPayments()
    settings = ApiSettings(
        password_hash=bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    )
    c = testing.TestClient(create_app(settings, bus))
    failed_swaps = c.simulate_post(
        C.PATH_PAYMENT_LOG,
        json={"limit": 1000, "kinds": ["swap"], "statuses": ["failed"]},
        headers=AUTH,
    ).json["payments"]
    # i % 3 == 2 and i % 5 == 0 among 2,500: beyond the first page of 1,000 rows too
    assert len(failed_swaps) == len([i for i in range(2500) if i % 3 == 2 and i % 5 == 0]) == 167
    s = c.simulate_post(
        C.PATH_PAYMENT_SUMMARY,
        json={"start": ManyPayments.NOW - 25_000 + 1, "end": ManyPayments.NOW + 1},
        headers=AUTH,
    ).json
    assert not s["latency_sampled"] and s["missing_federations"] == []
    assert sum(d["count"] for d in s["directions"].values()) == 2500
    assert sum(d["settled"] for d in s["directions"].values()) == 2000
    assert len(s["series"]) == 7 and s["bucket_s"] == 3600
    assert sum(b["volume_msat"] for b in s["series"]) == 2000 * 1000
    assert s["fees_earned_msat"] == sum(b["fees_earned_msat"] for b in s["series"]) == 20_000
    for bad in ({"bucket_s": 1}, {"start": 0, "end": 1e9, "bucket_s": 60}, {"statuses": []}):
        path = C.PATH_PAYMENT_LOG if "statuses" in bad else C.PATH_PAYMENT_SUMMARY
        assert c.simulate_post(path, json=bad, headers=AUTH).status_code == 400, bad


def test_metrics_take_their_own_token_and_cache_the_actors(bus: FakeBus) -> None:
    settings = ApiSettings(password_hash="", metrics_token="scrape-me", metrics_cache_s=60)
    c = testing.TestClient(create_app(settings, bus))
    assert (
        c.simulate_get(C.PATH_METRICS, headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    ok = {"Authorization": "Bearer scrape-me"}
    assert c.simulate_get(C.PATH_METRICS, headers=ok).status_code == 200
    asked = sum(m == C.METHOD_ACTOR_METRICS for _, m, _, _ in bus.calls)
    for _ in range(20):
        assert c.simulate_get(C.PATH_METRICS, headers=ok).status_code == 200
    assert sum(m == C.METHOD_ACTOR_METRICS for _, m, _, _ in bus.calls) == asked == 1


def test_gunicorn_outlasts_every_bus_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow answer must be the bus's own 504, never a worker killed mid-request: gunicorn's
    timeout (deploy/gunicorn.conf.py) follows the longest bus timeout, whatever is configured."""
    import runpy
    from pathlib import Path

    conf = Path(__file__).resolve().parents[2] / "deploy" / "gunicorn.conf.py"
    for long_s in ("120", "600"):
        monkeypatch.setenv("GATEWAY_API_LONG_TIMEOUT_S", long_s)
        timeout = runpy.run_path(str(conf))["timeout"]
        s = ApiSettings()
        longest = max(s.bus_timeout_s, s.pay_timeout_s, s.long_timeout_s, 70)  # 70: deposits
        assert timeout >= longest + 5 + 30, (long_s, timeout)


def test_health_says_what_is_missing(client: testing.TestClient, bus: FakeBus) -> None:
    assert client.simulate_get(C.PATH_HEALTH_LIVE).json == {"status": "live"}
    answer = bus.call

    def degraded(service: str, method: str, payload: bytes, **kw: Any) -> bytes:
        if method == C.METHOD_LIST_FEDS:
            feds = [{"federation_id": FED, "name": "alpha", "scid": 1, "state": "crashed"}]
            return json.dumps({"federations": feds, "extension_connected": False}).encode()
        return answer(service, method, payload, **kw)

    bus.call = degraded  # type: ignore[method-assign]
    h = client.simulate_get(C.PATH_HEALTH)
    assert h.status_code == 503 and h.json == {
        "status": "degraded",
        "router": True,
        "extension": False,
        "federations": {FED: "crashed"},
    }

    def silent_actor(service: str, method: str, payload: bytes, **kw: Any) -> bytes:
        # the registry says running (a router restarted with the run folder lost) but the
        # actor does not answer: not ready
        if method == C.METHOD_LIST_FEDS:
            feds = [{"federation_id": FED, "state": "running", "actor_answers": False}]
            return json.dumps({"federations": feds, "extension_connected": True}).encode()
        return answer(service, method, payload, **kw)

    bus.call = silent_actor  # type: ignore[method-assign]
    h = client.simulate_get(C.PATH_HEALTH)
    assert h.status_code == 503 and h.json["federations"] == {FED: "actor not answering"}
    bus.call = answer  # type: ignore[method-assign]
    assert client.simulate_get(C.PATH_HEALTH).json["status"] == "ready"

    def router_down(*args: Any, **kw: Any) -> bytes:
        raise ServiceUnavailable("router down")

    bus.call = router_down  # type: ignore[method-assign]
    down = client.simulate_get(C.PATH_HEALTH)
    assert down.status_code == 503 and down.json["router"] is False
    assert client.simulate_get(C.PATH_HEALTH_LIVE).status_code == 200  # the front itself lives


def test_a_bus_timeout_is_a_504(client: testing.TestClient, bus: FakeBus) -> None:
    bus.fail = BusTimeout("actor.withdraw: no answer")
    body = {"federation_id": FED, "amount": 10_000, "address": ADDRESS}
    late = client.simulate_post(C.PATH_WITHDRAW, json=body, headers=AUTH)
    assert late.status_code == 504 and late.json["code"] == "bus_timeout"


def _notes(fed: str) -> str:
    """A mintv2 e-cash string of one 1024 msat note of `fed` (its signature not checked here:
    the actor checks notes)."""
    return str(ECash(fed, (SpendableNote(10, b"\x11" * 32, b"\x02" * 48),)))


def test_receive_ecash_is_public_and_keyed_by_the_notes(
    client: testing.TestClient, bus: FakeBus
) -> None:
    notes = _notes(FED)
    r = client.simulate_post(C.PATH_RECEIVE_ECASH, json={"notes": notes})
    assert r.status_code == 200, r.text
    assert r.json == {
        "amount": 63_000,
        "amount_msat": 63_000,
        "federation_id": FED,
        "operation_id": "op-r",
    }
    service, method, body, kw = bus.calls[-1]
    assert (service, method, body) == (FED, C.METHOD_ACTOR_RECEIVE_ECASH, {"notes": notes})
    # the same notes are the same bus request: a repeat joins or replays the first
    assert kw["idempotent"] is False and kw["message_id"].startswith(f"ecash-{FED[:16]}-")
    # sent again every RESEND_S while it waits (a restarted router lost it), up to its timeout
    assert kw["attempt_timeout"] == RESEND_S and kw["retries"] * RESEND_S >= kw["timeout"]
    client.simulate_post(C.PATH_RECEIVE_ECASH, json={"notes": notes})
    assert bus.calls[-1][3]["message_id"] == kw["message_id"]


def test_mint_v1_notes_name_their_federation_by_prefix(
    client: testing.TestClient, bus: FakeBus
) -> None:
    """gatewayd's rule: v1 notes without an invite carry 4 bytes of the federation id; the
    served federation with that prefix takes them, an unknown prefix is a 404."""
    note = ((1024, b"\x02" * 48, b"\x11" * 32),)
    notes = str(OOBNotes(note, FED[:8]))
    r = client.simulate_post(C.PATH_RECEIVE_ECASH, json={"notes": notes})
    assert r.status_code == 200, r.text
    assert bus.calls[-1][:3] == (FED, C.METHOD_ACTOR_RECEIVE_ECASH, {"notes": notes})
    r = client.simulate_post(C.PATH_RECEIVE_ECASH, json={"notes": str(OOBNotes(note, "cd" * 4))})
    assert r.status_code == 404, r.text


@pytest.mark.parametrize(
    ("body", "status", "why"),
    [
        ({}, 400, "notes must be"),
        ({"notes": 5}, 400, "notes must be"),
        ({"notes": "fedimintnotbase32!"}, 400, "invalid notes"),
        ({"notes": "fednotes%%%"}, 400, "invalid notes"),  # an earlier development format
        ({"notes": _notes(FED), "federation_id": "cd" * 32}, 400, "are of federation"),
        ({"notes": _notes(FED), "extra": 1}, 400, "unknown field"),
        ({"notes": _notes("ef" * 32)}, 404, None),  # a federation we do not serve
    ],
)
def test_receive_ecash_bad_input_says_why_and_calls_no_actor(
    client: testing.TestClient, bus: FakeBus, body: dict, status: int, why: str | None
) -> None:
    r = client.simulate_post(C.PATH_RECEIVE_ECASH, json=body)
    assert r.status_code == status, r.text
    if why:
        assert why in r.json["error"]
    assert not [c for c in bus.calls if c[1] == C.METHOD_ACTOR_RECEIVE_ECASH]


def test_spend_ecash_is_admin_and_idempotent_by_key(
    client: testing.TestClient, bus: FakeBus
) -> None:
    body = {"federation_id": FED, "amount_msat": 20_000, "idempotency_key": "spend-0001"}
    assert client.simulate_post(C.PATH_SPEND_ECASH, json=body).status_code == 401
    r = client.simulate_post(C.PATH_SPEND_ECASH, json=body, headers=AUTH)
    assert r.status_code == 200 and r.json["notes"].startswith("fedimint")
    _, method, sent, kw = bus.calls[-1]
    assert method == C.METHOD_ACTOR_SPEND_ECASH
    assert sent == {"amount_msat": 20_000, "operation_id": "spend-spend-0001"}
    assert kw["message_id"] == f"spend:{FED[:16]}:spend-0001"
    for bad in ({**body, "amount_msat": 0}, {**body, "idempotency_key": "x"}):
        assert client.simulate_post(C.PATH_SPEND_ECASH, json=bad, headers=AUTH).status_code == 400


def test_lnv2_routing_info_at_the_root_and_v1(client: testing.TestClient, bus: FakeBus) -> None:
    for path in (C.PATH_ROUTING_INFO, "/v1" + C.PATH_ROUTING_INFO):
        r = client.simulate_post(path, json=FED)  # the body is a bare federation id
        assert r.status_code == 200 and r.json == {"module_public_key": "02" + "33" * 32}
    assert bus.calls[-1][:2] == (FED, C.METHOD_ACTOR_ROUTING_INFO)
    r = client.simulate_post(C.PATH_ROUTING_INFO, json="ef" * 32)  # not served: null
    assert r.status_code == 200 and r.text == "null"
    bus.fail_on[C.METHOD_ACTOR_ROUTING_INFO] = NotFound("no LNv2 module")
    assert client.simulate_post(C.PATH_ROUTING_INFO, json=FED).text == "null"
    for bad in ({"federation_id": FED}, "zz", 5):
        assert client.simulate_post(C.PATH_ROUTING_INFO, json=bad).status_code == 400


def test_lnv2_send_payment_is_one_request_per_contract(
    client: testing.TestClient, bus: FakeBus
) -> None:
    vectors = json.loads(
        (Path(__file__).parents[1] / "fmclient" / "data" / "lnv2_vectors.json").read_text()
    )
    body = {**vectors["send_payment_payload"], "federation_id": FED}
    cid = vectors["outgoing"]["contract_id"]
    for path in (C.PATH_SEND_PAYMENT, "/v1" + C.PATH_SEND_PAYMENT):
        r = client.simulate_post(path, json=body)
        assert r.status_code == 200 and r.json == {"Err": "ab" * 64}
        _, method, sent, kw = bus.calls[-1]
        assert method == C.METHOD_ACTOR_LNV2_SEND and sent == body
        assert kw["message_id"] == f"lnv2-send-{FED[:16]}-{cid}" and kw["idempotent"] is False
    # bad input says why (the public route's own mistakes are not redacted) and calls no actor
    calls = len(bus.calls)
    bad_contract = {**body, "contract": {**body["contract"], "claim_pk": "00" * 33}}
    r = client.simulate_post(C.PATH_SEND_PAYMENT, json=bad_contract)
    assert r.status_code == 400 and "claim_pk" in r.json["error"]
    r = client.simulate_post(C.PATH_SEND_PAYMENT, json={**body, "federation_id": "ef" * 32})
    assert r.status_code == 404
    assert not [c for c in bus.calls[calls:] if c[1] == C.METHOD_ACTOR_LNV2_SEND]
    # the actor's refusal reaches the payer in full
    bus.fail_on[C.METHOD_ACTOR_LNV2_SEND] = InvalidInput(
        "the payer's auth signature does not verify"
    )
    r = client.simulate_post(C.PATH_SEND_PAYMENT, json=body)
    assert r.status_code == 400 and "auth signature" in r.json["error"]


def test_lnv2_create_bolt11_invoice_and_verify(client: testing.TestClient, bus: FakeBus) -> None:
    vectors = json.loads(
        (Path(__file__).parents[1] / "fmclient" / "data" / "lnv2_vectors.json").read_text()
    )
    body = {**vectors["create_bolt11_invoice_payload"], "federation_id": FED}
    for path in (C.PATH_CREATE_BOLT11_INVOICE, "/v1" + C.PATH_CREATE_BOLT11_INVOICE):
        r = client.simulate_post(path, json=body)
        assert r.status_code == 200 and r.json == "lnbcrt1fakeinvoice"
        assert bus.calls[-1][1:3] == (C.METHOD_ACTOR_LNV2_INVOICE, body)
    calls = len(bus.calls)
    bad = {**body, "contract": {**body["contract"], "commitment": {}}}
    r = client.simulate_post(C.PATH_CREATE_BOLT11_INVOICE, json=bad)
    assert r.status_code == 400 and "contract" in r.json["error"]
    r = client.simulate_post(
        C.PATH_CREATE_BOLT11_INVOICE, json={**body, "federation_id": "ef" * 32}
    )
    assert r.status_code == 400 and "does not exist" in r.json["error"]
    assert not [c for c in bus.calls[calls:] if c[1] == C.METHOD_ACTOR_LNV2_INVOICE]
    bus.fail_on[C.METHOD_ACTOR_LNV2_INVOICE] = InvalidInput("the contract has already expired")
    r = client.simulate_post(C.PATH_CREATE_BOLT11_INVOICE, json=body)
    assert r.status_code == 400 and "expired" in r.json["error"]
    # LUD-21 verify, at the root and /v1/
    for prefix in ("", "/v1"):
        r = client.simulate_get(f"{prefix}/verify/{'aa' * 32}")
        assert r.json == {"status": "OK", "settled": True, "preimage": "bb" * 32}
    r = client.simulate_get(f"/verify/{'cc' * 32}")
    assert r.json == {"status": "ERROR", "reason": "Unknown payment hash"}
    r = client.simulate_get(f"/verify/{'dd' * 32}")
    assert r.json == {"status": "ERROR", "reason": "Payment has been refunded"}
    r = client.simulate_get("/verify/nothex")
    assert r.json["status"] == "ERROR" and "payment_hash" in r.json["reason"]
