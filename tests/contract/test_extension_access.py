"""Only the gateway may call the Lightning extension (gwcore/extension.py, services/lnrpc/server.py).

* Over TCP the extension speaks mutual TLS only: the gateway's certificate (from the folder
  `gateway-cli make-extension-certs` makes) gets answers; a plaintext client, a TLS client
  without a certificate, and one whose certificate another CA signed get nothing, not even
  the `RouteHtlcs` stream. A TCP listen without a TLS folder is refused at startup, loopback
  included; so is a gateway dialing TCP without one.
* On a unix socket, the socket's folder is private (0700) and the socket 0600: another user of
  the machine cannot connect (tested as `nobody` when the tests run as root).
* The CLN plugin serves the same: TCP with `fm-gateway-tls-dir` (mutual TLS), or a unix socket;
  TCP without it disables the plugin with the reason.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from click.testing import CliRunner

from gwcore.constants import LNRPC_TLS_CA, LNRPC_TLS_GATEWAY_CERT, LNRPC_TLS_GATEWAY_KEY
from gwcore.extension import ExtensionConfigError, ExtensionEndpoint
from gwproto import gateway_lnrpc_pb2 as pb
from gwproto import gateway_lnrpc_pb2_grpc as pb_grpc
from services.cli.__main__ import cli as gateway_cli
from services.cli.extension_certs import make_extension_certs
from services.lnrpc.server import ExtensionServer
from services.lnrpc.sim import SimBackend
from tests.contract.cln_harness import FakeLightningd
from tests.strangers import connect_as_nobody


@pytest.fixture
def base() -> Iterator[Path]:
    """A short folder under the temporary root (unix socket paths are bounded), removed after."""
    path = Path(tempfile.mkdtemp(prefix="fmgw-a-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sim(regtestd) -> SimBackend:  # type: ignore[no-untyped-def]
    return SimBackend.from_data_dir(regtestd.data_dir, f"gw{os.urandom(3).hex()}")


async def _refused(channel: grpc.aio.Channel) -> None:
    """Neither a unary call nor the HTLC stream gets anything through `channel`."""
    stub = pb_grpc.GatewayLightningStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as unary:
        await stub.GetNodeInfo(pb.GetNodeInfoRequest(), timeout=3)
    assert unary.value.code() == grpc.StatusCode.UNAVAILABLE
    stream = stub.RouteHtlcs(pb.RouteHtlcsRequest(), timeout=3)
    with pytest.raises(grpc.aio.AioRpcError) as streamed:
        await stream.read()
    assert streamed.value.code() in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )
    await channel.close()


async def test_tcp_without_mutual_tls_is_refused(regtestd, base: Path) -> None:  # type: ignore[no-untyped-def]
    """No plaintext TCP listener, not even on loopback; the gateway will not dial one either."""
    for listen in ("127.0.0.1:0", "0.0.0.0:0", "localhost:8177"):
        with pytest.raises(ExtensionConfigError, match="needs mutual TLS"):
            ExtensionServer(_sim(regtestd), listen)
        with pytest.raises(ExtensionConfigError, match="needs mutual TLS"):
            ExtensionEndpoint.parse(listen)
    with pytest.raises(ExtensionConfigError, match="is for a TCP address"):
        ExtensionEndpoint.parse(f"unix:{base}/x.sock", base)
    for bad in ("tcp://127.0.0.1:1", "127.0.0.1", "127.0.0.1:x", "unix:", ":80"):
        with pytest.raises(ExtensionConfigError):
            ExtensionEndpoint.parse(bad, base)
    with pytest.raises(ExtensionConfigError, match="longer than 107 bytes"):
        ExtensionEndpoint.parse("", run_dir=base / ("r" * 100))
    assert ExtensionEndpoint.parse("", run_dir=base).address == (
        f"unix:{base}/lnrpc/extension.sock"
    )
    assert ExtensionEndpoint.parse(f"unix://{base}/s.sock").address == f"unix:{base}/s.sock"
    # a TLS folder without the files: said at startup, not at the first call
    with pytest.raises(ExtensionConfigError, match=r"cannot read .*ca\.crt"):
        ExtensionEndpoint.parse("127.0.0.1:1", base).check_client()
    with pytest.raises(ExtensionConfigError, match="cannot read"):
        ExtensionServer(_sim(regtestd), "127.0.0.1:0", tls_dir=base)


async def test_mutual_tls_only_the_gateway_gets_answers(regtestd, base: Path) -> None:  # type: ignore[no-untyped-def]
    tls, other = base / "tls", base / "other"
    make_extension_certs(tls)
    make_extension_certs(other)  # another CA: its gateway certificate is a stranger's
    server = ExtensionServer(_sim(regtestd), "127.0.0.1:0", tls_dir=tls, health_interval_s=0.1)
    await server.start()
    try:
        port = server.listen.rsplit(":", 1)[1]
        # the gateway (router, actors): its channel, its certificate
        async with ExtensionEndpoint.parse(f"127.0.0.1:{port}", tls).channel() as channel:
            info = await pb_grpc.GatewayLightningStub(channel).GetNodeInfo(
                pb.GetNodeInfoRequest(), timeout=10
            )
            assert len(info.pub_key) == 33
        # a bare client on the machine: plaintext
        await _refused(grpc.aio.insecure_channel(f"127.0.0.1:{port}"))
        name = [("grpc.ssl_target_name_override", "fmgw-lnrpc-extension")]
        ca = (tls / LNRPC_TLS_CA).read_bytes()
        # TLS, trusting the extension, but with no certificate of its own
        await _refused(
            grpc.aio.secure_channel(
                f"127.0.0.1:{port}", grpc.ssl_channel_credentials(ca), options=name
            )
        )
        # TLS with a certificate another CA signed
        stranger = grpc.ssl_channel_credentials(
            ca,
            (other / LNRPC_TLS_GATEWAY_KEY).read_bytes(),
            (other / LNRPC_TLS_GATEWAY_CERT).read_bytes(),
        )
        await _refused(grpc.aio.secure_channel(f"127.0.0.1:{port}", stranger, options=name))
        # and the gateway refuses an extension whose certificate another CA signed
        async with ExtensionEndpoint.parse(f"127.0.0.1:{port}", other).channel() as channel:
            with pytest.raises(grpc.aio.AioRpcError):
                await pb_grpc.GatewayLightningStub(channel).GetNodeInfo(
                    pb.GetNodeInfoRequest(), timeout=3
                )
    finally:
        await server.stop(0.1)


def _mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


def _others_kept_out(sock: Path) -> None:
    """As root: `nobody` cannot connect; and can once folder and socket are opened (so the
    check sees a way in when there is one). Without root only the modes are checked."""
    assert _mode(sock.parent) == "0o700" and _mode(sock) == "0o600"
    if os.getuid() != 0:
        return
    assert connect_as_nobody(sock) == "PermissionError"
    sock.parent.chmod(0o755)
    sock.chmod(0o666)
    try:
        assert connect_as_nobody(sock) == "ok"
    finally:
        sock.parent.chmod(0o700)
        sock.chmod(0o600)


def _leave_stale_socket(sock: Path) -> None:
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock))
    stale.close()


@pytest.fixture
def open_base(base: Path) -> Path:
    """`base` open to others (0755), so that the extension's own folder is what keeps them out."""
    base.chmod(0o755)
    return base


async def test_the_unix_socket_is_the_gateway_users_alone(regtestd, open_base: Path) -> None:  # type: ignore[no-untyped-def]
    sock = open_base / "lnrpc" / "extension.sock"
    server = ExtensionServer(_sim(regtestd), f"unix:{sock}", health_interval_s=0.1)
    await server.start()
    try:
        async with ExtensionEndpoint.parse(server.listen).channel() as channel:
            info = await pb_grpc.GatewayLightningStub(channel).GetNodeInfo(
                pb.GetNodeInfoRequest(), timeout=10
            )
            assert len(info.pub_key) == 33
        await asyncio.to_thread(_others_kept_out, sock)
        # a second extension on the same socket is refused, not silently taking it over
        with pytest.raises(ExtensionConfigError, match="already listens"):
            ExtensionServer(_sim(regtestd), f"unix:{sock}")
    finally:
        await server.stop(0.1)
    # a socket left by a process that died is replaced
    await asyncio.to_thread(_leave_stale_socket, sock)
    server = ExtensionServer(_sim(regtestd), f"unix:{sock}")
    await server.start()
    await server.stop(0.1)
    # a folder open to others is refused, and left as it is
    await asyncio.to_thread(sock.parent.chmod, 0o755)
    with pytest.raises(ExtensionConfigError, match="open to other users"):
        ExtensionServer(_sim(regtestd), f"unix:{sock}")
    assert await asyncio.to_thread(_mode, sock.parent) == "0o755"


async def test_the_cln_plugin_serves_mutual_tls_or_nothing(regtestd) -> None:  # type: ignore[no-untyped-def]
    node = f"gw{os.urandom(3).hex()}"
    info = regtestd.info
    async with httpx.AsyncClient(
        base_url=info["api_url"], headers={"Authorization": f"Bearer {info['api_token']}"}
    ) as http:
        r = await http.post("/v1/nodes", json={"name": node})
    assert r.status_code == 201, r.text
    workdir = Path(tempfile.gettempdir(), f"fmgw-cln-{node}")
    tls = workdir / "tls"
    make_extension_certs(tls)
    listen = f"127.0.0.1:{_free_port()}"
    harness = FakeLightningd(info, node, workdir, listen, tls_dir=tls)
    await asyncio.to_thread(harness.start)
    try:
        assert harness.init_result in (None, {})
        async with ExtensionEndpoint.parse(listen, tls).channel() as channel:
            got = await pb_grpc.GatewayLightningStub(channel).GetNodeInfo(
                pb.GetNodeInfoRequest(), timeout=10
            )
            assert len(got.pub_key) == 33
        await _refused(grpc.aio.insecure_channel(listen))
    finally:
        assert await asyncio.to_thread(harness.shutdown) == 0
        assert harness.stdout_garbage == []
    # TCP without a TLS folder: the plugin disables itself and says why; nothing listens
    listen = f"127.0.0.1:{_free_port()}"
    harness = FakeLightningd(info, node, workdir, listen)
    await asyncio.to_thread(harness.start)
    try:
        assert "needs mutual TLS" in harness.init_result["disable"]
        with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
            probe.connect(("127.0.0.1", int(listen.rsplit(":", 1)[1])))
    finally:
        harness.shutdown()
        assert harness.stdout_garbage == []
        shutil.rmtree(workdir, ignore_errors=True)


def test_make_extension_certs(base: Path) -> None:
    """`gateway-cli make-extension-certs FOLDER`: five files, 0600, folder 0700; never again."""
    folder = base / "tls"
    r = CliRunner().invoke(gateway_cli, ["make-extension-certs", str(folder)])
    assert r.exit_code == 0, r.output
    names = {"ca.crt", "extension.crt", "extension.key", "gateway.crt", "gateway.key"}
    assert {p.name for p in folder.iterdir()} == names
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in folder.iterdir())
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    before = (folder / "gateway.key").read_bytes()
    again = CliRunner().invoke(gateway_cli, ["make-extension-certs", str(folder)])
    assert again.exit_code == 2 and "already has" in again.output
    assert (folder / "gateway.key").read_bytes() == before
