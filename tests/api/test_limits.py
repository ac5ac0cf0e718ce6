"""The counts every worker shares (services/api/limits.py) and who a client is
(services/api/clients.py): one bucket per client whichever worker answers, exact under
concurrent processes, 429 with Retry-After, X-Forwarded-For believed from trusted proxies
only."""

from __future__ import annotations

import multiprocessing
from ipaddress import ip_network
from pathlib import Path

import bcrypt
import pytest
from falcon import testing

from gwcore import constants as C
from services.api.app import create_app
from services.api.auth import PasswordCheck
from services.api.clients import client_address, client_key
from services.api.limits import SharedLimits
from services.api.settings import ApiSettings

from .fakes import CID, FED, FakeBus

PAY = {"federation_id": FED, "contract_id": CID}
PROXIES = [ip_network("127.0.0.1/32"), ip_network("10.9.0.0/16")]


def _take_many(path: str, n: int, out: multiprocessing.Queue) -> None:
    limits = SharedLimits(Path(path))
    out.put(sum(limits.take("one client", 1e-9, 25) == 0 for _ in range(n)))


def test_the_bucket_is_one_for_every_process(tmp_path: Path) -> None:
    """Four processes (as gunicorn workers) take 20 tokens each at once from a bucket of 25:
    exactly 25 are given, however the takes interleave."""
    path = str(tmp_path / "limits.sqlite")
    SharedLimits(Path(path))  # the tables
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_take_many, args=(path, 20, out)) for _ in range(4)]
    for p in procs:
        p.start()
    given = sum(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(10)
    assert given == 25


def test_an_empty_bucket_says_when_to_come_back(tmp_path: Path) -> None:
    limits = SharedLimits(tmp_path / "limits.sqlite")
    assert [limits.take("a", 0.5, 2) for _ in range(2)] == [0, 0]
    wait = limits.take("a", 0.5, 2)
    assert 1.9 < wait <= 2.0  # one token per 2 s
    assert limits.take("b", 0.5, 2) == 0  # another client: its own bucket


def _two_workers(tmp_path: Path, **kw: object) -> tuple[testing.TestClient, testing.TestClient]:
    """Two apps over one run directory, as two gunicorn workers are."""
    settings = ApiSettings(run_dir=tmp_path / "run", **kw)  # type: ignore[arg-type]
    return (
        testing.TestClient(create_app(settings, FakeBus())),
        testing.TestClient(create_app(settings, FakeBus())),
    )


def test_the_rate_limit_counts_a_client_across_workers(tmp_path: Path) -> None:
    a, b = _two_workers(tmp_path, password_hash="", public_rate_per_s=0.001, public_burst=6)
    codes = [
        (a if i % 2 else b).simulate_post(C.PATH_PAY_INVOICE, json=PAY).status_code
        for i in range(12)
    ]
    assert codes == [200] * 6 + [429] * 6  # one bucket of 6, not one per worker
    refused = a.simulate_post(C.PATH_ROUTING_INFO, json=FED)
    assert refused.status_code == 429 and refused.json["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 900  # a token per 1000 s
    other = a.simulate_post(C.PATH_PAY_INVOICE, json=PAY, remote_addr="10.1.2.3")
    assert other.status_code == 200


def test_wrong_passwords_are_counted_across_workers(tmp_path: Path) -> None:
    hash_ = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    a, b = _two_workers(tmp_path, password_hash=hash_, password_max_failures=4)
    guess = {"Authorization": "Bearer guess"}
    codes = [(a if i % 2 else b).simulate_post(C.PATH_INFO, headers=guess) for i in range(8)]
    assert [r.status_code for r in codes] == [401] * 4 + [429] * 4
    assert 290 <= int(codes[-1].headers["Retry-After"]) <= 300  # the 5-minute window
    # the right password, known to neither worker yet, is refused too while blocked...
    assert a.simulate_post(C.PATH_INFO, headers={"Authorization": "Bearer pw"}).status_code == 429
    # ...but not from elsewhere, and then it is remembered by that worker
    ok = a.simulate_post(
        C.PATH_INFO, headers={"Authorization": "Bearer pw"}, remote_addr="10.0.0.9"
    )
    assert ok.status_code == 200
    assert a.simulate_post(C.PATH_INFO, headers={"Authorization": "Bearer pw"}).status_code == 200


def test_concurrent_guesses_cannot_slip_under_the_limit(tmp_path: Path) -> None:
    """Each try is counted before its (slow) bcrypt check: 20 guesses at once get 5 checks."""
    from concurrent.futures import ThreadPoolExecutor

    from gwcore.errors import RateLimited

    check = PasswordCheck(
        bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=8)).decode(),
        max_failures=5,
        limits=SharedLimits(tmp_path / "limits.sqlite"),
    )

    def guess(i: int) -> str:
        try:
            return "checked" if not check.verify(f"guess {i}", "10.0.0.1") else "right"
        except RateLimited:
            return "refused"

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(guess, range(20)))
    assert results.count("checked") == 5 and results.count("refused") == 15


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # not a proxy: its header is not believed
        ("127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("127.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the left part is the client's say
        ("127.0.0.1", "6.6.6.6, 198.51.100.1, 10.9.3.4", "198.51.100.1"),  # through two proxies
        ("127.0.0.1", "10.9.0.1, 10.9.3.4", "10.9.0.1"),  # every hop a proxy: the left-most
        ("127.0.0.1", "198.51.100.1:5555", "198.51.100.1"),
        ("127.0.0.1", "[2001:db8::1]:443", "2001:db8::1"),
        ("127.0.0.1", "", "127.0.0.1"),
    ],
)
def test_the_client_behind_trusted_proxies(peer: str, forwarded: str | None, client: str) -> None:
    assert client_address(peer, forwarded, PROXIES) == client
    assert client_address(peer, forwarded, []) == peer  # no proxy trusted: always the peer


def test_an_ipv6_client_is_counted_by_its_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::7")
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:198.51.100.1") == "198.51.100.1"
    assert client_key("198.51.100.1") == "198.51.100.1"


def test_behind_a_proxy_each_user_has_a_bucket(tmp_path: Path) -> None:
    """Through a trusted proxy, one user emptying its bucket leaves the others theirs; a
    client faking X-Forwarded-For does not get a new one."""
    a, _ = _two_workers(
        tmp_path,
        password_hash="",
        public_rate_per_s=0.001,
        public_burst=3,
        trusted_proxies="127.0.0.1",
    )

    def pay(xff: str, peer: str = "127.0.0.1") -> int:
        return a.simulate_post(
            C.PATH_PAY_INVOICE, json=PAY, headers={"X-Forwarded-For": xff}, remote_addr=peer
        ).status_code

    assert [pay(f"{i}.{i}.{i}.{i}, 198.51.100.1") for i in range(4)] == [200, 200, 200, 429]
    assert pay("198.51.100.2") == 200  # another user through the same proxy
    # not through the proxy: the peer is the client, whatever it claims
    assert [pay(f"198.51.100.{i + 10}", peer="203.0.113.9") for i in range(4)][-1] == 429
