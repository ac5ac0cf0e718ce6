"""Where the real peers live: `$FMGW_PEER_CACHE` (default `~/.cache/fmgw-peers`), one folder
per name and pinned version, shared by every clone on the machine."""

from __future__ import annotations

import os
import subprocess
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


def bitcoind_command() -> list[str]:
    """bitcoind of the pinned Knots release, through its private folder's dynamic loader."""
    root = cache_root() / f"bitcoin-knots-{knots_version()}" / "root"
    libs = root / "usr" / "lib" / "x86_64-linux-gnu"
    binary = root / "usr" / "bin" / "bitcoind"
    if not binary.is_file():
        raise PeerMissing(f"{binary} is missing: run `make peers`")
    return [str(libs / "ld-linux-x86-64.so.2"), "--library-path", str(libs), str(binary)]


def install_all() -> None:
    """What `make peers` runs: each script does nothing when its peer is there."""
    for script in (
        HERE / "bitcoind" / "install.sh",
        HERE / "lnd" / "build.sh",
        HERE / "fedimint" / "build.sh",
    ):
        subprocess.run(["bash", str(script)], check=True, stdout=subprocess.DEVNULL)


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
