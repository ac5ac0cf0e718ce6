"""The codec: round trips, validation, and fuzzing of the decoder with random bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bus.codec import Codec
from gwcore.constants import BUS_PROTOCOL_VERSION
from gwcore.errors import MalformedMessage
from gwproto.bus_pb2 import Envelope
from tests.fuzzing import examples

ids = st.text(min_size=1, max_size=64)
text = st.text(max_size=80)


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    env = Envelope(
        protocol_version=BUS_PROTOCOL_VERSION,
        message_id=draw(ids),
        sender=draw(text),
        federation_id=draw(text),
        request_id=draw(text),
        payment_hash=draw(text),
        deadline_unix_ms=draw(st.integers(0, 2**63)),
    )
    kind = draw(st.sampled_from(["ready", "disconnect", "heartbeat", "request", "reply", "error"]))
    if kind == "ready":
        env.ready.service = draw(ids)
        env.ready.incarnation = draw(text)
    elif kind == "disconnect":
        env.disconnect.reason = draw(text)
    elif kind == "heartbeat":
        env.heartbeat.SetInParent()
    elif kind == "request":
        env.request.service = draw(ids)
        env.request.method = draw(text)
        env.request.payload = draw(st.binary(max_size=512))
        env.request.idempotent = draw(st.booleans())
        env.request.attempt = draw(st.integers(0, 2**32 - 1))
    else:
        env.correlation_id = draw(ids)
        if kind == "reply":
            env.reply.payload = draw(st.binary(max_size=512))
            env.reply.replayed = draw(st.booleans())
        else:
            env.error.code = draw(text)
            env.error.message = draw(text)
            env.error.retryable = draw(st.booleans())
    return env


@pytest.mark.fuzz
@settings(max_examples=examples(100))
@given(envelopes())
def test_round_trip_through_router_and_dealer_frames(env: Envelope) -> None:
    codec = Codec()
    peer, decoded, raw = codec.from_router_frames(codec.to_router_frames(b"peer-1", env))
    assert peer == b"peer-1" and decoded == env and raw == env.SerializeToString()
    assert codec.from_dealer_frames(codec.to_dealer_frames(env)) == env
    assert codec.stats.get("rejected") == 0


@pytest.mark.fuzz
@settings(max_examples=examples(2000))
@given(st.binary(max_size=4096))
def test_random_bytes_never_crash_the_decoder(data: bytes) -> None:
    codec = Codec(max_frame_bytes=2048)
    env = codec.decode(data)
    if env is None:
        assert codec.stats.get("rejected") == 1
    else:  # random bytes that happen to form a valid envelope must pass every check
        assert env.protocol_version == BUS_PROTOCOL_VERSION and env.WhichOneof("body")


@pytest.mark.fuzz
@settings(max_examples=examples(100))
@given(st.lists(st.binary(max_size=64), max_size=5))
def test_random_frame_layouts_never_crash(frames: list[bytes]) -> None:
    codec = Codec()
    codec.from_router_frames(frames)
    codec.from_dealer_frames(frames)


def _valid() -> Envelope:
    env = Envelope(protocol_version=BUS_PROTOCOL_VERSION, message_id="m1")
    env.heartbeat.SetInParent()
    return env


def test_oversized_frames_are_counted_and_refused() -> None:
    codec = Codec(max_frame_bytes=1024)
    big = _valid()
    big.ClearField("body")
    big.request.service = "s"
    big.request.payload = b"x" * 2000
    with pytest.raises(MalformedMessage):
        codec.encode(big)
    assert codec.decode(big.SerializeToString()) is None
    assert codec.stats.get("rejected.oversized") == 1
    assert codec.stats.get("rejected_outgoing.oversized") == 1


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: setattr(e, "protocol_version", 99), "unsupported_version"),
        (lambda e: e.ClearField("body"), "no_body"),
        (lambda e: setattr(e, "message_id", ""), "bad_message_id"),
        (lambda e: setattr(e, "message_id", "x" * 200), "bad_message_id"),
        (lambda e: e.reply.SetInParent(), "no_correlation_id"),
        (lambda e: e.error.SetInParent(), "no_correlation_id"),
        (lambda e: e.request.SetInParent(), "no_service"),
        (lambda e: e.ready.SetInParent(), "no_service"),
    ],
)
def test_invalid_envelopes_are_rejected_with_a_reason(mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    codec = Codec()
    env = _valid()
    mutate(env)
    assert codec.decode(env.SerializeToString()) is None
    assert codec.stats.get(f"rejected.{reason}") == 1


def test_bad_layouts_are_rejected() -> None:
    codec = Codec()
    data = _valid().SerializeToString()
    assert codec.from_router_frames([b"id", data]) is None  # no delimiter
    assert codec.from_router_frames([b"", b"", data]) is None  # empty identity
    assert codec.from_dealer_frames([b"x", data]) is None
    assert codec.from_dealer_frames([b"", b"\xff\xff\xff"]) is None
    assert codec.stats.get("rejected.bad_layout") == 3
    assert codec.stats.get("rejected.undecodable") == 1
