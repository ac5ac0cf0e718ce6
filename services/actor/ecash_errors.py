"""fmclient's refusals as the gateway's errors, for every module of a Fedimint federation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from fmclient.api import ApiError, NoConsensus, PeerUnreachable
from fmclient.join import JoinError
from fmclient.mintv2 import EcashError
from fmclient.onchain import OnchainError
from gwcore.errors import GatewayError, InvalidAddress, InvalidInput, ServiceNotReady


@contextlib.contextmanager
def gateway_errors() -> Iterator[None]:
    """fmclient's refusals as the gateway's errors: bad input 400, guardians away 503."""
    try:
        yield
    except OnchainError as exc:
        if str(exc).startswith("bad address"):
            raise InvalidAddress(f"invalid address: {str(exc)[len('bad address: ') :]}") from None
        raise InvalidInput(str(exc)) from None
    except EcashError as exc:
        raise InvalidInput(str(exc)) from None
    except (NoConsensus, PeerUnreachable, TimeoutError, JoinError) as exc:
        raise ServiceNotReady(f"federation unreachable: {exc}") from None
    except ApiError as exc:
        raise GatewayError(f"the federation answered an error: {exc}", retryable=True) from None
