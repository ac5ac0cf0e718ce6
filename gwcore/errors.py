"""The one exception hierarchy of the gateway, with stable codes.

Every error that crosses a process boundary is a `GatewayError` subclass with a stable `code`.
`ERROR_TABLE` maps each code to its HTTP status, gRPC status name and whether a retry of the same
request (same message id) may succeed. The bus sends `code` and `message` in an `Error` envelope;
the receiving side rebuilds the same class with `error_from_code`. Public HTTP endpoints show
`public_message` (redacted); admin endpoints show `message` in full.

Never raise a bare Exception across a boundary: unknown exceptions become `InternalError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class ErrorSpec:
    """How one error code is shown on each interface."""

    http_status: int
    grpc_status: str  # name of a grpc.StatusCode member
    retryable: bool
    public_message: str


class GatewayError(Exception):
    """Base of every error with a stable code."""

    code: ClassVar[str] = "internal"

    def __init__(self, message: str = "", *, retryable: bool | None = None) -> None:
        super().__init__(message or self.spec().public_message)
        self.message = message or self.spec().public_message
        self._retryable = retryable

    @classmethod
    def spec(cls) -> ErrorSpec:
        return ERROR_TABLE[cls.code]

    @property
    def retryable(self) -> bool:
        return self.spec().retryable if self._retryable is None else self._retryable

    @property
    def http_status(self) -> int:
        return self.spec().http_status

    @property
    def grpc_status(self) -> str:
        return self.spec().grpc_status

    @property
    def public_message(self) -> str:
        return self.spec().public_message


class InternalError(GatewayError):
    """A bug or an unexpected failure; details only on admin interfaces and logs."""

    code = "internal"


class InvalidInput(GatewayError):
    """The request is malformed or violates a rule; nothing was changed."""

    code = "invalid_input"


class InvalidAddress(InvalidInput):
    """A Bitcoin address that cannot be paid (mistyped, another network, a non-standard type);
    the message says what is wrong. Nothing was reserved or spent."""

    code = "invalid_address"


class InvalidSeed(InvalidInput):
    """The gateway's seed (its 12 words) is missing, malformed, or differs from the one it
    already has; the message says which and never shows a word. Nothing was written."""

    code = "invalid_seed"


class PegOutFailed(GatewayError):
    """The chain definitely refused a peg-out; its e-cash came back to the wallet (once)."""

    code = "pegout_failed"


class NotFound(GatewayError):
    code = "not_found"


class Unauthorized(GatewayError):
    code = "unauthorized"


# --- Bus errors -------------------------------------------------------------------------------


class BusError(GatewayError):
    """Base of failures of the message bus itself (not of the work requested)."""

    code = "bus_error"


class BusTimeout(BusError):
    """No reply before the caller's deadline; the request may or may not have run."""

    code = "bus_timeout"


class ServiceUnavailable(BusError):
    """No live worker serves the requested service before the deadline."""

    code = "service_unavailable"


class WorkerLost(BusError):
    """The worker handling the request died or restarted; retrying is safe (de-duplicated)."""

    code = "worker_lost"


class DeadlineExceeded(BusError):
    """The request arrived after its deadline and was not started."""

    code = "deadline_exceeded"


class MalformedMessage(BusError):
    """A frame could not be decoded, was too large, or had an unsupported protocol version."""

    code = "malformed_message"


class UnknownMethod(BusError):
    code = "unknown_method"


class PaymentFailed(GatewayError):
    """A Lightning payment definitely failed; the contract was cancelled so the user can refund."""

    code = "payment_failed"


class TooLarge(GatewayError):
    code = "too_large"


class RateLimited(GatewayError):
    """Too many requests: `retry_after_s` (whole seconds, at least 1) is when to try again; the
    HTTP front sends it as `Retry-After`."""

    code = "rate_limited"

    def __init__(
        self, message: str = "", *, retryable: bool | None = None, retry_after_s: float = 1
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.retry_after_s = max(1, math.ceil(retry_after_s))


class ServiceNotReady(GatewayError):
    """The gateway (or the part asked) is not running yet."""

    code = "not_ready"


class DepositPending(GatewayError):
    """The deposit is not (yet) confirmed enough to be claimed; asking again later is safe."""

    code = "deposit_pending"


class PaymentsInFlight(GatewayError):
    """Refused while payments of the federation are in flight (leave); ask again when they are
    done, or force it."""

    code = "payments_in_flight"


ERROR_TABLE: dict[str, ErrorSpec] = {
    "internal": ErrorSpec(500, "INTERNAL", False, "internal error"),
    "invalid_input": ErrorSpec(400, "INVALID_ARGUMENT", False, "invalid input"),
    "invalid_address": ErrorSpec(400, "INVALID_ARGUMENT", False, "invalid address"),
    "invalid_seed": ErrorSpec(400, "INVALID_ARGUMENT", False, "invalid seed"),
    "pegout_failed": ErrorSpec(502, "ABORTED", False, "peg-out failed"),
    "not_found": ErrorSpec(404, "NOT_FOUND", False, "not found"),
    "unauthorized": ErrorSpec(401, "UNAUTHENTICATED", False, "unauthorized"),
    "bus_error": ErrorSpec(502, "UNAVAILABLE", True, "internal communication error"),
    "bus_timeout": ErrorSpec(504, "DEADLINE_EXCEEDED", True, "timed out"),
    "service_unavailable": ErrorSpec(503, "UNAVAILABLE", True, "service unavailable"),
    "worker_lost": ErrorSpec(503, "UNAVAILABLE", True, "service restarted, retry"),
    "deadline_exceeded": ErrorSpec(504, "DEADLINE_EXCEEDED", False, "timed out"),
    "malformed_message": ErrorSpec(502, "INTERNAL", False, "internal communication error"),
    "unknown_method": ErrorSpec(501, "UNIMPLEMENTED", False, "not implemented"),
    "payment_failed": ErrorSpec(502, "ABORTED", False, "payment failed"),
    "not_ready": ErrorSpec(503, "UNAVAILABLE", True, "not ready"),
    "deposit_pending": ErrorSpec(409, "FAILED_PRECONDITION", True, "deposit not confirmed yet"),
    "payments_in_flight": ErrorSpec(409, "FAILED_PRECONDITION", False, "payments in flight"),
    "too_large": ErrorSpec(413, "RESOURCE_EXHAUSTED", False, "request too large"),
    "rate_limited": ErrorSpec(429, "RESOURCE_EXHAUSTED", True, "too many requests"),
}


def _all_subclasses(cls: type[GatewayError]) -> list[type[GatewayError]]:
    out: list[type[GatewayError]] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


def error_class(code: str) -> type[GatewayError]:
    """The class registered for `code` (InternalError for an unknown code)."""
    for cls in _all_subclasses(GatewayError):
        if cls.__dict__.get("code") == code:
            return cls
    return InternalError


def error_from_code(code: str, message: str, *, retryable: bool | None = None) -> GatewayError:
    """Rebuild an error received from another process."""
    cls = error_class(code)
    err = cls(message, retryable=retryable)
    if cls is InternalError and code != InternalError.code:
        err.message = f"[{code}] {message}"
    return err
