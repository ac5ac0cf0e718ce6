"""The LNv2 role's routing info (services/actor/lnv2_role.py) while the Lightning extension
restarts: a 503 the payer's client may ask again after (`not_ready`), not an internal error."""

from __future__ import annotations

import grpc
import pytest
from coincurve import PrivateKey

from gwcore.errors import ERROR_TABLE, ServiceNotReady
from gwproto import gateway_lnrpc_pb2 as lnpb
from services.actor.lnv2_role import Lnv2Role


class Restarting:
    async def GetNodeInfo(self, req: lnpb.GetNodeInfoRequest, timeout: float) -> None:
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "refused"
        )


class Up:
    async def GetNodeInfo(self, req: lnpb.GetNodeInfoRequest, timeout: float) -> object:
        return lnpb.GetNodeInfoResponse(pub_key=b"\x02" * 33, alias="gw")


def _role(lnrpc: object) -> Lnv2Role:
    role = Lnv2Role.__new__(Lnv2Role)  # only what routing_info reads
    role.lnrpc, role.key = lnrpc, PrivateKey(b"\x01" * 32)
    role.fees = {"base_msat": 0, "proportional_millionths": 0}
    return role


async def test_routing_info_while_the_extension_restarts_is_not_ready() -> None:
    with pytest.raises(ServiceNotReady, match="unreachable: UNAVAILABLE") as err:
        await _role(Restarting()).routing_info()
    assert ERROR_TABLE[err.value.code].http_status == 503
    info = await _role(Up()).routing_info()
    assert info["lightning_public_key"] == "02" * 33 and info["receive_enabled"]
