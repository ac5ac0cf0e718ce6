"""Only the gateway may call the Lightning extension, in the `make run` tree (deploy/launch.py,
supervisord.conf): it listens on no TCP port a bare gRPC client gets anything from, but on its
unix socket in the run dir, whose folder is 0700 (another user cannot connect); the router and
the actors reach it there (the extension is connected, a federation's actor registers).
tests/e2e/test_extension_mtls.py runs a tree whose extension is on TCP with mutual TLS."""

from __future__ import annotations

from gwcore.constants import (
    GATEWAY_SERVICE,
    METHOD_CONNECT_FED,
    METHOD_LIGHTNING,
    METHOD_LIST_FEDS,
    PROGRAM_LNRPC,
)
from tests.strangers import assert_strangers_get_nothing

from .conftest import bus, supervisor_rpc, wait_until


def test_a_stranger_gets_nothing_from_the_extension(tree: dict) -> None:
    env = tree["env"]
    pid = int(supervisor_rpc(tree).supervisor.getProcessInfo(PROGRAM_LNRPC)["pid"])
    assert_strangers_get_nothing(pid, tree["run_dir"])
    assert env["GATEWAY_LNRPC_TLS_DIR"] == ""
    # the gateway itself: the router's stream and calls, an actor's registration
    wait_until(
        lambda: bus(tree, GATEWAY_SERVICE, METHOD_LIST_FEDS, {})["extension_connected"],
        30,
        "the router's HTLC stream",
    )
    alpha = tree["feds"]["alpha"]
    fed = bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_FED, {"invite_code": alpha["invite_code"]})
    assert fed["state"] == "running"  # its actor asked the extension for the node to register
    assert bus(tree, GATEWAY_SERVICE, METHOD_LIGHTNING, {})["node"]["synced"]
