"""CURVE encryption and authentication for bus sockets on TCP (actors on other hosts).

The broker holds a server key pair; every client and worker holds its own key pair and the
broker's public key. With `allowed_clients` set, the broker runs a ZAP authenticator that accepts
only those client public keys. Keys are Z85 strings (40 characters), as `zmq.curve_keypair()`
makes them; secret keys are `SecretStr` in settings and never logged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import zmq
import zmq.asyncio
from zmq.auth.asyncio import AsyncioAuthenticator


@dataclass(frozen=True, repr=False)
class CurveKeyPair:
    public: str
    secret: str

    def __repr__(self) -> str:  # never show the secret
        return f"CurveKeyPair(public={self.public!r}, secret='**********')"

    @classmethod
    def generate(cls) -> CurveKeyPair:
        public, secret = zmq.curve_keypair()
        return cls(public.decode(), secret.decode())


@dataclass(frozen=True)
class CurveServerConfig:
    keys: CurveKeyPair
    # Z85 public keys of clients allowed to connect; empty = any client that knows our key.
    allowed_clients: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class CurveClientConfig:
    keys: CurveKeyPair
    server_public: str


def apply_server(sock: zmq.Socket, cfg: CurveServerConfig) -> None:
    sock.curve_secretkey = cfg.keys.secret.encode()
    sock.curve_publickey = cfg.keys.public.encode()
    sock.curve_server = True


def apply_client(sock: zmq.Socket, cfg: CurveClientConfig) -> None:
    sock.curve_secretkey = cfg.keys.secret.encode()
    sock.curve_publickey = cfg.keys.public.encode()
    sock.curve_serverkey = cfg.server_public.encode()


class _AllowList:
    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = {k.encode() for k in keys}

    def callback(self, domain: str, key: bytes) -> bool:
        from zmq.utils import z85

        return z85.encode(key) in self._keys or key in self._keys


def start_authenticator(ctx: zmq.asyncio.Context, cfg: CurveServerConfig) -> AsyncioAuthenticator:
    """Start a ZAP handler on `ctx` accepting only `cfg.allowed_clients` (before binding)."""
    auth = AsyncioAuthenticator(ctx)
    auth.start()
    auth.configure_curve_callback(domain="*", credentials_provider=_AllowList(cfg.allowed_clients))
    return auth
