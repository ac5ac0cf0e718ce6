"""Where bus sockets live, and the socket options every bus socket gets.

Local processes talk over `ipc://` sockets inside a private run directory (mode 0700, so only
the gateway's own user can connect). Processes on other hosts use `tcp://` endpoints, which
should be protected with CURVE (see `bus.security`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import zmq

from gwcore.constants import (
    BUS_SUBDIR,
    DEFAULT_HEARTBEAT_INTERVAL_S,
    DEFAULT_HEARTBEAT_LIVENESS,
)
from gwcore.files import private_dir

# sun_path in struct sockaddr_un is 108 bytes including the terminating NUL on Linux.
MAX_IPC_PATH = 107


@dataclass(frozen=True)
class HeartbeatPolicy:
    """Ping a peer after `interval_s` of sending nothing; declare it dead after
    `liveness` intervals of hearing nothing (any traffic counts as life)."""

    interval_s: float = DEFAULT_HEARTBEAT_INTERVAL_S
    liveness: int = DEFAULT_HEARTBEAT_LIVENESS

    @property
    def expiry_s(self) -> float:
        return self.interval_s * self.liveness


@dataclass(frozen=True)
class ReconnectPolicy:
    """Exponential backoff between reconnect attempts of a worker."""

    initial_s: float = 0.1
    max_s: float = 5.0


def ensure_run_dir(path: str | os.PathLike[str]) -> Path:
    """Create (or tighten) the private run directory for bus sockets: mode 0700, ours."""
    return private_dir(Path(path).resolve(), tighten=True)


def ipc_endpoint(run_dir: str | os.PathLike[str], name: str) -> str:
    """`ipc://<run_dir>/bus/<name>.sock`, creating the private directories."""
    ensure_run_dir(run_dir)
    bus_dir = ensure_run_dir(Path(run_dir) / BUS_SUBDIR)
    path = bus_dir / f"{name}.sock"
    if len(str(path).encode()) > MAX_IPC_PATH:
        raise ValueError(
            f"ipc socket path {path} is longer than {MAX_IPC_PATH} bytes; "
            "choose a shorter run directory"
        )
    return f"ipc://{path}"


def endpoint_kind(endpoint: str) -> str:
    kind = endpoint.split("://", 1)[0]
    if kind not in ("ipc", "tcp", "inproc"):
        raise ValueError(f"unsupported bus endpoint {endpoint!r}: use ipc://, tcp:// or inproc://")
    return kind


def configure_socket(sock: zmq.Socket, *, max_frame_bytes: int) -> None:
    """Options common to every bus socket."""
    sock.setsockopt(zmq.LINGER, 0)
    # A hard cap well above the codec's limit: peers sending far more are disconnected by libzmq,
    # frames between the two limits are decoded, rejected and counted by the codec.
    sock.setsockopt(zmq.MAXMSGSIZE, max_frame_bytes * 4 + 1024)
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 5000)
    sock.setsockopt(zmq.SNDHWM, 10_000)
    sock.setsockopt(zmq.RCVHWM, 10_000)
