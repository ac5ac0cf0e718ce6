"""Payments through the gateway on a real lnd, beside direct lnd payments in the same run.

The gateway runs alone as an operator deploys it (`python -m deploy.gateway`, extension on a
real lnd v0.21.3-beta with `--requireinterceptor`, btcd regtest), serving a real 1-guardian
fedimintd federation whose guardians list it; alice and bob are real lnd nodes
(alice -> gateway -> bob). Every Lightning payment is `lncli payinvoice` (its process start
included on both sides of each ratio).

  in:       alice pays a fedimint-cli user's LNv2 invoice (hold invoice on our lnd -> contract
            funded -> decryption shares -> settled): alice's payment alone, and the user's whole
            receive (`lnv2 receive` .. `await-receive` Claimed);
  forward:  alice pays bob through our node (alice -> gateway -> bob; our interceptor resumes
            it): the Lightning floor for `in` (ratio in/forward: what the gateway adds);
  out:      the user pays bob's invoice through us (`lnv2 send` + `await-send`, start to
            Success), beside our lnd paying bob directly (gateway -> bob).

    python bench/lnd_gateway.py [--rounds 10]

Prints a table and, last, one JSON line {"bench": "lnd_gateway", ...}. Stops everything.
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
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import start_federation
from peers.harness.lnd import Lnd, LndWorld
from peers.harness.procs import free_ports
from tests.fedimint.conftest import funded_user

REPO = Path(__file__).resolve().parent.parent


def p90(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(len(xs) * 0.9 + 0.5) - 1)]


def deploy_gateway(
    base: Path, gw: Lnd, settings: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str, str]:
    """`python -m deploy.gateway` with an environment file for this lnd (and `settings`, more
    of its lines): (process, URL, admin password)."""
    import bcrypt

    (api_port,) = free_ports(1)
    password = os.urandom(12).hex()
    url = f"http://127.0.0.1:{api_port}"
    base.mkdir(parents=True, exist_ok=True)
    env_file = base / "gateway.env"
    env_file.write_text(
        "\n".join(
            [
                f"GATEWAY_DATA_DIR={base / 'data'}",
                f"GATEWAY_RUN_DIR={base / 'run'}",
                f"GATEWAY_API_BIND=127.0.0.1:{api_port}",
                f"GATEWAY_ROUTER_PUBLIC_API_URL={url}",
                f"GATEWAY_API_PASSWORD_HASH={bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}",
                "GATEWAY_RUN_EXTENSION=true",
                "GATEWAY_LNRPC_BACKEND=lnd",
                f"GATEWAY_LNRPC_LND_HOST={gw.rpc_host}",
                f"GATEWAY_LNRPC_LND_TLS_CERT={gw.tls_cert}",
                f"GATEWAY_LNRPC_LND_MACAROON={gw.macaroon}",
                *(f"{k}={v}" for k, v in (settings or {}).items()),
            ]
        )
        + "\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploy.gateway", "--env-file", str(env_file)],
        cwd=REPO,
        env=env,
        stdout=(base / "gateway.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url, password
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((base / "gateway.log").read_text()[-3000:])
        time.sleep(0.3)


def pay(node: Lnd, bolt11: str) -> float:
    t = time.perf_counter()
    p = node.cli("payinvoice", "--force", "--json", "--timeout=60s", bolt11, timeout=90)
    took = time.perf_counter() - t
    assert p["status"] == "SUCCEEDED", p
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="fmgw-lndbench-"))
    node = Bitcoind.start(base / "bitcoind")
    world = proc = fed = None
    try:
        world = LndWorld.start(base / "lnd")
        gw_node, alice, bob = (world.node(n) for n in ("gateway", "alice", "bob"))
        fed = start_federation(base / "fed", node, 1)
        user = funded_user(fed, node, base / "user", sat=500_000)
        proc, url, password = deploy_gateway(base / "gw", gw_node)
        gw = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {password}"}, timeout=150
        )
        r = gw.post("/connect-fed", json={"invite_code": fed.invite_code})
        assert r.status_code == 200, r.text
        notes = str(user("module", "mintv2", "send", "300000000"))
        assert httpx.post(url + "/receive_ecash", json={"notes": notes}, timeout=150).is_success
        info = gw.post("/info").json()["federations"]
        fed.add_gateway(
            next(f for f in info if f["federation_id"] == fed.federation_id)["lnv2_gateway_url"]
        )
        ins, receives, forwards, outs, directs = [], [], [], [], []
        for i in range(args.rounds + 1):  # the first warms up
            t = time.perf_counter()
            invoice, op = user("module", "lnv2", "receive", "100000")  # type: ignore[misc]
            htlc = pay(alice, str(invoice))
            assert user("module", "lnv2", "await-receive", str(op)) == "Claimed"
            whole = time.perf_counter() - t
            forward = pay(alice, bob.cli("addinvoice", "--amt_msat=100000")["payment_request"])
            bolt11 = bob.cli("addinvoice", "--amt_msat=50000")["payment_request"]
            t = time.perf_counter()
            send = str(user("module", "lnv2", "send", bolt11))
            assert "Success" in user("module", "lnv2", "await-send", send)  # type: ignore[operator]
            out = time.perf_counter() - t
            direct = pay(gw_node, bob.cli("addinvoice", "--amt_msat=50000")["payment_request"])
            if i:
                ins.append(htlc)
                receives.append(whole)
                forwards.append(forward)
                outs.append(out)
                directs.append(direct)
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(90)
        if fed is not None:
            fed.stop()
        if world is not None:
            world.stop()
        node.stop()
        shutil.rmtree(base, ignore_errors=True)
    row = {
        "in_p50_s": statistics.median(ins),
        "in_p90_s": p90(ins),
        "forward_p50_s": statistics.median(forwards),
        "forward_p90_s": p90(forwards),
        "in_over_forward_p50": statistics.median(ins) / statistics.median(forwards),
        "receive_p50_s": statistics.median(receives),
        "receive_p90_s": p90(receives),
        "out_p50_s": statistics.median(outs),
        "out_p90_s": p90(outs),
        "direct_p50_s": statistics.median(directs),
        "direct_p90_s": p90(directs),
        "out_over_direct_p50": statistics.median(outs) / statistics.median(directs),
    }
    print(f"payments through the gateway on a real lnd, {args.rounds} rounds (seconds)")
    print(
        f"in (alice pays an LNv2 invoice)  p50 {row['in_p50_s']:.3f}  p90 {row['in_p90_s']:.3f}\n"
        f"forward alice->gw->bob           p50 {row['forward_p50_s']:.3f}  p90 {row['forward_p90_s']:.3f}"
        f"  in/forward {row['in_over_forward_p50']:.2f}\n"
        f"receive (user, start to Claimed) p50 {row['receive_p50_s']:.3f}  p90 {row['receive_p90_s']:.3f}\n"
        f"out (user send to Success)       p50 {row['out_p50_s']:.3f}  p90 {row['out_p90_s']:.3f}\n"
        f"direct gw->bob                   p50 {row['direct_p50_s']:.3f}  p90 {row['direct_p90_s']:.3f}"
        f"  out/direct {row['out_over_direct_p50']:.2f}"
    )
    print(json.dumps({"bench": "lnd_gateway", "rounds": args.rounds, **row}))


if __name__ == "__main__":
    main()
