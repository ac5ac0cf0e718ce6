"""TBS building blocks on two compiled BLS12-381 bindings, to choose by measured speed (the
choice: fmclient.tbs uses pyblst; py-arkworks-bls12381 is installed for this comparison). Prints a table and a JSON line: median
microseconds of G1 scalar multiplication, G1 decompression (with its subgroup check), a share
check (two pairings) and fedimint's hash to G1 (ours, over arkworks)."""

from __future__ import annotations

import json
import secrets
import statistics
import time
from collections.abc import Callable

import py_arkworks_bls12381 as ark
import pyblst

from fmclient import tbs


def median_us(fn: Callable[[], object], n: int = 200) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def main() -> None:
    k = secrets.randbelow(tbs.R - 1) + 1
    compressed = tbs.to_bytes(tbs.message_sha256(b"bench"))
    msg = ark.G1Point.from_compressed_bytes(compressed)
    pk = ark.G2Point() * ark.Scalar(k)
    share = msg * ark.Scalar(k)
    b_msg = pyblst.BlstP1Element().uncompress(compressed)
    b_g2 = pyblst.BlstP2Element().uncompress(bytes(ark.G2Point().to_compressed_bytes()))
    b_pk = pyblst.BlstP2Element().uncompress(bytes(pk.to_compressed_bytes()))
    b_share = pyblst.BlstP1Element().uncompress(bytes(share.to_compressed_bytes()))
    rows = {
        "g1_mul_us": (
            median_us(lambda: msg * ark.Scalar(k)),
            median_us(lambda: b_msg.scalar_mul(k)),
        ),
        "g1_decompress_us": (
            median_us(lambda: ark.G1Point.from_compressed_bytes(compressed)),
            median_us(lambda: pyblst.BlstP1Element().uncompress(compressed)),
        ),
        "share_check_us": (
            median_us(
                lambda: ark.GT.multi_pairing([msg, -share], [pk, ark.G2Point()]) == ark.GT.one(),
                50,
            ),
            median_us(
                lambda: pyblst.final_verify(
                    pyblst.miller_loop(b_msg, b_pk), pyblst.miller_loop(b_share, b_g2)
                ),
                50,
            ),
        ),
    }
    hash_us = median_us(lambda: tbs.message_sha256(secrets.token_bytes(33)), 100)
    check_us = median_us(lambda: tbs.verify_share(b_msg, b_share, b_pk), 50)
    print(f"{'operation':<20} {'arkworks':>10} {'blst':>10}")
    for name, (a, b) in rows.items():
        print(f"{name:<20} {a:>10.1f} {b:>10.1f}")
    print(f"{'hash_to_g1_us':<20} {'':>10} {hash_us:>10.1f}  (fmclient.tbs)")
    print(f"{'tbs.verify_share_us':<20} {'':>10} {check_us:>10.1f}  (fmclient.tbs)")
    out = {f"arkworks_{k}": round(a, 1) for k, (a, _) in rows.items()}
    out |= {f"blst_{k}": round(b, 1) for k, (_, b) in rows.items()}
    out["hash_to_g1_us"] = round(hash_us, 1)
    out["tbs_verify_share_us"] = round(check_us, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
