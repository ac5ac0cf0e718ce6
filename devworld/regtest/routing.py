"""Path finding over the simulated network: the cheapest route by fees that respects every
hop's policy, liquidity (the payer's own channels by balance, others by capacity), the CLTV
limits and the caller's fee and delay budgets."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

from .lightning import Network, Node, Policy

MAX_CLTV_EXPIRY_DELTA = 2016


@dataclass
class Hop:
    src: str  # pubkey of the node forwarding over `scid`
    scid: int
    dst: str  # pubkey of the node receiving it
    amount_msat: int  # what `dst` receives
    expiry: int  # absolute CLTV expiry of the HTLC to `dst`


def find_route(
    net: Network,
    height: int,
    payer: Node,
    dest: str,
    amount: int,
    final_expiry: int,
    hints: list[list[tuple[str, int, Policy]]],
    excluded: set[tuple[str, int]],
    max_fee: int | None,
    max_delay: int | None,
) -> list[Hop] | None:
    """Cheapest route by fees (Dijkstra from the destination back to the payer).

    Remote channels are judged by capacity and policy, as real nodes must; the payer's own
    channels by their real balance."""
    edges: dict[
        str, list[tuple[str, int, Policy, int]]
    ] = {}  # to -> [(from, scid, policy, max_msat)]
    for hint in hints:  # first: on a tie, the payee's fresher view wins
        for i, (pk, scid, pol) in enumerate(hint):
            nxt = hint[i + 1][0] if i + 1 < len(hint) else dest
            edges.setdefault(nxt, []).append((pk, scid, pol, 2**62))
    for ch in net.channels.values():
        if ch.state != "active":
            continue
        for src in (ch.node_a, ch.node_b):
            pol = ch.policy_of(src)
            if not pol.enabled:
                continue
            s, d = net.nodes[src].pubkey, net.nodes[ch.peer_of(src)].pubkey
            cap = (
                ch.balance_of(src)
                if src == payer.name
                else min(ch.max_htlc(src), ch.capacity_sat * 1000)
            )
            edges.setdefault(d, []).append((s, ch.scid, pol, cap))
    # state: (amount arriving at node, expiry arriving at node, hops count, node, path)
    best: dict[str, int] = {dest: amount}
    tie = itertools.count()
    heap: list[tuple[int, int, int, int, str, list[Hop]]] = [
        (amount, final_expiry, 0, next(tie), dest, [])
    ]
    while heap:
        amt, exp, n, _, node, path = heapq.heappop(heap)
        if node == payer.pubkey:
            fee = path[0].amount_msat - amount if path else 0
            if (max_fee is None or fee <= max_fee) and (
                max_delay is None or path[0].expiry - height <= max_delay
            ):
                return path
            continue
        if amt > best.get(node, 2**63) or n >= 20:
            continue
        for src, scid, pol, cap in edges.get(node, []):
            if (src, scid) in excluded or amt < pol.htlc_min_msat or amt > cap:
                continue
            hop = Hop(src, scid, node, amt, exp)
            if src == payer.pubkey:
                nxt_amt, nxt_exp = amt, exp
            else:
                nxt_amt, nxt_exp = amt + pol.fee(amt), exp + pol.cltv_delta
            if nxt_exp - height > MAX_CLTV_EXPIRY_DELTA:
                continue
            if nxt_amt < best.get(src, 2**63) or src == payer.pubkey:
                best[src] = min(nxt_amt, best.get(src, 2**63))
                heapq.heappush(heap, (nxt_amt, nxt_exp, n + 1, next(tie), src, [hop, *path]))
    return None
