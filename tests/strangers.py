"""What a stranger on the machine can reach of a running Lightning extension: its listening TCP
ports (from /proc), a bare gRPC client on each, and its unix socket as another user (`nobody`,
when the tests run as root). Used by the e2e, contract and operator-deployment tests."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import grpc

from gwproto import gateway_lnrpc_pb2 as pb
from gwproto import gateway_lnrpc_pb2_grpc as pb_grpc

NOBODY = 65534


def tcp_listeners(pid: int) -> list[int]:
    """The TCP ports process `pid` listens on (IPv4 and IPv6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def bare_client_answered(port: int) -> list[str]:
    """What a plaintext gRPC client gets from 127.0.0.1:`port`: the calls that answered."""
    answered = []
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.GatewayLightningStub(channel)
        try:
            stub.GetNodeInfo(pb.GetNodeInfoRequest(), timeout=3)
            answered.append("GetNodeInfo")
        except grpc.RpcError:
            pass
        try:
            next(iter(stub.RouteHtlcs(pb.RouteHtlcsRequest(), timeout=3)))
            answered.append("RouteHtlcs")
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:  # the stream was ours
                answered.append("RouteHtlcs")
    return answered


def connect_as_nobody(path: Path) -> str:
    """Connect to the unix socket `path` as user `nobody` (needs root): "ok" or the error."""
    code = (
        "import socket\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n"
        f"    s.connect({str(path)!r}); print('ok')\n"
        "except OSError as e:\n"
        "    print(type(e).__name__)\n"
    )
    out = subprocess.run(
        ["/usr/bin/python3", "-c", code], user=NOBODY, capture_output=True, text=True, timeout=30
    )
    return out.stdout.strip() or out.stderr.strip()


def environ(pid: int) -> dict[str, str]:
    """The environment process `pid` was started with."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(e.decode().partition("=")[::2] for e in raw if e)


def assert_strangers_get_nothing(pid: int, run_dir: Path) -> None:
    """The extension `pid` listens on no TCP port a bare client gets an answer from, and on the
    unix socket in `run_dir`'s private folder, which another user cannot connect to."""
    for port in tcp_listeners(pid):
        assert bare_client_answered(port) == [], f"a bare client got answers on port {port}"
    sock = run_dir / "lnrpc" / "extension.sock"
    listen = environ(pid).get("GATEWAY_LNRPC_LISTEN")
    assert listen == f"unix:{sock}", listen
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert oct(sock.parent.stat().st_mode & 0o777) == "0o700"
    assert oct(sock.stat().st_mode & 0o777) == "0o600"
    if os.getuid() == 0:
        assert connect_as_nobody(sock) == "PermissionError"
