"""lightningd's side of the plugin protocol, for contract tests of the CLN backend.

Runs `gateway-cln-extension` as lightningd would (LIGHTNINGD_PLUGIN=1; JSON-RPC on its stdin and
stdout, messages separated by blank lines): `getmanifest`, `init`, `htlc_accepted` hook calls,
the `shutdown` notification. It also serves lightningd's JSON-RPC on a unix socket (`rpc-file`:
getinfo, listpeerchannels, listchannels, pay, listpays), answering from a node of the regtest
world, and turns the world's HTLCs for unknown scids into `htlc_accepted` calls, and the plugin's
answers (resolve / fail with a BOLT-4 message / continue) back into the world. So the plugin runs
unchanged against the real protocols, over a simulated network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx

BIN = Path(sys.executable).parent


def scid_str(scid: int) -> str:
    return f"{scid >> 40}x{(scid >> 16) & 0xFFFFFF}x{scid & 0xFFFF}"


class FakeLightningd:
    def __init__(self, info: dict, node: str, workdir: Path, listen: str) -> None:
        self.info, self.node, self.listen = info, node, listen
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.http = httpx.Client(
            base_url=info["api_url"],
            headers={"Authorization": f"Bearer {info['api_token']}"},
            timeout=120,
        )
        self.stdout_garbage: list[bytes] = []
        self.logs: list[str] = []
        self.manifest: dict = {}
        self._next_id = 100
        self._pending: dict[int, Any] = {}  # hook request id -> held HTLC (world's)
        self._write = threading.Lock()
        self._answers: dict[int, threading.Event] = {}
        self._results: dict[int, Any] = {}

    # --- lightningd's JSON-RPC (unix socket) --------------------------------------------------
    def _rpc(self, method: str, params: dict) -> Any:
        me = self.http.get(f"/v1/nodes/{self.node}").json()
        if method == "getinfo":
            return {
                "id": me["pubkey"],
                "alias": me["alias"],
                "network": "regtest",
                "blockheight": me["block_height"],
            }
        if method == "listfunds":  # the node's on-chain funds as one output, its channels
            chans = []
            for c in me["channels"]:
                mine, peer = ("a", "b") if c["node_a"] == self.node else ("b", "a")
                chans.append(
                    {
                        "peer_id": self.http.get(f"/v1/nodes/{c[f'node_{peer}']}").json()["pubkey"],
                        "connected": True,
                        "state": "CHANNELD_NORMAL" if c["state"] == "active" else "ONCHAIN",
                        "short_channel_id": c["scid"],
                        "our_amount_msat": c[f"balance_{mine}_msat"],
                        "amount_msat": c["capacity_sat"] * 1000,
                        "funding_txid": c["funding_txid"],
                        "funding_output": 0,
                    }
                )
            outputs = [
                {"amount_msat": me["onchain_balance_sat"] * 1000, "status": "confirmed"},
                {"amount_msat": 12_345_000, "status": "unconfirmed"},  # not counted
                {"amount_msat": 1_000_000, "status": "confirmed", "reserved": True},  # nor this
            ]
            return {"outputs": outputs, "channels": chans}
        if method == "listpeerchannels":
            out = []
            for c in me["channels"]:
                mine = "a" if c["node_a"] == self.node else "b"
                peer = "b" if mine == "a" else "a"
                pol = c[f"policy_{peer}"]
                peer_id = self.http.get(f"/v1/nodes/{c[f'node_{peer}']}").json()["pubkey"]
                out.append(
                    {
                        "peer_id": peer_id,
                        "state": "CHANNELD_NORMAL",
                        "short_channel_id": c["scid"],
                        "receivable_msat": c[f"balance_{peer}_msat"],
                        "spendable_msat": c[f"balance_{mine}_msat"],
                        "updates": {
                            "remote": {
                                "fee_base_msat": pol["base_msat"],
                                "fee_proportional_millionths": pol["ppm"],
                                "cltv_expiry_delta": pol["cltv_delta"],
                                "htlc_minimum_msat": pol["htlc_min_msat"],
                                "htlc_maximum_msat": pol["htlc_max_msat"]
                                or c["capacity_sat"] * 1000,
                            }
                        },
                    }
                )
            return {"channels": out}
        if method == "pay":
            r = self.http.post(
                f"/v1/nodes/{self.node}/pay",
                json={
                    "bolt11": params["bolt11"],
                    "max_fee_msat": params.get("maxfee"),
                    "max_cltv_delay": params.get("maxdelay"),
                },
            )
            p = r.json()
            if r.status_code >= 400:
                raise RpcFailure(
                    -32602 if p.get("code") != "invoice_expired" else 207, p.get("error", "")
                )
            if p["status"] == "succeeded":
                return {
                    "status": "complete",
                    "payment_preimage": p["preimage"],
                    "amount_msat": p["amount_msat"],
                    "amount_sent_msat": p["amount_msat"] + p["fee_msat"],
                    "payment_hash": p["payment_hash"],
                }
            if p["failure"] == "route_not_found":
                raise RpcFailure(205, "Ran out of routes to try")
            code = p["failure_code"] or 0
            data = {"failcode": code, "failcodename": "WIRE_" + (p["failure"] or "").upper()}
            raise RpcFailure(
                203 if code & 0x4000 and p["failure_node"] != self.node else 210,
                f"failed: {p['failure']}",
                data,
            )
        if method == "listpays":
            r = self.http.get(f"/v1/nodes/{self.node}/payments/{params['payment_hash']}")
            if r.status_code == 404:
                return {"pays": []}
            p = r.json()
            status = {"succeeded": "complete", "failed": "failed", "pending": "pending"}[
                p["status"]
            ]
            pay = {
                "status": status,
                "payment_hash": p["payment_hash"],
                "amount_msat": p["amount_msat"],
                "amount_sent_msat": p["amount_msat"] + p["fee_msat"],
            }
            if p["preimage"]:
                pay["preimage"] = p["preimage"]
            return {"pays": [pay]}
        raise RpcFailure(-32601, f"Unknown command '{method}'")

    def _serve_rpc(self, conn: socket.socket) -> None:
        buff = ""
        decoder = json.JSONDecoder()
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buff += data.decode()
                while buff.strip():
                    try:
                        req, end = decoder.raw_decode(buff.lstrip())
                    except ValueError:
                        break
                    buff = buff.lstrip()[end:]
                    try:
                        if req["method"] == "notifications":
                            reply = {"jsonrpc": "2.0", "id": req["id"], "result": {}}
                        else:
                            reply = {
                                "jsonrpc": "2.0",
                                "id": req["id"],
                                "result": self._rpc(req["method"], req.get("params") or {}),
                            }
                    except (
                        KeyError,
                        ValueError,
                        httpx.HTTPError,
                    ) as exc:  # e.g. the node does not exist
                        reply = {
                            "jsonrpc": "2.0",
                            "id": req["id"],
                            "error": {"code": -1, "message": f"lightningd: {exc!r}"},
                        }
                    except RpcFailure as exc:
                        reply = {
                            "jsonrpc": "2.0",
                            "id": req["id"],
                            "error": {"code": exc.code, "message": exc.message, "data": exc.data},
                        }
                    conn.sendall(json.dumps(reply).encode() + b"\n\n")

    def _rpc_server(self) -> None:
        while True:
            try:
                conn, _ = self.rpc_sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_rpc, args=(conn,), daemon=True).start()

    # --- the plugin (stdin/stdout) ------------------------------------------------------------
    def start(self) -> None:
        self.rpc_path = self.dir / "lightning-rpc"
        self.rpc_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.rpc_sock.bind(str(self.rpc_path))
        self.rpc_sock.listen(16)
        threading.Thread(target=self._rpc_server, daemon=True).start()
        env = {**os.environ, "LIGHTNINGD_PLUGIN": "1"}
        self.proc = subprocess.Popen(
            [str(BIN / "gateway-cln-extension")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self.manifest = self.request("getmanifest", {"allow-deprecated-apis": False})
        self.request(
            "init",
            {
                "options": {"fm-gateway-listen": self.listen},
                "configuration": {
                    "lightning-dir": str(self.dir),
                    "rpc-file": "lightning-rpc",
                    "startup": True,
                    "network": "regtest",
                    "feature_set": {},
                },
            },
        )
        self._bridge_loop = asyncio.new_event_loop()
        threading.Thread(
            target=self._bridge_loop.run_until_complete, args=(self._bridge(),), daemon=True
        ).start()

    def _send(self, obj: dict) -> None:
        with self._write:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(obj).encode() + b"\n\n")
            self.proc.stdin.flush()

    def request(self, method: str, params: dict, timeout: float = 30) -> Any:
        self._next_id += 1
        rid = self._next_id
        ev = threading.Event()
        self._answers[rid] = ev
        self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        if not ev.wait(timeout):
            raise TimeoutError(f"plugin did not answer {method}")
        return self._results.pop(rid)

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        buff = b""
        while True:
            data = self.proc.stdout.read1(65536)
            if not data:
                return
            buff += data
            while b"\n\n" in buff:
                raw, buff = buff.split(b"\n\n", 1)
                if not raw.strip():
                    continue
                try:
                    msg = json.loads(raw)
                except ValueError:
                    self.stdout_garbage.append(raw)  # a plugin must never print to stdout
                    continue
                if "id" in msg and ("result" in msg or "error" in msg):
                    rid = msg["id"]
                    self._results[rid] = msg.get("result", msg.get("error"))
                    if rid in self._pending:
                        self._resolve_in_world(self._pending.pop(rid), msg.get("result", {}))
                    if rid in self._answers:
                        self._answers.pop(rid).set()
                elif msg.get("method") == "log":
                    self.logs.append(str(msg.get("params", {}).get("message")))
                elif "method" in msg:  # a request from the plugin to lightningd: not expected here
                    self.stdout_garbage.append(raw)

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for _ in iter(self.proc.stderr.readline, b""):
            pass

    # --- HTLCs between the world and the plugin -----------------------------------------------
    async def _bridge(self) -> None:
        self._bridge_task = asyncio.current_task()
        try:
            await self._bridge_htlcs()
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # e.g. no such node: the plugin is tested without HTLCs
            self.logs.append(f"bridge stopped: {exc}")

    async def _bridge_htlcs(self) -> None:
        url = self.info["api_url"] + f"/v1/nodes/{self.node}/htlcs/intercept"
        headers = {"Authorization": f"Bearer {self.info['api_token']}"}
        async with aiohttp.ClientSession(headers=headers) as session, session.ws_connect(url) as ws:
            async for msg in ws:
                h = json.loads(msg.data)
                if "id" not in h:
                    continue
                self._next_id += 1
                rid = self._next_id
                self._pending[rid] = h
                params = {
                    "onion": {
                        "type": "tlv",
                        "short_channel_id": scid_str(h["short_channel_id"]),
                        "forward_msat": h["outgoing_amount_msat"],
                        "outgoing_cltv_value": h["outgoing_expiry"],
                        "shared_secret": "00" * 32,
                        "next_onion": "00" * 1366,
                    },
                    "htlc": {
                        "short_channel_id": scid_str(h["incoming_chan_id"]),
                        "id": h["incoming_htlc_id"],
                        "amount_msat": h["incoming_amount_msat"],
                        "cltv_expiry": h["incoming_expiry"],
                        "cltv_expiry_relative": 10,
                        "payment_hash": h["payment_hash"],
                    },
                }
                self._send(
                    {"jsonrpc": "2.0", "id": rid, "method": "htlc_accepted", "params": params}
                )

    def _resolve_in_world(self, h: dict, result: dict) -> None:
        kind = result.get("result")
        if kind == "resolve":
            body = {"action": "settle", "preimage": result["payment_key"]}
        elif kind == "fail":
            body = {"action": "fail", "failure_code": int(result["failure_message"][:4], 16)}
        else:
            body = {"action": "forward"}
        with contextlib.suppress(httpx.HTTPError):
            self.http.post(f"/v1/nodes/{self.node}/htlcs/{h['id']}/resolve", json=body)

    def shutdown(self, timeout: float = 15) -> int:
        self._send({"jsonrpc": "2.0", "method": "shutdown", "params": {}})
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9
        finally:
            self.rpc_sock.close()
            task = getattr(self, "_bridge_task", None)
            if task is not None:
                with contextlib.suppress(RuntimeError):
                    self._bridge_loop.call_soon_threadsafe(task.cancel)
            time.sleep(0.05)


class RpcFailure(Exception):
    def __init__(self, code: int, message: str, data: dict | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data or {}
