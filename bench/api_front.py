"""The HTTP front's own cost per request: routing, JSON validation, auth, rendering, merging.

    python bench/api_front.py [--n 2000]

The Falcon app in this process (Falcon's WSGI test client, no sockets), in front of a stub bus
that answers at once with realistic replies (tests/api's FakeBus: one federation; its actor's
summary partial holds 5,000 payments of the last day). So the figures are the
front's overhead alone, to be added to the bus round trip (bench/bus_rtt.py) and the actor's
work. The admin password's bcrypt hash has the default cost (12): the first check pays it,
later ones hit the per-worker cache, which is what `bcrypt_first_check_ms` vs `info` shows.
Prints a table and, last, one JSON line {"bench": "api_front", ...}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bcrypt
from falcon import testing

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gwcore import constants as C
from gwcore import summary
from services.api.app import create_app
from services.api.settings import ApiSettings
from tests.api.fakes import CID, FED, FakeBus

PASSWORD = "correct horse battery staple"


class BusyFakeBus(FakeBus):
    """FakeBus whose actors each summarize 5,000 payments of the last day."""

    def __init__(self) -> None:
        super().__init__()
        now = time.time()
        self.partial = summary.partial(
            (
                {
                    "direction": ("incoming", "outgoing", "swap")[i % 3],
                    "status": "failed" if i % 7 == 0 else "settled",
                    "amount_msat": 1000 + i,
                    "fee_earned_msat": 10,
                    "created": now - 86_000 + i * 17,
                    "latency_s": 0.2 + (i % 50) / 100,
                }
                for i in range(5000)
            ),
            now - 86_400,
            now,
            3600,
        )

    def call(
        self, service: str, method: str, payload: bytes, *, timeout: float, **kw: Any
    ) -> bytes:
        if method == C.METHOD_ACTOR_PAYMENT_SUMMARY:
            body = json.loads(payload)
            n = summary.buckets(body["start"], body["end"], body["bucket_s"])
            return json.dumps({**self.partial, "series": self.partial["series"][:n]}).encode()
        out = super().call(service, method, payload, timeout=timeout, **kw)
        self.calls.clear()  # do not grow over the run
        return out


def measure(n: int, fn: Any) -> list[float]:
    for _ in range(min(50, n)):  # warm up
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    hash_ = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt()).decode()
    run_dir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    c = testing.TestClient(
        create_app(
            ApiSettings(password_hash=hash_, public_rate_per_s=1e9, run_dir=run_dir), BusyFakeBus()
        )
    )
    auth = {"Authorization": f"Bearer {PASSWORD}"}
    t = time.perf_counter()
    assert c.simulate_post(C.PATH_INFO, headers=auth).status_code == 200
    first_check_ms = (time.perf_counter() - t) * 1000
    token = c.simulate_get("/ui/login").cookies["mintgate_login"].value
    login = c.simulate_post(
        "/ui/login",
        body=f"login_token={token}&password={PASSWORD.replace(' ', '+')}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        cookies={"mintgate_login": token},
    )
    cookies = {"mintgate_session": login.cookies["mintgate_session"].value}

    def ok(r: Any) -> None:
        assert r.status_code == 200, r.text

    routes = {
        "pay_invoice": lambda: ok(
            c.simulate_post(C.PATH_PAY_INVOICE, json={"federation_id": FED, "contract_id": CID})
        ),
        "info": lambda: ok(c.simulate_post(C.PATH_INFO, headers=auth)),
        "payment_summary": lambda: ok(c.simulate_post(C.PATH_PAYMENT_SUMMARY, headers=auth)),
        "metrics": lambda: ok(c.simulate_get(C.PATH_METRICS, headers=auth)),
        "ui_overview": lambda: ok(c.simulate_get("/ui/", cookies=cookies)),
    }
    result: dict[str, Any] = {"bench": "api_front", "n": args.n}
    print(f"{'route':<18}{'p50 us':>10}{'p99 us':>10}{'req/s':>10}")
    for name, fn in routes.items():
        n = args.n if name not in ("payment_summary", "ui_overview") else max(50, args.n // 10)
        times = sorted(measure(n, fn))
        p50, p99 = statistics.median(times), times[int(0.99 * (len(times) - 1))]
        rate = len(times) / sum(times)
        print(f"{name:<18}{p50 * 1e6:>10.0f}{p99 * 1e6:>10.0f}{rate:>10.0f}")
        result[f"{name}_p50_us"] = round(p50 * 1e6)
        result[f"{name}_per_s"] = round(rate)
    result["bcrypt_first_check_ms"] = round(first_check_ms, 1)
    print(f"first password check (bcrypt cost 12): {first_check_ms:.1f} ms; later: cached")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
