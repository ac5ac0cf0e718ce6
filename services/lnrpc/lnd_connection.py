"""The connection to lnd shared by the LND backend's parts: one long-lived TLS channel with the
macaroon as call credentials, and lnd's gRPC errors as `BackendError` (or as one line of a log)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import grpc

from .backend import BackendError

T = TypeVar("T")


def why(exc: Exception) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name} {exc.details()}"
    return str(exc)


class Macaroon(grpc.AuthMetadataPlugin):
    """The macaroon (hex) on every call, as lnd wants it."""

    def __init__(self, macaroon_hex: str) -> None:
        self.macaroon_hex = macaroon_hex

    def __call__(
        self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback
    ) -> None:
        callback((("macaroon", self.macaroon_hex),), None)


def secure_channel(host: str, tls_cert: bytes, macaroon_hex: str) -> grpc.aio.Channel:
    creds = grpc.composite_channel_credentials(
        grpc.ssl_channel_credentials(root_certificates=tls_cert),
        grpc.metadata_call_credentials(Macaroon(macaroon_hex)),
    )
    return grpc.aio.secure_channel(
        host, creds, options=[("grpc.max_receive_message_length", 50 << 20)]
    )


async def rpc(call: Awaitable[T]) -> T:
    """The answer of a unary call; its error as a `BackendError` (retryable when lnd is
    unavailable)."""
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        raise BackendError(
            f"lnd: {exc.code().name}: {exc.details()}",
            retryable=exc.code() == grpc.StatusCode.UNAVAILABLE,
        ) from None
