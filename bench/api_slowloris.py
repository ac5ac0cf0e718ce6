"""Slow clients against the API front on the real gunicorn: liveness and the admin API while
hostile connections trickle their requests.

    python bench/api_slowloris.py [--n 200] [--hold 30] [--every 2] [--worker-class gthread]

gunicorn with deploy/gunicorn.conf.py (two workers, eight threads each, the default read
deadlines: headers 10 s, body 20 s) serves the app over the fake bus (tests/api/fake_front.py).
For each kind of slow client — headers sent a line every `--every` seconds, or a declared body
a byte at a time — `--n` such connections are held for `--hold` seconds (each one the server
cuts opened again at once, as an attacker would), while an honest client asks /health/live and
the admin /info (Bearer password) four times a second, each on a fresh connection with a 5 s
timeout. `--worker-class gthread` runs gunicorn's own threaded worker instead, for comparison.
Prints a table and, last, one JSON line {"bench": "api_slowloris", ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bcrypt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gwcore import constants as C  # noqa: E402
from peers.harness.procs import stop_group  # noqa: E402
from tests.api.slowclients import SlowClients, timed_get, timed_post  # noqa: E402


def start_front(worker_class: str | None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "GATEWAY_API_RUN_DIR": tempfile.mkdtemp(prefix="bench-slowloris-"),
        "GATEWAY_API_BIND": f"127.0.0.1:{port}",
        "GATEWAY_API_PASSWORD_HASH": bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode(),
    }
    extra = ["-k", worker_class] if worker_class else []
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-c",
            "deploy/gunicorn.conf.py",
            *extra,
            "tests.api.fake_front:get_app()",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while timed_get(url + C.PATH_HEALTH_LIVE, timeout=1)[1] != 200:
        if time.monotonic() > deadline:
            raise SystemExit("the front did not start")
        time.sleep(0.2)
    return proc, url


def run(url: str, n: int, hold: float, every: float, body: bool) -> dict[str, Any]:
    slow = SlowClients("127.0.0.1", int(url.rsplit(":", 1)[1]), n, body=body, every_s=every)
    slow.start()
    live: list[tuple[float, int]] = []
    info: list[tuple[float, int]] = []
    until = time.monotonic() + hold
    try:
        time.sleep(min(1.0, hold / 10))
        while time.monotonic() < until:
            live.append(timed_get(url + C.PATH_HEALTH_LIVE))
            info.append(timed_post(url + C.PATH_INFO, {"Authorization": "Bearer pw"}))
            time.sleep(0.25)
    finally:
        slow.stop()
    out: dict[str, Any] = {"cut": len(slow.lifetimes), "opened": slow.opened}
    out["cut_after_s_max"] = round(max(slow.lifetimes), 1) if slow.lifetimes else None
    for name, got in (("live", live), ("info", info)):
        times = sorted(s for s, _ in got)
        out[f"{name}_asked"] = len(got)
        out[f"{name}_failed"] = sum(status != 200 for _, status in got)
        out[f"{name}_p50_ms"] = round(statistics.median(times) * 1000, 1)
        out[f"{name}_max_ms"] = round(times[-1] * 1000, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--hold", type=float, default=30.0)
    ap.add_argument("--every", type=float, default=2.0)
    ap.add_argument("--worker-class", default=None, help="e.g. gthread, to compare")
    args = ap.parse_args()
    proc, url = start_front(args.worker_class)
    result: dict[str, Any] = {
        "bench": "api_slowloris",
        "worker": args.worker_class or "BufferingWorker",
        "n": args.n,
        "hold_s": args.hold,
        "every_s": args.every,
    }
    try:
        print(
            f"{'slow part':<10}{'live p50/max ms':>18}{'info p50/max ms':>18}"
            f"{'failed':>8}{'cut':>6}{'cut after s':>12}"
        )
        for part in ("headers", "body"):
            r = run(url, args.n, args.hold, args.every, body=part == "body")
            print(
                f"{part:<10}{r['live_p50_ms']:>9}/{r['live_max_ms']:<8}"
                f"{r['info_p50_ms']:>9}/{r['info_max_ms']:<8}"
                f"{r['live_failed'] + r['info_failed']:>8}{r['cut']:>6}"
                f"{r['cut_after_s_max'] if r['cut_after_s_max'] is not None else '-':>12}"
            )
            result[part] = r
    finally:
        stop_group(proc, 30)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
