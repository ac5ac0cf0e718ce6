"""A tree whose Lightning extension listens on TCP (as the CLN plugin on another host would):
mutual TLS with the folder `gateway-cli make-extension-certs` makes, given to the tree as
GATEWAY_LNRPC_TLS_DIR. The router and the actors reach it with the gateway's certificate (the
actor of a real fedimintd federation with LNv1 asks it for the node to register with the
federation); a plaintext client, or one without that certificate, gets nothing, not even the
HTLC stream."""

# ruff: noqa: F811 - `tree`, the fixture imported below, is the test's argument

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from gwcore.constants import (
    GATEWAY_SERVICE,
    LNRPC_TLS_CA,
    METHOD_CONNECT_FED,
    METHOD_LIGHTNING,
    METHOD_LIST_FEDS,
    PROGRAM_LNRPC,
)
from gwproto import gateway_lnrpc_pb2 as pb
from gwproto import gateway_lnrpc_pb2_grpc as pb_grpc
from peers.harness.fedimintd import Federation
from peers.harness.procs import free_port
from services.cli.extension_certs import make_extension_certs
from tests.e2e.conftest import bus, supervisor_rpc, tree, wait_until  # noqa: F401 - tree
from tests.strangers import bare_client_answered, tcp_listeners

pytestmark = pytest.mark.timeout(600)


def tree_env(base: Path) -> dict[str, str]:
    """The tree's extension on a free loopback port, with a TLS folder of its own."""
    make_extension_certs(base / "tls")
    port = free_port()
    return {"GATEWAY_LNRPC_LISTEN": f"127.0.0.1:{port}", "GATEWAY_LNRPC_TLS_DIR": str(base / "tls")}


def test_mutual_tls_tree(tree: dict, federation1_v1: Federation) -> None:
    env = tree["env"]
    port = int(env["GATEWAY_LNRPC_LISTEN"].rsplit(":", 1)[1])
    pid = int(supervisor_rpc(tree).supervisor.getProcessInfo(PROGRAM_LNRPC)["pid"])
    assert tcp_listeners(pid) == [port]
    # the gateway: the router's HTLC stream and calls, an actor's LNv1 registration
    wait_until(
        lambda: bus(tree, GATEWAY_SERVICE, METHOD_LIST_FEDS, {})["extension_connected"],
        30,
        "the router's HTLC stream",
    )
    invite = {"invite_code": federation1_v1.invite_code}
    fed = bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_FED, invite, timeout=180)
    assert fed["state"] == "running"  # its actor asked the extension for the node to register
    feds = bus(tree, GATEWAY_SERVICE, METHOD_LIST_FEDS, {})["federations"]
    assert [f["federation_id"] for f in feds] == [federation1_v1.federation_id]
    assert bus(tree, GATEWAY_SERVICE, METHOD_LIGHTNING, {})["node"]["synced"]
    # strangers: plaintext, and TLS trusting the extension but with no certificate of its own
    assert bare_client_answered(port) == []
    ca = (Path(env["GATEWAY_LNRPC_TLS_DIR"]) / LNRPC_TLS_CA).read_bytes()
    with (
        grpc.secure_channel(
            f"127.0.0.1:{port}",
            grpc.ssl_channel_credentials(ca),
            options=[("grpc.ssl_target_name_override", "fmgw-lnrpc-extension")],
        ) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        pb_grpc.GatewayLightningStub(channel).GetNodeInfo(pb.GetNodeInfoRequest(), timeout=3)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
