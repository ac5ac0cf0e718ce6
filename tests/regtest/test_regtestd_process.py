"""regtestd as a real process, driven by regtest-cli and the Lightning API's websocket."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from .helpers import federation_invoice

BIN = Path(sys.executable).parent


class Regtestd:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> dict:
        self.proc = subprocess.Popen([str(BIN / "regtestd"), "--data-dir", str(self.data_dir), *extra],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                info = json.loads((self.data_dir / "regtestd.json").read_text())
                if info["pid"] == self.proc.pid:
                    return info
            except (OSError, ValueError, KeyError):
                pass
            assert self.proc.poll() is None, "regtestd exited"
            time.sleep(0.05)
        raise AssertionError("regtestd did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "regtest-cli"), "--data-dir", str(self.data_dir), *args],
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    def ok(self, *args: str):  # type: ignore[no-untyped-def]
        out = self.cli(*args)
        assert out.returncode == 0, out.stderr
        try:
            return json.loads(out.stdout)
        except ValueError:
            return out.stdout.strip()


@pytest.fixture
def regtestd(tmp_path: Path) -> Iterator[Regtestd]:
    r = Regtestd(tmp_path / "rt")
    yield r
    r.kill()


def test_cli_world_payment_errors_and_restart(regtestd: Regtestd) -> None:
    info = regtestd.start()
    assert oct((regtestd.data_dir / "regtestd.json").stat().st_mode & 0o777) == "0o600"
    assert regtestd.ok("getblockcount") == 0
    regtestd.ok("mine", "101")
    assert regtestd.ok("getbalance") == 50
    addr = regtestd.ok("getnewaddress")
    assert regtestd.ok("sendtoaddress", addr, "1.5")
    alice = regtestd.ok("node-new", "alice", "--fund", "3000000")
    assert alice["onchain_balance_sat"] == 3_000_000 and len(alice["pubkey"]) == 66
    regtestd.ok("node-new", "bob")
    chan = regtestd.ok("open-channel", "alice", "bob", "1000000", "--push", "10000")
    assert chan["capacity_sat"] == 1_000_000 and chan["balance_b_msat"] == 10_000_000
    inv = regtestd.ok("invoice", "bob", "25000000", "--description", "beer")
    paid = regtestd.ok("pay", "alice", inv["bolt11"])
    assert paid["status"] == "succeeded" and paid["preimage"] == inv["preimage"]
    assert regtestd.ok("balance", "bob")["lightning_balance_msat"] == 35_000_000
    assert len(regtestd.ok("list-channels", "bob")) == 1

    bad = regtestd.cli("pay", "alice", "lnbcrt1notaninvoice")
    assert (
        bad.returncode == 1
        and bad.stderr.startswith("error: invalid_invoice")
        and bad.stderr.count("\n") == 1
    )
    again = regtestd.cli("pay", "bob", inv["bolt11"])  # bob pays his own invoice
    assert again.returncode == 1
    regtestd.ok("node-new", "carol", "--fund", "2000000")
    regtestd.ok("open-channel", "carol", "bob", "500000")
    failed = regtestd.cli("pay", "carol", inv["bolt11"])  # already paid by alice
    assert failed.returncode == 4 and "incorrect_or_unknown_payment_details" in failed.stderr
    assert regtestd.cli("node-info", "nobody").returncode == 1
    assert regtestd.cli("sendtoaddress", "bcrt1qbad", "1").returncode == 1

    height = regtestd.ok("getblockcount")
    regtestd.kill()
    info2 = regtestd.start("--block-interval", "0.2")
    assert (info2["rpc_url"], info2["api_url"]) == (info["rpc_url"], info["api_url"])  # same ports
    assert regtestd.ok("balance", "bob")["lightning_balance_msat"] == 35_000_000
    assert regtestd.ok("node-info", "alice")["pubkey"] == alice["pubkey"]
    time.sleep(0.7)
    assert regtestd.ok("getblockcount") > height  # mined on the timer


async def test_interception_over_the_websocket(regtestd: Regtestd) -> None:
    info = await asyncio.to_thread(regtestd.start)
    ok = regtestd.ok
    await asyncio.to_thread(ok, "node-new", "alice", "--fund", "3000000")
    gw = await asyncio.to_thread(ok, "node-new", "gw")
    await asyncio.to_thread(ok, "open-channel", "alice", "gw", "1000000")
    headers = {"Authorization": f"Bearer {info['api_token']}"}
    preimage = os.urandom(32)
    bolt11 = federation_invoice(gw["pubkey"], 42_000, preimage)
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.ws_connect(info["api_url"] + "/v1/nodes/gw/htlcs/intercept") as ws:
            with pytest.raises(
                aiohttp.WSServerHandshakeError
            ) as second:  # one interceptor at a time
                await http.ws_connect(info["api_url"] + "/v1/nodes/gw/htlcs/intercept")
            assert second.value.status == 409
            pay = asyncio.create_task(
                http.post(info["api_url"] + "/v1/nodes/alice/pay", json={"bolt11": bolt11})
            )
            held = await asyncio.wait_for(ws.receive_json(), 5)
            assert held["short_channel_id"] == 1 and held["outgoing_amount_msat"] == 42_000
            await ws.send_json({"id": held["id"], "action": "settle", "preimage": "00" * 32})
            assert (await ws.receive_json())["ok"] is False  # wrong preimage: still held
            await ws.send_json({"id": held["id"], "action": "settle", "preimage": preimage.hex()})
            assert (await ws.receive_json()) == {"ack": held["id"], "ok": True}
            result = await (await pay).json()
            assert result["status"] == "succeeded" and result["preimage"] == preimage.hex()
        node = await (await http.get(info["api_url"] + "/v1/nodes/gw")).json()
        assert node["lightning_balance_msat"] == 42_000
    async with aiohttp.ClientSession() as unauth:
        assert (await unauth.get(info["api_url"] + "/v1/info")).status == 401
