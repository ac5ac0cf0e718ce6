"""The only code that turns envelopes into ZeroMQ frames and back.

Frame layouts (ZeroMQ multipart messages):

    on a ROUTER socket:  [peer identity, b"", envelope bytes]
    on a DEALER socket:  [b"", envelope bytes]

The empty delimiter frame keeps the layout compatible with REQ/REP peers and the zguide's
Majordomo pattern. Decoding never raises on bad input from the wire: a malformed, oversized or
wrong-version frame is counted in `stats` under ``rejected.<reason>``, logged, and `None` is
returned, so one bad peer can never crash a process.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence

from google.protobuf.message import DecodeError

from gwcore.constants import BUS_PROTOCOL_VERSION, DEFAULT_MAX_FRAME_BYTES
from gwcore.errors import MalformedMessage
from gwproto.bus_pb2 import Envelope

from .stats import BusStats

log = logging.getLogger(__name__)

MAX_ID_LEN = 128
_REPLY_BODIES = frozenset({"reply", "error"})


def new_message_id() -> str:
    return uuid.uuid4().hex


def deadline_in(seconds: float) -> int:
    """Absolute deadline (Unix ms) `seconds` from now."""
    return int((time.time() + seconds) * 1000)


class Codec:
    """Encodes and validates envelopes; counts and logs what it rejects."""

    def __init__(
        self, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES, stats: BusStats | None = None
    ) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.stats = stats if stats is not None else BusStats()

    # --- encoding -----------------------------------------------------------------------------
    def encode(self, env: Envelope) -> bytes:
        """Serialize; raise MalformedMessage if the result is over the frame limit."""
        if not env.protocol_version:
            env.protocol_version = BUS_PROTOCOL_VERSION
        data = env.SerializeToString()
        if len(data) > self.max_frame_bytes:
            self.stats.incr("rejected_outgoing.oversized")
            raise MalformedMessage(
                f"envelope of {len(data)} bytes exceeds the {self.max_frame_bytes}-byte limit"
            )
        return data

    def to_router_frames(self, identity: bytes, env: Envelope) -> list[bytes]:
        """Frames a ROUTER socket sends to the peer `identity`."""
        return [identity, b"", self.encode(env)]

    def to_dealer_frames(self, env: Envelope) -> list[bytes]:
        """Frames a DEALER socket sends to its ROUTER."""
        return [b"", self.encode(env)]

    # --- decoding -----------------------------------------------------------------------------
    def from_router_frames(self, frames: Sequence[bytes]) -> tuple[bytes, Envelope, bytes] | None:
        """(peer identity, envelope, raw envelope bytes) received on a ROUTER, or None."""
        if len(frames) != 3 or frames[1] != b"" or not frames[0]:
            return self._reject("bad_layout", f"{len(frames)} frames")
        env = self.decode(frames[2])
        if env is None:
            return None
        return bytes(frames[0]), env, bytes(frames[2])

    def from_dealer_frames(self, frames: Sequence[bytes]) -> Envelope | None:
        """Envelope received on a DEALER, or None."""
        if len(frames) != 2 or frames[0] != b"":
            return self._reject("bad_layout", f"{len(frames)} frames")
        return self.decode(frames[1])

    def decode(self, data: bytes) -> Envelope | None:
        """Parse and validate one envelope; None (counted, logged) if it is not acceptable."""
        if len(data) > self.max_frame_bytes:
            return self._reject("oversized", f"{len(data)} bytes")
        env = Envelope()
        try:
            env.ParseFromString(data)
        except (DecodeError, ValueError, RuntimeWarning) as exc:
            return self._reject("undecodable", str(exc)[:200])
        if env.protocol_version != BUS_PROTOCOL_VERSION:
            return self._reject("unsupported_version", str(env.protocol_version))
        body = env.WhichOneof("body")
        if body is None:
            return self._reject("no_body", "")
        if not env.message_id or len(env.message_id) > MAX_ID_LEN:
            return self._reject("bad_message_id", "")
        if body in _REPLY_BODIES and not env.correlation_id:
            return self._reject("no_correlation_id", body)
        if body == "request" and not env.request.service:
            return self._reject("no_service", "")
        if body == "ready" and not env.ready.service:
            return self._reject("no_service", "ready")
        self.stats.incr("decoded")
        return env

    def _reject(self, reason: str, detail: str) -> None:
        self.stats.incr(f"rejected.{reason}")
        self.stats.incr("rejected")
        log.warning("bus frame rejected: %s %s", reason, detail)
        return None
