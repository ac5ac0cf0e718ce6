"""The whole tree under supervisord: regtest world, two dev federations, the Lightning extension
(sim), the router; federations connected at run time (each actor its own supervisor program);
an incoming payment (alice -> a federation user) and an outgoing one (a federation user -> bob)
through the gateway. Until the API front exists, a small HTTP shim plays its /pay_invoice by
calling the router over the bus, exactly as the front will.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import xmlrpc.client
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import httpx
import pytest
from supervisor.xmlrpc import SupervisorTransport

from bus import BusClient, ipc_endpoint
from deploy.launch import prepare_env
from fedlib.client import FederationClient
from gwcore.constants import (
    GATEWAY_SERVICE,
    METHOD_ACTOR_ADDRESS,
    METHOD_ACTOR_DEPOSIT,
    METHOD_ACTOR_INFO,
    METHOD_ACTOR_PAY,
    METHOD_ACTOR_SET_FEES,
    METHOD_ACTOR_WITHDRAW,
    METHOD_CONNECT_FED,
    METHOD_LIST_FEDS,
    ROUTER_ENDPOINT_NAME,
)
from gwproto import gateway_lnrpc_pb2 as lnpb
from gwproto import gateway_lnrpc_pb2_grpc as lnpb_grpc

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def wait_until(cond, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = cond()
        except Exception:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BusShim:
    """Plays the API front's POST /pay_invoice: JSON in, the router's answer out."""

    def __init__(self, endpoint: str) -> None:
        outer = self
        self.endpoint = endpoint

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, reply = outer.pay(body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def pay(self, body: dict) -> tuple[int, dict]:
        async def go() -> bytes:
            client = BusClient(self.endpoint)
            try:
                return await client.request(
                    body["federation_id"],
                    METHOD_ACTOR_PAY,
                    json.dumps({"contract_id": body["contract_id"]}).encode(),
                    timeout=120,
                    retries=3,
                    idempotent=False,
                    message_id=f"pay-{body['contract_id']}",
                )
            finally:
                await client.close()

        try:
            return 200, json.loads(asyncio.run(go()))
        except Exception as exc:
            return 502, {"error": str(exc), "code": getattr(exc, "code", "error")}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    base = Path(f"/tmp/fmgw-e2e-{os.urandom(3).hex()}")
    run_dir, data_dir = base / "run", base / "data"
    shim = BusShim(ipc_endpoint(run_dir, ROUTER_ENDPOINT_NAME))
    env = prepare_env(
        run_dir,
        data_dir,
        {
            **os.environ,
            "GATEWAY_ROUTER_PUBLIC_API_URL": shim.url,
            "GATEWAY_LNRPC_LISTEN": f"127.0.0.1:{_free_port()}",
        },
    )
    sup = subprocess.Popen(
        [str(BIN / "supervisord"), "-n", "-c", str(REPO / "supervisord.conf")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        info = wait_until(
            lambda: json.loads((data_dir / "regtest" / "regtestd.json").read_text()), 30, "regtestd"
        )
        feds = {
            n: wait_until(
                lambda n=n: json.loads(
                    (data_dir / "federations" / n / "federation.json").read_text()
                ),
                60,
                n,
            )
            for n in ("alpha", "beta")
        }
        for f in feds.values():
            wait_until(
                lambda f=f: httpx.get(f["api_url"] + "/health", timeout=2).status_code == 200,
                60,
                "federation API",
            )

        def extension_up() -> bool:
            with grpc.insecure_channel(env["GATEWAY_LNRPC_LISTEN"]) as ch:
                return (
                    lnpb_grpc.GatewayLightningStub(ch)
                    .GetNodeInfo(lnpb.GetNodeInfoRequest(), timeout=2)
                    .synced
                )

        wait_until(extension_up, 60, "the Lightning extension")
        yield {
            "run_dir": run_dir,
            "data_dir": data_dir,
            "regtest": info,
            "feds": feds,
            "env": env,
            "shim": shim,
        }
    finally:
        sup.send_signal(signal.SIGTERM)
        try:
            sup.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(sup.pid, signal.SIGKILL)
        shim.server.shutdown()
        subprocess.run(["rm", "-rf", str(base)], check=False)


def bus(tree: dict, service: str, method: str, body: dict, timeout: float = 120) -> dict:
    async def go() -> bytes:
        client = BusClient(ipc_endpoint(tree["run_dir"], ROUTER_ENDPOINT_NAME))
        try:
            return await client.request(
                service, method, json.dumps(body).encode(), timeout=timeout, retries=2
            )
        finally:
            await client.close()

    return json.loads(asyncio.run(go()))


class World:
    def __init__(self, info: dict) -> None:
        self.http = httpx.Client(
            base_url=info["api_url"],
            headers={"Authorization": f"Bearer {info['api_token']}"},
            timeout=120,
        )
        self.rpc_auth = (info["rpc_user"], info["rpc_password"])
        self.rpc_url = info["rpc_url"]

    def post(self, path: str, body: dict) -> dict:
        r = self.http.post(path, json=body)
        assert r.status_code < 400, r.text
        return r.json()

    def get(self, path: str) -> dict:
        return self.http.get(path).json()

    def send(self, address: str, btc: str) -> None:
        r = httpx.post(
            self.rpc_url + "/wallet/miner",
            json={"method": "sendtoaddress", "params": [address, btc]},
            auth=self.rpc_auth,
        )
        assert r.json()["error"] is None, r.text
        self.post("/v1/mine", {"blocks": 1})


def test_connect_federations_and_pay_in_and_out(tree: dict, tmp_path: Path) -> None:
    world = World(tree["regtest"])
    for n in ("alice", "bob"):
        world.post("/v1/nodes", {"name": n})
    world.post("/v1/nodes/alice/fund", {"amount_sat": 5_000_000})
    world.post("/v1/nodes/gateway/fund", {"amount_sat": 5_000_000})
    world.post("/v1/channels", {"from": "alice", "to": "gateway", "capacity_sat": 2_000_000})
    world.post("/v1/channels", {"from": "gateway", "to": "bob", "capacity_sat": 2_000_000})

    alpha, beta = tree["feds"]["alpha"], tree["feds"]["beta"]
    a = bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_FED, {"invite_code": alpha["invite_code"]})
    assert (
        a["federation_id"] == alpha["federation_id"] and a["scid"] == 1 and a["state"] == "running"
    )
    b = bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_FED, {"invite_code": beta["invite_code"]})
    assert b["scid"] == 2
    assert (
        bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_FED, {"invite_code": alpha["invite_code"]})[
            "scid"
        ]
        == 1
    )  # twice: the same
    listed = bus(tree, GATEWAY_SERVICE, METHOD_LIST_FEDS, {})
    assert [f["scid"] for f in listed["federations"]] == [1, 2] and listed["extension_connected"]

    # each actor is its own supervisor program
    rpc = xmlrpc.client.ServerProxy(
        "http://127.0.0.1",
        transport=SupervisorTransport(None, None, tree["env"]["SUPERVISOR_SERVER_URL"]),
    )

    def both_running() -> bool:
        names = {p["name"]: p["statename"] for p in rpc.supervisor.getAllProcessInfo()}
        return names.get(a["program"]) == "RUNNING" and names.get(b["program"]) == "RUNNING"

    wait_until(both_running, 10, "both actors RUNNING under supervisord")

    # registered with the federation: our node, our scid, our fees
    gw_node = world.get("/v1/nodes/gateway")
    (reg,) = httpx.get(alpha["api_url"] + "/v1/ln/gateways").json()
    assert (
        reg["scid"] == 1
        and reg["node_pubkey"] == gw_node["pubkey"]
        and reg["fees"]["proportional_millionths"] == 10_000
    )

    # the gateway's liquidity in alpha: a peg-in through its actor
    dep = bus(tree, alpha["federation_id"], METHOD_ACTOR_ADDRESS, {})
    world.send(dep["address"], "0.01")
    assert (
        bus(
            tree,
            alpha["federation_id"],
            METHOD_ACTOR_DEPOSIT,
            {"operation_id": dep["operation_id"]},
        )["credited_msat"]
        == 1_000_000_000
    )

    # incoming: alice (on Lightning) pays a federation user's invoice
    user = FederationClient.join(tmp_path / "user" / "wallet.sqlite", alpha["invite_code"])
    op, invoice = user.ln_receive(50_000, "coffee")
    paid = world.post("/v1/nodes/alice/pay", {"bolt11": invoice})
    assert paid["status"] == "succeeded", paid
    assert user.await_ln_receive(op, timeout=30) == 50_000
    gw_balance = bus(tree, alpha["federation_id"], METHOD_ACTOR_INFO, {})["balance_msat"]
    assert gw_balance == 1_000_000_000 - 50_000

    # outgoing: the user pays bob's invoice through the gateway
    bob_inv = world.post("/v1/nodes/bob/invoices", {"amount_msat": 20_000})
    before = user.balance()
    result = user.ln_pay(bob_inv["bolt11"])
    assert result["preimage"] == bob_inv["preimage"], result
    fee = 0 + 20_000 * 10_000 // 1_000_000
    assert user.balance() == before - 20_000 - fee
    assert world.get("/v1/nodes/bob")["lightning_balance_msat"] == 20_000
    assert (
        bus(tree, alpha["federation_id"], METHOD_ACTOR_INFO, {})["balance_msat"]
        == gw_balance + 20_000 + fee
    )
    # asking again for the same contract never pays twice: the stored preimage comes back
    again = tree["shim"].pay(
        {"federation_id": alpha["federation_id"], "contract_id": result["contract_id"]}
    )
    assert again == (200, {"preimage": bob_inv["preimage"], "contract_id": result["contract_id"]})
    assert world.get("/v1/nodes/bob")["lightning_balance_msat"] == 20_000


def test_swap_between_federations_fees_and_withdraw(tree: dict, tmp_path: Path) -> None:
    """A user of alpha pays a user of beta: no Lightning payment, the gateway swaps e-cash."""
    world = World(tree["regtest"])
    alpha, beta = tree["feds"]["alpha"], tree["feds"]["beta"]
    for f in (alpha, beta):
        bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_FED, {"invite_code": f["invite_code"]})
    dep = bus(tree, beta["federation_id"], METHOD_ACTOR_ADDRESS, {})
    world.send(dep["address"], "0.01")
    bus(tree, beta["federation_id"], METHOD_ACTOR_DEPOSIT, {"operation_id": dep["operation_id"]})
    # fees are per federation and effective at once (re-registered)
    bus(
        tree,
        alpha["federation_id"],
        METHOD_ACTOR_SET_FEES,
        {"base_msat": 1000, "proportional_millionths": 2000},
    )
    wait_until(
        lambda: (
            httpx.get(alpha["api_url"] + "/v1/ln/gateways").json()[0]["fees"]["base_msat"] == 1000
        ),
        10,
        "re-registration",
    )

    payer = FederationClient.join(tmp_path / "payer" / "wallet.sqlite", alpha["invite_code"])
    op, address = payer.deposit_address()
    world.send(address, "0.001")
    payer.await_deposit(op, timeout=20)
    payee = FederationClient.join(tmp_path / "payee" / "wallet.sqlite", beta["invite_code"])
    rop, invoice = payee.ln_receive(30_000, "swap")
    bob_before = world.get("/v1/nodes/bob")["lightning_balance_msat"]
    beta_gw_before = bus(tree, beta["federation_id"], METHOD_ACTOR_INFO, {})["balance_msat"]
    before = payer.balance()
    result = payer.ln_pay(invoice)
    assert result["preimage"], result
    assert payee.await_ln_receive(rop, timeout=30) == 30_000
    fee = 1000 + 30_000 * 2000 // 1_000_000
    assert result["fee_msat"] == fee and payer.balance() == before - 30_000 - fee
    assert (
        bus(tree, beta["federation_id"], METHOD_ACTOR_INFO, {})["balance_msat"]
        == beta_gw_before - 30_000
    )
    assert (
        world.get("/v1/nodes/bob")["lightning_balance_msat"] == bob_before
    )  # nothing crossed Lightning

    # the operator withdraws from beta
    address = httpx.post(
        tree["regtest"]["rpc_url"] + "/wallet/miner",
        json={"method": "getnewaddress", "params": []},
        auth=(tree["regtest"]["rpc_user"], tree["regtest"]["rpc_password"]),
    ).json()["result"]
    out = bus(
        tree,
        beta["federation_id"],
        METHOD_ACTOR_WITHDRAW,
        {"amount_sat": 100_000, "address": address},
    )
    assert out["txid"] and out["fee_sat"] > 0
