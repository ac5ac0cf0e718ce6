"""Where the real peers live: `$FMGW_PEER_CACHE` (default `~/.cache/fmgw-peers`), one folder
per name and pinned version, shared by every clone on the machine."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE_ENV = "FMGW_PEER_CACHE"


class PeerMissing(RuntimeError):
    """A real peer is not installed: `make peers` installs it."""


def cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "fmgw-peers"


def fedimint_version() -> str:
    return (HERE / "fedimint" / "VERSION").read_text().strip()


def knots_version() -> str:
    return (HERE / "bitcoind" / "VERSION").read_text().strip()


def fedimint_target() -> Path:
    """The cargo target folder of the fedimint build (reused by `make vectors`)."""
    return cache_root() / f"fedimint-{fedimint_version()}" / "target"


def fedimint_bin(name: str) -> Path:
    """`fedimintd` or `fedimint-cli` of the pinned release."""
    path = cache_root() / f"fedimint-{fedimint_version()}" / "bin" / name
    if not path.is_file():
        raise PeerMissing(f"{path} is missing: run `make peers` (builds fedimint, ~35 min once)")
    return path


def gatewayd_bin(name: str) -> Path:
    """`gatewayd` or `gateway-cli` of the pinned release (fedimint's own gateway: the benchmark
    runs beside it; `make bench` builds it)."""
    path = cache_root() / f"gatewayd-{fedimint_version()}" / "bin" / name
    if not path.is_file():
        raise PeerMissing(
            f"{path} is missing: run `make bench-peers` (builds gatewayd, ~40 min once)"
        )
    return path


def bitcoind_command() -> list[str]:
    """bitcoind of the pinned Knots release, through its private folder's dynamic loader."""
    root = cache_root() / f"bitcoin-knots-{knots_version()}" / "root"
    libs = root / "usr" / "lib" / "x86_64-linux-gnu"
    binary = root / "usr" / "bin" / "bitcoind"
    if not binary.is_file():
        raise PeerMissing(f"{binary} is missing: run `make peers`")
    return [str(libs / "ld-linux-x86-64.so.2"), "--library-path", str(libs), str(binary)]


# each peer: its name, install script, how long it takes the first time on 2 cores, and what
# raises PeerMissing while it is not installed
_PEERS = (
    ("bitcoin-knots", "bitcoind/install.sh", "about 1 min", lambda: bitcoind_command()),
    (
        "lnd and btcd",
        "lnd/build.sh",
        "about 15 min",
        lambda: (lnd_bin("lnd"), lnd_bin("lncli"), btcd_bin("btcd")),
    ),
    (
        "fedimintd and fedimint-cli",
        "fedimint/build.sh",
        "about 35 min",
        lambda: (fedimint_bin("fedimintd"), fedimint_bin("fedimint-cli")),
    ),
)


# what only the benchmarks need (`make bench`; `make test` never builds it)
_BENCH_PEERS = (
    (
        "gatewayd and gateway-cli",
        "gatewayd/build.sh",
        "about 40 min after fedimintd",
        lambda: (gatewayd_bin("gatewayd"), gatewayd_bin("gateway-cli")),
    ),
)


def _missing(peers: tuple = _PEERS) -> list[tuple[str, str, str]]:
    missing = []
    for name, script, took, check in peers:
        try:
            check()
        except PeerMissing:
            missing.append((name, script, took))
    return missing


def install_all(bench: bool = False) -> None:
    """What `make peers` runs: the missing peers, one progress line each (their build's output
    goes to a log in the cache, shown if it fails); nothing to do when every one is there.
    `bench`: also what only the benchmarks need (`make bench-peers`)."""
    missing = _missing(_PEERS + _BENCH_PEERS if bench else _PEERS)
    if not missing:
        return
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    plan = ", ".join(f"{name} ({took})" for name, _, took in missing)
    print(f"peers: installing once into {root}: {plan}", flush=True)
    for name, script, took in missing:
        log = root / f"install-{Path(script).parent.name}.log"
        print(f"peers: {name}: building ({took}; log {log}) …", flush=True)
        started = time.monotonic()
        with log.open("ab") as out:
            done = subprocess.run(
                ["bash", str(HERE / script)], stdout=out, stderr=subprocess.STDOUT
            )
        if done.returncode != 0:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            raise SystemExit(f"peers: {name} failed; the end of {log}:\n" + "\n".join(tail))
        print(f"peers: {name}: ready in {(time.monotonic() - started) / 60:.1f} min", flush=True)


def lnd_version() -> str:
    return (HERE / "lnd" / "VERSION").read_text().strip()


def btcd_version() -> str:
    return (HERE / "lnd" / "BTCD_VERSION").read_text().strip()


def lnd_bin(name: str) -> Path:
    """`lnd` or `lncli` of the pinned release."""
    path = cache_root() / f"lnd-{lnd_version()}" / "bin" / name
    if not path.is_file():
        raise PeerMissing(f"{path} is missing: run `make peers` (builds lnd, ~15 min once)")
    return path


def btcd_bin(name: str) -> Path:
    """`btcd` or `btcctl` of the pinned release."""
    path = cache_root() / f"btcd-{btcd_version()}" / "bin" / name
    if not path.is_file():
        raise PeerMissing(f"{path} is missing: run `make peers`")
    return path
