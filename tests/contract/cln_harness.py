"""lightningd's side of the plugin protocol, for contract tests of the CLN backend.

Runs `gateway-cln-extension` as lightningd would (LIGHTNINGD_PLUGIN=1; JSON-RPC on its stdin and
stdout, messages separated by blank lines): `getmanifest`, `init`, `htlc_accepted` hook calls,
the `shutdown` notification. It also serves lightningd's JSON-RPC on a unix socket (`rpc-file`:
getinfo, listfunds, listpeerchannels, pay, listpays, listinvoices, signinvoice, datastore,
listdatastore), answering from a node of the regtest world, and turns the world's HTLCs into
`htlc_accepted` calls, and the plugin's answers back into the world. So the plugin runs unchanged
against the real protocols, over a simulated network. Where this stand-in and a real lightningd
differ, the real one is right; what it imitates, and how:

* Forwards: an HTLC the world's node holds for an unknown next-hop scid becomes a hook call with
  the onion's `short_channel_id`, `forward_msat`, `outgoing_cltv_value`; resolve / fail (the
  failure code of the BOLT-4 message) / continue go back to the world's HTLC.
* `signinvoice invstring` -> `{"bolt11"}`: the invoice signed with the node's key, its own
  signature ignored, nothing else changed. A real lightningd stores nothing; the world, which
  plays the rest of the network, must know the invoice to hold the HTLCs paying it, so the
  stand-in hands it to the world's node to adopt (signed by its key, held as a hold invoice).
  So signing a second, different invoice for a payment hash in use fails here, not in lightningd.
* Final hop: lightningd calls `htlc_accepted` for every HTLC it is the destination of, before it
  looks at its own invoices. Here the world holds an HTLC paying an adopted invoice (state
  accepted, after the world's own checks of payment secret, amount, expiry and CLTV, which the
  plugin makes again) and the stand-in calls the hook without `short_channel_id`, with the final
  onion fields (`payload`, `forward_msat`, `outgoing_cltv_value`, `total_msat`,
  `payment_secret`). resolve -> the world's invoice settled with `payment_key`; fail -> canceled
  (the world answers incorrect_or_unknown_payment_details whatever `failure_message` said);
  continue -> canceled too (lightningd has no invoice of that hash). HTLCs of the node's ordinary
  invoices are settled by the world without a hook call (the plugin would answer continue).
  On start, HTLCs still held are offered again, as lightningd replays at startup those it has
  no verdict for; while the stand-in runs, the hook is called once per HTLC.
* `datastore`/`listdatastore`: CLN's semantics (`cln_datastore.py`), kept in the lightning dir.
* `listinvoices [payment_hash]`: the node's ordinary (not hold) world invoices as lightningd's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
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
from bolt11 import decode as bolt11_decode

from tests.contract.cln_datastore import Datastore, DatastoreError

BIN = Path(sys.executable).parent


def scid_str(scid: int) -> str:
    return f"{scid >> 40}x{(scid >> 16) & 0xFFFFFF}x{scid & 0xFFFF}"


def final_payload(amount_msat: int, cltv: int, secret: str, total_msat: int) -> str:
    """The raw onion payload of a final hop, as lightningd shows it (length-prefixed TLV:
    amt_to_forward, outgoing_cltv_value, payment_data = secret + total_msat)."""

    def tu(n: int) -> bytes:
        return n.to_bytes(8, "big").lstrip(b"\0")

    records = [(2, tu(amount_msat)), (4, tu(cltv)), (8, bytes.fromhex(secret) + tu(total_msat))]
    tlv = b"".join(bytes([t, len(v)]) + v for t, v in records)
    return (bytes([len(tlv)]) + tlv).hex()


class FakeLightningd:
    def __init__(
        self, info: dict, node: str, workdir: Path, listen: str, tls_dir: Path | None = None
    ) -> None:
        self.info, self.node, self.listen, self.tls_dir = info, node, listen, tls_dir
        self.init_result: Any = None
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
        self._ids = itertools.count(101)
        self._pending: dict[int, Any] = {}  # hook request id -> what to do with the answer
        self._hooked: set[tuple[str, int, int]] = set()  # final-hop HTLCs handed to the hook
        self.datastore = Datastore(self.dir / "datastore.json")
        self._write = threading.Lock()
        self._answers: dict[int, threading.Event] = {}
        self._results: dict[int, Any] = {}

    # --- lightningd's JSON-RPC (unix socket) --------------------------------------------------
    def _rpc(self, method: str, params: dict) -> Any:
        if method in ("datastore", "listdatastore"):
            try:
                return getattr(self.datastore, method)(params)
            except DatastoreError as exc:
                raise RpcFailure(exc.code, exc.message) from None
        if method == "signinvoice":  # the world's node signs it (and adopts it: see above)
            r = self.http.post(
                f"/v1/nodes/{self.node}/invoices", json={"bolt11": params["invstring"]}
            )
            if r.status_code >= 400:
                raise RpcFailure(-1, r.json().get("error", r.text))
            return {"bolt11": r.json()["bolt11"]}
        if method == "listinvoices":
            return {"invoices": self._invoices(params.get("payment_hash"))}
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

    def _invoices(self, payment_hash: str | None) -> list[dict]:
        """lightningd's own invoices: the world's ordinary ones of the node (not the adopted)."""
        out = []
        for inv in self.http.get(f"/v1/nodes/{self.node}/invoices").json():
            if inv["hold"] or inv["state"] == "canceled":  # (a canceled one: deleted)
                continue
            if payment_hash and inv["payment_hash"] != payment_hash:
                continue
            status = "paid" if inv["state"] == "settled" else "unpaid"
            if status == "unpaid" and inv["expires_at"] < time.time():
                status = "expired"
            same = ("bolt11", "payment_hash", "amount_msat", "description", "expires_at")
            out.append(
                {"label": inv["payment_hash"], "status": status, **{k: inv[k] for k in same}}
            )
        return out

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
        self.rpc_path.unlink(missing_ok=True)  # left by an earlier run, as lightningd does
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
        options = {"fm-gateway-listen": self.listen}
        if self.tls_dir is not None:
            options["fm-gateway-tls-dir"] = str(self.tls_dir)
        self.init_result = self.request(
            "init",
            {
                "options": options,
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
        rid = next(self._ids)
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
                        self._pending.pop(rid)(msg.get("result", {}))
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
            async with asyncio.TaskGroup() as group:
                group.create_task(self._bridge_htlcs())
                group.create_task(self._bridge_final_hops())
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
                rid = next(self._ids)
                self._pending[rid] = lambda result, h=h: self._resolve_in_world(h, result)
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

    async def _bridge_final_hops(self) -> None:
        """HTLCs the world holds on the node's adopted invoices -> final-hop hook calls."""
        api, node = self.info["api_url"], self.node
        headers = {"Authorization": f"Bearer {self.info['api_token']}"}
        async with (
            aiohttp.ClientSession(headers=headers) as session,
            session.ws_connect(f"{api}/v1/nodes/{node}/invoices/subscribe") as ws,
        ):
            async with session.get(f"{api}/v1/nodes/{node}/invoices") as r:
                held_now = await r.json()  # held before we started: replayed
            for inv in held_now:
                await self._final_hop(session, inv)
            async for msg in ws:
                await self._final_hop(session, json.loads(msg.data))

    async def _final_hop(self, session: aiohttp.ClientSession, inv: dict) -> None:
        h = inv.get("htlc")
        if not inv.get("hold") or inv.get("state") != "accepted" or not h:
            return
        ident = (inv["payment_hash"], h["incoming_chan_id"], h["incoming_htlc_id"])
        if ident in self._hooked:
            return
        self._hooked.add(ident)
        async with session.get(self.info["api_url"] + "/v1/info") as r:
            height = (await r.json())["block_height"]
        secret = bolt11_decode(inv["bolt11"]).payment_secret
        amount, expiry = inv["amount_received_msat"], h["incoming_expiry"]
        params = {
            "onion": {
                "payload": final_payload(amount, expiry, secret, amount),
                "type": "tlv",
                "forward_msat": amount,
                "outgoing_cltv_value": expiry,
                "total_msat": amount,
                "payment_secret": secret,
                "next_onion": "00" * 1366,
                "shared_secret": "00" * 32,
            },
            "htlc": {
                "short_channel_id": scid_str(h["incoming_chan_id"]),
                "id": h["incoming_htlc_id"],
                "amount_msat": amount,
                "cltv_expiry": expiry,
                "cltv_expiry_relative": expiry - height,
                "payment_hash": inv["payment_hash"],
            },
        }
        rid = next(self._ids)
        self._pending[rid] = lambda result: self._answer_final_hop(inv["payment_hash"], result)
        self._send({"jsonrpc": "2.0", "id": rid, "method": "htlc_accepted", "params": params})

    def _answer_final_hop(self, payment_hash: str, result: dict) -> None:
        path = f"/v1/nodes/{self.node}/invoices/{payment_hash}"
        with contextlib.suppress(httpx.HTTPError):
            if result.get("result") == "resolve":
                self.http.post(f"{path}/settle", json={"preimage": result["payment_key"]})
            else:  # fail, or continue: lightningd has no invoice of that hash
                self.http.post(f"{path}/cancel", json={})

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

    def plugin_stop(self) -> str:
        """`lightning-cli plugin stop`, as lightningd answers it: a plugin that is not dynamic
        cannot be stopped while lightningd runs (plugin_control.c)."""
        if not self.manifest.get("dynamic", True):
            raise RpcFailure(
                -32602, "gateway-cln-extension cannot be managed when lightningd is up"
            )
        self.kill_plugin()
        return "Successfully stopped gateway-cln-extension."

    def kill_plugin(self) -> None:
        """The plugin dies while lightningd runs (a crash, kill -9): lightningd answers each hook
        call it was holding as if it had said `continue` (plugin.c's destroy_plugin fails its
        pending requests with PLUGIN_TERMINATED; plugin_hook.c then goes on to the next hook,
        here none): a forward to a virtual scid fails, a hold invoice's HTLC fails. Nothing is
        replayed to a plugin started later."""
        self.proc.kill()
        self.proc.wait(10)
        for rid in list(self._pending):
            self._pending.pop(rid)({"result": "continue"})
        self._stop_bridge()

    def _stop_bridge(self) -> None:
        """lightningd's RPC socket closed and the world no longer bridged."""
        self.rpc_sock.close()
        task = getattr(self, "_bridge_task", None)
        if task is not None:
            with contextlib.suppress(RuntimeError):
                self._bridge_loop.call_soon_threadsafe(task.cancel)
        time.sleep(0.05)

    def shutdown(self, timeout: float = 15) -> int:
        self._send({"jsonrpc": "2.0", "method": "shutdown", "params": {}})
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9
        finally:
            self._stop_bridge()


class RpcFailure(Exception):
    def __init__(self, code: int, message: str, data: dict | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data or {}
