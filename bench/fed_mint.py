"""Development federation throughput: blind signatures/s and reissue transactions/s.

    python bench/fed_mint.py [--seconds 3]

1. blind signatures: the mint's BDHKE signing with DLEQ proof, in-process (the crypto floor).
2. reissues: a real regtestd and a real guardiand (gunicorn), one wallet reissuing notes to
   itself over HTTP (each reissue = 1 transaction: note inputs -> new blinded notes, DLEQ
   verified, persisted on both sides), sequentially and from 4 wallets at once.
Prints a table and, last, one JSON line {"bench": "fed_mint", ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from devworld.fedlib import crypto
from devworld.fedlib.client import FederationClient

BIN = Path(sys.executable).parent


def wait_json(path: Path, pid: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            info = json.loads(path.read_text())
            if info["pid"] == pid:
                return info
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise SystemExit(f"{path} not written")


def blind_signatures(seconds: float) -> float:
    k = crypto.new_key()
    msgs = [crypto.blind(os.urandom(32))[0] for _ in range(200)]
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        crypto.sign_blinded(k, msgs[n % 200])
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    sigs = blind_signatures(args.seconds)
    tmp = Path(tempfile.mkdtemp(prefix="fmgw-fedbench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        rt = subprocess.Popen(
            [str(BIN / "regtestd"), "--data-dir", str(tmp / "rt")], stderr=subprocess.DEVNULL
        )
        procs.append(rt)
        info = wait_json(tmp / "rt" / "regtestd.json", rt.pid)
        host = info["rpc_url"].removeprefix("http://")
        rpc = f"http://{info['rpc_user']}:{info['rpc_password']}@{host}"
        g = subprocess.Popen([str(BIN / "guardiand"), "--data-dir", str(tmp / "fed"), "--name", "bench", "--chain-rpc", rpc],
                             stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        procs.append(g)
        fed = wait_json(tmp / "fed" / "federation.json", g.pid)
        http = httpx.Client(timeout=30)

        def call(method: str, *params: object, wallet: str | None = None) -> object:
            url = info["rpc_url"] + (f"/wallet/{wallet}" if wallet else "/")
            return http.post(
                url,
                json={"method": method, "params": list(params)},
                auth=(info["rpc_user"], info["rpc_password"]),
            ).json()["result"]

        miner = call("getnewaddress", wallet="miner")
        call("generatetoaddress", 101, miner)
        wallets = []
        for i in range(4):
            w = FederationClient.join(tmp / f"w{i}" / "wallet.sqlite", fed["invite_code"])
            op, address = w.deposit_address()
            call("sendtoaddress", address, "0.01", wallet="miner")
            wallets.append((w, op))
        call("generatetoaddress", 1, miner)
        for w, op in wallets:
            w.await_deposit(op, timeout=30)

        def reissue_once(w: FederationClient) -> float:
            t0 = time.perf_counter()
            w.reissue(w.spend(1 << 20))  # the spend is local when exact notes exist
            return time.perf_counter() - t0

        w0 = wallets[0][0]
        for _ in range(5):
            reissue_once(w0)
        lat, t0 = [], time.perf_counter()
        while time.perf_counter() - t0 < args.seconds:
            lat.append(reissue_once(w0))
        seq_tps = len(lat) / (time.perf_counter() - t0)
        counts = [0] * 4
        stop = time.perf_counter() + args.seconds

        def churn(i: int) -> None:
            while time.perf_counter() < stop:
                reissue_once(wallets[i][0])
                counts[i] += 1

        threads = [threading.Thread(target=churn, args=(i,)) for i in range(4)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        par_tps = sum(counts) / (time.perf_counter() - t0)
    finally:
        for p in procs:
            if p is procs[-1] and len(procs) > 1:
                os.killpg(p.pid, signal.SIGTERM)
            else:
                p.send_signal(signal.SIGTERM)
            p.wait(15)
        shutil.rmtree(tmp, ignore_errors=True)
    r = {
        "blind_signatures_per_s": round(sigs),
        "reissues_per_s": round(seq_tps, 1),
        "reissue_p50_ms": round(statistics.median(lat) * 1000, 2),
        "reissues_per_s_4_wallets": round(par_tps, 1),
    }
    print(f"{'what':<52}{'figure':>12}")
    print(f"{'blind signatures (BDHKE + DLEQ), in-process':<52}{r['blind_signatures_per_s']:>12}")
    print(f"{'reissue transactions/s, one wallet, HTTP':<52}{r['reissues_per_s']:>12}")
    print(f"{'reissue p50 ms':<52}{r['reissue_p50_ms']:>12}")
    print(f"{'reissue transactions/s, 4 wallets at once':<52}{r['reissues_per_s_4_wallets']:>12}")
    print(json.dumps({"bench": "fed_mint", **r}))


if __name__ == "__main__":
    main()
