"""The API front on the real gunicorn (deploy/gunicorn.conf.py, two workers, the fake bus of
tests/api/fake_front.py) against hostile clients: slow headers and slow bodies are cut by the
read deadlines while liveness and the admin API keep answering within a second; the rate limit
and the wrong-password throttle are one count per client across the workers, answer 429 with
Retry-After, and tell the users of a trusted reverse proxy apart."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bcrypt
import httpx
import pytest

from gwcore import constants as C
from peers.harness.procs import stop_group

from .fakes import CID, FED
from .slowclients import SlowClients, timed_get, timed_post

REPO = Path(__file__).resolve().parents[2]
READ_TIMEOUT_S = 2.0  # header and body deadlines of this front (10 s / 20 s by default)
BURST = 8
MAX_FAILURES = 4
PAY = {"federation_id": FED, "contract_id": CID}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    run_dir = tmp_path_factory.mktemp("front")
    port = _free_port()
    env = {
        **os.environ,
        "GATEWAY_API_RUN_DIR": str(run_dir),
        "GATEWAY_API_BIND": f"127.0.0.1:{port}",
        "GATEWAY_API_WORKERS": "2",
        "GATEWAY_API_PASSWORD_HASH": bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode(),
        "GATEWAY_API_HEADER_TIMEOUT_S": str(READ_TIMEOUT_S),
        "GATEWAY_API_BODY_TIMEOUT_S": str(READ_TIMEOUT_S),
        "GATEWAY_API_PUBLIC_RATE_PER_S": "0.001",
        "GATEWAY_API_PUBLIC_BURST": str(BURST),
        "GATEWAY_API_PASSWORD_MAX_FAILURES": str(MAX_FAILURES),
        "GATEWAY_API_TRUSTED_PROXIES": "127.0.0.1",  # as a reverse proxy on this host
    }
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-c",
            str(REPO / "deploy" / "gunicorn.conf.py"),
            "tests.api.fake_front:get_app()",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(run_dir / "gunicorn.log", "wb"),  # noqa: SIM115 - for the process's life
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while timed_get(url + C.PATH_HEALTH_LIVE, timeout=1)[1] != 200:
            assert time.monotonic() < deadline, (run_dir / "gunicorn.log").read_text()
            time.sleep(0.2)
        yield url
    finally:
        stop_group(proc, 30)


@pytest.mark.parametrize("slow_part", ["headers", "body"])
def test_slow_clients_are_cut_and_do_not_stall_the_front(front: str, slow_part: str) -> None:
    """200 connections sending a header line (or a body byte) every half second, each one the
    server cuts opened again: meanwhile /health/live and the admin /info answer within a
    second, and every slow connection is cut about when its read deadline passes."""
    port = int(front.rsplit(":", 1)[1])
    slow = SlowClients("127.0.0.1", port, 200, body=slow_part == "body", every_s=0.5)
    slow.start()
    answers = []
    try:
        time.sleep(0.5)  # all 200 open and trickling
        until = time.monotonic() + 3 * READ_TIMEOUT_S
        while time.monotonic() < until:
            answers.append(timed_get(front + C.PATH_HEALTH_LIVE))
            answers.append(timed_post(front + C.PATH_INFO, {"Authorization": "Bearer pw"}))
            time.sleep(0.2)
    finally:
        slow.stop()
    assert answers and all(status == 200 for _, status in answers), answers
    assert max(s for s, _ in answers) < 1.0, sorted(s for s, _ in answers)[-5:]
    # cut by the deadline, not left hanging: the first 200 at least, none long after it
    assert len(slow.lifetimes) >= 200, (slow.opened, len(slow.lifetimes))
    assert max(slow.lifetimes) < READ_TIMEOUT_S + 1.0, max(slow.lifetimes)
    assert min(slow.lifetimes) > READ_TIMEOUT_S - 0.2  # and not before


def _spread(requests: list, send) -> list[httpx.Response]:  # type: ignore[no-untyped-def]
    """Send each on a fresh connection, 8 at a time, so that both workers take some."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(send, requests))


def test_the_rate_limit_is_one_count_per_client_across_workers(front: str) -> None:
    """One client (as the trusted proxy names it) gets BURST answers from the two workers
    together, then 429 with Retry-After; another user through the same proxy is not affected,
    and a client not coming through the proxy cannot pose as many."""

    def pay(xff: str) -> httpx.Response:
        return httpx.post(
            front + C.PATH_PAY_INVOICE, json=PAY, headers={"X-Forwarded-For": xff}, timeout=10
        )

    answers = _spread(["6.6.6.6, 198.51.100.7"] * (4 * BURST), pay)
    assert len({r.headers["X-Worker-Pid"] for r in answers}) == 2  # both workers answered
    assert [r.status_code for r in answers].count(200) == BURST
    refused = [r for r in answers if r.status_code == 429]
    assert len(refused) == 3 * BURST and refused[0].json()["code"] == "rate_limited"
    assert all(int(r.headers["Retry-After"]) >= 900 for r in refused)  # 1 token per 1000 s
    assert pay("198.51.100.8").status_code == 200  # another user behind the proxy

    def pay_direct(xff: str) -> int:  # from 127.0.0.2: not the trusted proxy
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as c:
            r = c.post(front + C.PATH_PAY_INVOICE, json=PAY, headers={"X-Forwarded-For": xff})
            return r.status_code

    codes = [pay_direct(f"203.0.113.{i}") for i in range(BURST + 1)]
    assert codes == [200] * BURST + [429]


def test_wrong_passwords_are_one_count_per_client_across_workers(front: str) -> None:
    def guess(i: int) -> httpx.Response:
        return httpx.post(
            front + C.PATH_INFO,
            headers={"Authorization": f"Bearer guess {i}", "X-Forwarded-For": "198.51.100.20"},
            timeout=10,
        )

    answers = _spread(list(range(6 * MAX_FAILURES)), guess)
    assert len({r.headers["X-Worker-Pid"] for r in answers}) == 2
    assert [r.status_code for r in answers].count(401) == MAX_FAILURES
    refused = [r for r in answers if r.status_code == 429]
    assert len(refused) == 5 * MAX_FAILURES
    assert all(0 < int(r.headers["Retry-After"]) <= 300 for r in refused)
    other = httpx.post(
        front + C.PATH_INFO,
        headers={"Authorization": "Bearer pw", "X-Forwarded-For": "198.51.100.21"},
    )
    assert other.status_code == 200  # the operator, elsewhere, is not locked out


def _exchange(port: int, data: bytes, then: bytes = b"", wait_s: float = 0.0) -> bytes:
    """Send `data` (then, after `wait_s`, `then`) on one connection; everything answered until
    the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        if then:
            time.sleep(wait_s)
            s.sendall(then)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_honest_clients_are_served_as_before(front: str) -> None:
    """Kept-alive connections, pipelined requests, chunked bodies and Expect: 100-continue
    work; an oversized body is refused before it is sent."""
    port = int(front.rsplit(":", 1)[1])
    with httpx.Client(base_url=front) as c:  # one connection, kept alive
        pids = {c.get(C.PATH_HEALTH_LIVE).headers["X-Worker-Pid"] for _ in range(5)}
        assert len(pids) == 1
    live = b"GET /health/live HTTP/1.1\r\nHost: gw\r\n\r\n"
    closing = b"GET /openapi.json HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
    assert _exchange(port, live + live + closing).count(b"HTTP/1.1 200 OK") == 3
    body = b'"' + FED.encode() + b'"'
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 7]), body[i : i + 7]) for i in range(0, len(body), 7)
    )
    post = b"POST /routing_info HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
    answer = _exchange(
        port,
        post + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked + b"0\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer
    expecting = (
        post
        + b"Expect: 100-continue\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    answer = _exchange(port, expecting, then=body, wait_s=0.2)
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"), answer
    assert answer.count(b"100 Continue") == 1
    too_large = _exchange(port, post + b"Content-Length: 10000000\r\n\r\n")
    assert too_large.startswith(b"HTTP/1.1 413") and b'"too_large"' in too_large
