"""The Lightning networks the contract suite runs on, behind one interface: the gateway's node,
alice paying through it and bob paid by it.

* `RegtestNet`: the project's simulated world (regtestd), a fresh trio of nodes per test; the
  sim backend, the CLN harness and the LND stand-in answer from it.
* `LndNet`: real lnd nodes on a real btcd (peers/harness/lnd.py), one trio for the module.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

import httpx

from peers.harness.lnd import ALICE_POLICY, CHANNEL_SAT, LndWorld
from peers.harness.procs import PeerFailed


@dataclass
class Hint:
    """What a route hint through alice's channel into the gateway must carry."""

    alice_pubkey: str
    scid: int
    policy: tuple[int, int, int]  # base msat, ppm, cltv delta
    htlc_maximum_msat: int


@dataclass
class ChannelTruth:
    scid: int
    peer_pubkey: str
    capacity_sat: int
    local_msat: int
    remote_msat: int


class RegtestNet:
    def __init__(self, info: dict, node: str) -> None:
        self.node, self.alice, self.bob = node, f"alice{node}", f"bob{node}"
        self.http = httpx.AsyncClient(
            base_url=info["api_url"],
            headers={"Authorization": f"Bearer {info['api_token']}"},
            timeout=60,
        )

    async def post(self, path: str, body: dict) -> dict:
        r = await self.http.post(path, json=body)
        assert r.status_code < 400, r.text
        return r.json()

    async def get(self, path: str) -> dict:
        return (await self.http.get(path)).json()

    async def setup(self) -> None:
        node, alice, bob = self.node, self.alice, self.bob
        await self.post("/v1/nodes", {"name": node, "hold_unknown_scids": True})
        await self.post("/v1/nodes", {"name": alice})
        await self.post(f"/v1/nodes/{alice}/fund", {"amount_sat": 5_000_000})
        await self.post("/v1/nodes", {"name": bob})
        await self.post(f"/v1/nodes/{node}/fund", {"amount_sat": 5_000_000})
        policy = {k: ALICE_POLICY[k] for k in ("base_msat", "ppm", "cltv_delta")}
        await self.post(
            "/v1/channels",
            {"from": alice, "to": node, "capacity_sat": CHANNEL_SAT, "policy_from": policy},
        )
        await self.post("/v1/channels", {"from": node, "to": bob, "capacity_sat": CHANNEL_SAT})

    async def close(self) -> None:
        await self.http.aclose()

    async def gateway_pubkey(self) -> str:
        return str((await self.get(f"/v1/nodes/{self.node}"))["pubkey"])

    async def height(self) -> int:
        return int((await self.get(f"/v1/nodes/{self.node}"))["block_height"])

    async def hint(self) -> Hint:
        alice = await self.get(f"/v1/nodes/{self.alice}")
        p = ALICE_POLICY
        return Hint(
            alice["pubkey"],
            alice["channels"][0]["scid_int"],
            (p["base_msat"], p["ppm"], p["cltv_delta"]),
            CHANNEL_SAT * 1000,
        )

    async def gateway_funds(self) -> tuple[int, list[ChannelTruth]]:
        me = await self.get(f"/v1/nodes/{self.node}")
        out = []
        for c in me["channels"]:
            ours, peer = ("a", "b") if c["node_a"] == self.node else ("b", "a")
            peer_key = (await self.get(f"/v1/nodes/{c[f'node_{peer}']}"))["pubkey"]
            out.append(
                ChannelTruth(
                    c["scid_int"],
                    peer_key,
                    c["capacity_sat"],
                    c[f"balance_{ours}_msat"],
                    c[f"balance_{peer}_msat"],
                )
            )
        return me["onchain_balance_sat"], out

    async def invoice(self, amount_msat: int) -> dict:
        """bob's invoice: {bolt11, payment_hash, preimage}."""
        return await self.post(f"/v1/nodes/{self.bob}/invoices", {"amount_msat": amount_msat})

    async def cancel_invoice(self, payment_hash: str) -> None:
        await self.post(f"/v1/nodes/{self.bob}/invoices/{payment_hash}/cancel", {})

    async def received_msat(self, payment_hash: str) -> int:
        """What bob received for that invoice (his node is fresh: his balance)."""
        return int((await self.get(f"/v1/nodes/{self.bob}"))["lightning_balance_msat"])

    async def pay(self, bolt11: str, timeout_s: int = 60) -> dict:
        """alice pays: {status: succeeded|failed, preimage, failure}."""
        return await self.post(
            f"/v1/nodes/{self.alice}/pay", {"bolt11": bolt11, "timeout_s": timeout_s}
        )

    async def mine(self, blocks: int) -> None:
        await self.post("/v1/mine", {"blocks": blocks})


class LndNet:
    """The same trio on real lnd nodes: alice and bob are driven with lncli."""

    def __init__(self, world: LndWorld) -> None:
        self.world = world
        self.gw, self.alice, self.bob = (world.node(n) for n in ("gateway", "alice", "bob"))

    async def setup(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def _cli(self, node: Any, *args: str, timeout: float = 90.0) -> Any:
        return await asyncio.to_thread(node.cli, *args, timeout=timeout)

    async def gateway_pubkey(self) -> str:
        return str(self.gw.pubkey)

    async def height(self) -> int:
        return int((await self._cli(self.gw, "getinfo"))["block_height"])

    async def hint(self) -> Hint:
        chans = (await self._cli(self.alice, "listchannels"))["channels"]
        (c,) = [c for c in chans if c["remote_pubkey"] == self.gw.pubkey]
        edge = await self._cli(self.alice, "getchaninfo", "--chan_id", c["scid"])
        pol = (
            edge["node1_policy"] if edge["node1_pub"] == self.alice.pubkey else edge["node2_policy"]
        )
        return Hint(
            self.alice.pubkey,
            int(c["scid"]),
            (
                int(pol["fee_base_msat"]),
                int(pol["fee_rate_milli_msat"]),
                int(pol["time_lock_delta"]),
            ),
            int(pol["max_htlc_msat"]),
        )

    async def gateway_funds(self) -> tuple[int, list[ChannelTruth]]:
        wallet = await self._cli(self.gw, "walletbalance")
        chans = (await self._cli(self.gw, "listchannels"))["channels"]
        return int(wallet["confirmed_balance"]), [
            ChannelTruth(
                int(c["scid"]),
                c["remote_pubkey"],
                int(c["capacity"]),
                int(c["local_balance"]) * 1000,
                int(c["remote_balance"]) * 1000,
            )
            for c in chans
        ]

    async def invoice(self, amount_msat: int) -> dict:
        import os

        preimage = os.urandom(32)
        r = await self._cli(
            self.bob, "addinvoice", f"--amt_msat={amount_msat}", f"--preimage={preimage.hex()}"
        )
        return {
            "bolt11": r["payment_request"],
            "payment_hash": r["r_hash"],
            "preimage": preimage.hex(),
        }

    async def cancel_invoice(self, payment_hash: str) -> None:
        await self._cli(self.bob, "cancelinvoice", payment_hash)

    async def received_msat(self, payment_hash: str) -> int:
        inv = await self._cli(self.bob, "lookupinvoice", payment_hash)
        return int(inv["amt_paid_msat"])

    async def pay(self, bolt11: str, timeout_s: int = 60) -> dict:
        """alice pays with a clean mission control (a failure the gateway gave on purpose must
        not steer the next payment); lncli prints the payment and exits 1 when it failed."""
        await self._cli(self.alice, "resetmc")
        done = await asyncio.to_thread(
            self.alice.lncli,
            "payinvoice",
            "--force",
            "--json",
            f"--timeout={timeout_s}s",
            "--fee_limit=100",
            bolt11,
            timeout=timeout_s + 30,
        )
        if not done.stdout.strip().startswith("{"):
            raise PeerFailed(f"lncli payinvoice: {done.stderr.strip()}")
        return _lnd_payment(json.loads(done.stdout))

    async def mine(self, blocks: int) -> None:
        await asyncio.to_thread(self.world.mine, blocks)


def _lnd_payment(p: dict) -> dict:
    """lncli's payment JSON in the world's words: status, preimage, and the failure the last
    HTLC attempt met (a BOLT-4 name: incorrect_or_unknown_payment_details, ...)."""
    status = {"SUCCEEDED": "succeeded", "FAILED": "failed"}.get(p.get("status", ""), "pending")
    failure = None
    with contextlib.suppress(KeyError, IndexError, TypeError):
        failure = p["htlcs"][-1]["failure"]["code"].lower()
    if status == "failed" and failure is None:
        failure = str(p.get("failure_reason", "")).removeprefix("FAILURE_REASON_").lower()
    preimage = p.get("payment_preimage") or None
    if preimage and set(preimage) == {"0"}:
        preimage = None
    return {"status": status, "preimage": preimage, "failure": failure, "raw": p}
