"""What the gateway's seed costs in CPU: each walletv2 address is the first of the seed's
indexes whose script passes the federation's filter (about 65,536 indexes a search), and each
mintv2 note tweak is ground the same way (fmclient/walletv2.py, fmclient/derive.py).

Prints a table and a JSON line: the median microseconds per index of the address search, on
our path (libsecp256k1 through coincurve's bindings, `_multisig`) and on the plain path it
replaced (coincurve's key objects and `witness_script`), for 1 and 4 guardians; what that makes
a whole address search (65,536 indexes, the filter's mean); and the median milliseconds of a
mintv2 tweak."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable

from coincurve import PrivateKey

from fmclient.derive import DerivableSecret, mintv2_grind_tweak, wallet_v2_tweak_secret
from fmclient.walletv2 import (
    WalletConfig,
    _multisig,
    is_potential_receive,
    script_pubkey,
    witness_script,
)

INDEXES = 65_536  # the filter passes one script in 2^16


def per_index_us(step: Callable[[int], object], n: int = 2_000, rounds: int = 5) -> float:
    medians = []
    for r in range(rounds):
        t = time.perf_counter()
        for i in range(r * n, (r + 1) * n):
            step(i)
        medians.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(medians)


def address_search(module: DerivableSecret, guardians: int) -> tuple[float, float]:
    """(ours, plain): median µs per index of a search with `guardians` guardians' keys."""
    pks = {i: PrivateKey().public_key.format() for i in range(guardians)}
    config = WalletConfig(pks, 1, 1, 1, 546, 0, 0, "regtest")
    pks_hash = config.pks_hash
    secp, script_of = _multisig(config)

    def ours(i: int) -> bool:
        secret = wallet_v2_tweak_secret(module, i)
        return is_potential_receive(script_pubkey(script_of(secp.public_key(secret))), pks_hash)

    def plain(i: int) -> bool:
        pub = PrivateKey(wallet_v2_tweak_secret(module, i)).public_key.format()
        return is_potential_receive(script_pubkey(witness_script(config, pub)), pks_hash)

    return per_index_us(ours), per_index_us(plain)


def main() -> None:
    module = DerivableSecret(os.urandom(64), 2)
    rows = {guardians: address_search(module, guardians) for guardians in (1, 4)}
    tweaks = []
    for _ in range(30):
        t = time.perf_counter()
        mintv2_grind_tweak(os.urandom(32), os.urandom)
        tweaks.append((time.perf_counter() - t) * 1e3)
    print(
        f"{'walletv2 address search':<28}{'ours µs/index':>14}{'plain µs/index':>16}{'ours s/address':>16}"
    )
    for guardians, (ours_us, plain_us) in rows.items():
        print(
            f"{f'{guardians} guardian(s)':<28}{ours_us:>14.1f}{plain_us:>16.1f}"
            f"{ours_us * INDEXES / 1e6:>16.2f}"
        )
    print(f"mintv2 tweak: median {statistics.median(tweaks):.1f} ms (30 tweaks)")
    print(
        json.dumps(
            {
                "bench": "seed_keys",
                "walletv2_us_per_index": {str(g): round(o, 1) for g, (o, _) in rows.items()},
                "walletv2_plain_us_per_index": {str(g): round(p, 1) for g, (_, p) in rows.items()},
                "walletv2_speedup": {str(g): round(p / o, 2) for g, (o, p) in rows.items()},
                "mintv2_tweak_ms": round(statistics.median(tweaks), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
