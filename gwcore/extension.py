"""How the gateway's processes reach the Lightning extension, and where the extension may listen.

One address format for both sides (`GATEWAY_LNRPC_LISTEN`; the CLN plugin's `fm-gateway-listen`):

* `unix:PATH`, the default: `<run dir>/lnrpc/extension.sock`. The socket's folder is private
  (mode 0700, the gateway's user), as the bus's ipc sockets are, so only that user's processes
  can connect; nothing else guards it.
* `HOST:PORT`: TCP, for an extension on another host (the CLN plugin inside a remote
  lightningd). Always mutual TLS, from one TLS folder made by `gateway-cli
  make-extension-certs`: the extension shows `extension.crt`, the gateway `gateway.crt`, and
  each checks the other against `ca.crt` (a CA of their own, used for nothing else). A caller
  without the gateway's certificate is refused in the handshake. The gateway checks the name the
  extension's certificate is issued to (`fmgw-lnrpc-extension`), whatever host it dials.

There is no plaintext TCP, not even on loopback: any process of the machine could call
`PayInvoice` or take the `RouteHtlcs` stream. Owns: parsing and checking addresses
(`ExtensionEndpoint`), the default socket path, both sides' TLS credentials, and the channel
the router and every actor dial the extension with (`ExtensionEndpoint.channel`). The server
binds in `services/lnrpc/server.py`. Nothing here runs at import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from gwcore.constants import (
    LNRPC_SOCKET_NAME,
    LNRPC_SOCKET_SUBDIR,
    LNRPC_TLS_CA,
    LNRPC_TLS_EXTENSION_CERT,
    LNRPC_TLS_EXTENSION_KEY,
    LNRPC_TLS_GATEWAY_CERT,
    LNRPC_TLS_GATEWAY_KEY,
    LNRPC_TLS_SERVER_NAME,
)

# sun_path in struct sockaddr_un is 108 bytes including the terminating NUL on Linux
MAX_UNIX_PATH = 107
TLS_HELP = (
    "a TLS folder made by `gateway-cli make-extension-certs` (GATEWAY_LNRPC_TLS_DIR; "
    "the CLN plugin's fm-gateway-tls-dir)"
)


class ExtensionConfigError(ValueError):
    """The extension's address or TLS folder cannot be used (the message is one line)."""


def default_socket(run_dir: str | os.PathLike[str]) -> str:
    """`unix:<run dir>/lnrpc/extension.sock` (absolute), the address when none is given."""
    path = Path(run_dir).expanduser().absolute() / LNRPC_SOCKET_SUBDIR / LNRPC_SOCKET_NAME
    _check_length(path)
    return f"unix:{path}"


def _check_length(path: Path) -> None:
    if len(str(path).encode()) > MAX_UNIX_PATH:
        raise ExtensionConfigError(
            f"unix socket path {path} is longer than {MAX_UNIX_PATH} bytes; "
            "choose a shorter run directory"
        )


def _read(folder: Path, name: str) -> bytes:
    try:
        return (folder / name).read_bytes()
    except OSError as exc:
        raise ExtensionConfigError(
            f"cannot read {folder / name}: {exc.strerror} ({TLS_HELP})"
        ) from None


@dataclass(frozen=True)
class ExtensionEndpoint:
    """A checked address of the extension: `unix:/absolute/path`, or `HOST:PORT` with the TLS
    folder mutual TLS needs."""

    address: str
    tls_dir: Path | None = None

    @classmethod
    def parse(
        cls,
        address: str,
        tls_dir: str | os.PathLike[str] | None = None,
        *,
        run_dir: str | os.PathLike[str] | None = None,
    ) -> ExtensionEndpoint:
        """`address` as configured ("" = the socket in `run_dir`); raises
        `ExtensionConfigError` for a TCP address without a TLS folder, a TLS folder with a unix
        socket, or an address that is neither."""
        address = address.strip()
        tls = Path(tls_dir).expanduser().absolute() if tls_dir not in (None, "") else None
        if not address:
            if run_dir is None:
                raise ExtensionConfigError("no address for the Lightning extension")
            address = default_socket(run_dir)
        if address.startswith("unix:"):
            raw = address.removeprefix("unix:")
            raw = raw[2:] if raw.startswith("//") else raw  # gRPC's unix:///absolute/path
            if not raw:
                raise ExtensionConfigError("extension address 'unix:' names no socket path")
            path = Path(raw).expanduser().absolute()
            _check_length(path)
            if tls is not None:
                raise ExtensionConfigError(
                    f"a TLS folder ({tls}) is for a TCP address, not the unix socket {path}: "
                    "the socket is guarded by its private folder"
                )
            return cls(f"unix:{path}")
        host, sep, port = address.rpartition(":")
        if not sep or not host or "/" in address or not port.isdigit() or int(port) > 65535:
            raise ExtensionConfigError(
                f"extension address {address!r}: expected unix:PATH or HOST:PORT"
            )
        if tls is None:
            raise ExtensionConfigError(
                f"the extension at {address} is reached over TCP, which needs mutual TLS: "
                f"give {TLS_HELP}"
            )
        return cls(address, tls)

    @property
    def is_unix(self) -> bool:
        return self.address.startswith("unix:")

    @property
    def socket_path(self) -> Path:
        if not self.is_unix:
            raise ValueError(f"{self.address} is not a unix socket")
        return Path(self.address.removeprefix("unix:"))

    # --- the gateway's side (router, actors) ----------------------------------------------------
    def client_credentials(self) -> grpc.ChannelCredentials:
        """The gateway's certificate and key, and the CA the extension's must be signed by."""
        assert self.tls_dir is not None
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.tls_dir, LNRPC_TLS_CA),
            private_key=_read(self.tls_dir, LNRPC_TLS_GATEWAY_KEY),
            certificate_chain=_read(self.tls_dir, LNRPC_TLS_GATEWAY_CERT),
        )

    def check_client(self) -> None:
        """Fail now (at startup), not at the first call, if the gateway's files are missing."""
        if self.tls_dir is not None:
            self.client_credentials()

    def channel(self) -> grpc.aio.Channel:
        """A channel to the extension: the unix socket, or TCP with the gateway's certificate."""
        if self.tls_dir is None:
            return grpc.aio.insecure_channel(self.address)
        return grpc.aio.secure_channel(
            self.address,
            self.client_credentials(),
            options=[("grpc.ssl_target_name_override", LNRPC_TLS_SERVER_NAME)],
        )

    def sync_channel(self) -> grpc.Channel:
        """The same, for blocking code (checks and tests)."""
        if self.tls_dir is None:
            return grpc.insecure_channel(self.address)
        return grpc.secure_channel(
            self.address,
            self.client_credentials(),
            options=[("grpc.ssl_target_name_override", LNRPC_TLS_SERVER_NAME)],
        )

    # --- the extension's side -------------------------------------------------------------------
    def server_credentials(self) -> grpc.ServerCredentials:
        """The extension's certificate and key; clients must show one signed by the CA."""
        assert self.tls_dir is not None
        return grpc.ssl_server_credentials(
            [
                (
                    _read(self.tls_dir, LNRPC_TLS_EXTENSION_KEY),
                    _read(self.tls_dir, LNRPC_TLS_EXTENSION_CERT),
                )
            ],
            root_certificates=_read(self.tls_dir, LNRPC_TLS_CA),
            require_client_auth=True,
        )
