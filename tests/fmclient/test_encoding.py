"""Consensus encoding: BigSize (LDK's vectors, canonical forms only), collections, options,
maps in key order, enum framing read whole."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fmclient.encoding import DecodeError, Reader, Writer, bigsize, encode
from tests.fuzzing import examples

# lightning-0.2.7/src/util/ser.rs BigSize tests (and fedimint's use of them)
BIGSIZE = [
    (0, "00"),
    (252, "fc"),
    (253, "fd00fd"),
    (65535, "fdffff"),
    (65536, "fe00010000"),
    (4294967295, "feffffffff"),
    (4294967296, "ff0000000100000000"),
    (18446744073709551615, "ffffffffffffffffff"),
]
NON_CANONICAL = ["fd00fc", "fe0000ffff", "ff00000000ffffffff"]


@pytest.mark.parametrize(("n", "hexed"), BIGSIZE)
def test_bigsize_vectors(n: int, hexed: str) -> None:
    assert bigsize(n).hex() == hexed
    assert Reader(bytes.fromhex(hexed)).varint() == n


@pytest.mark.parametrize("hexed", NON_CANONICAL)
def test_non_canonical_bigsize_is_refused(hexed: str) -> None:
    with pytest.raises(DecodeError, match="non-canonical"):
        Reader(bytes.fromhex(hexed)).varint()


def test_collections_options_and_framing() -> None:
    data = encode(
        lambda w: (
            w.vec([b"ab", b""], Writer.bytes)
            .option(None, Writer.u8)
            .option(7, Writer.varint)
            .bool(True)
            .str("fé")
            .framed(3, b"\x01\x02")
            .raw(b"\xff" * 4)
        )
    )
    assert data.hex() == "0202616200" + "00" + "0107" + "01" + "0366c3a9" + "03020102" + "ff" * 4
    r = Reader(data)
    assert r.vec(Reader.bytes) == [b"ab", b""]
    assert r.option(Reader.u8) is None and r.option(Reader.varint) == 7 and r.bool() is True
    assert r.str() == "fé"
    tag, body = r.framed()
    assert tag == 3 and body.raw(2) == b"\x01\x02"
    body.done()
    assert r.raw(4) == b"\xff" * 4
    r.done()


def test_maps_are_written_sorted_and_read_only_sorted() -> None:
    m = {300: "c", 2: "a", 253: "b"}
    data = encode(lambda w: w.map(m, Writer.varint, Writer.str))
    assert data.hex() == "03" + "02" + "0161" + "fd00fd" + "0162" + "fd012c" + "0163"
    assert Reader(data).map(Reader.varint, Reader.str) == {2: "a", 253: "b", 300: "c"}
    unsorted = bytes.fromhex("02" + "05" + "0161" + "02" + "0162")
    with pytest.raises(DecodeError, match="ascending"):
        Reader(unsorted).map(Reader.varint, Reader.str)
    duplicate = bytes.fromhex("02" + "05" + "0161" + "05" + "0162")
    with pytest.raises(DecodeError, match="ascending"):
        Reader(duplicate).map(Reader.varint, Reader.str)


@pytest.mark.parametrize(
    ("hexed", "why"),
    [
        ("0a", "out of range"),  # a 10-byte string with no bytes
        ("02", "bool is 0 or 1"),
        ("ff" + "00" * 8, "non-canonical"),
        ("0103aabbcc", "left over"),  # an enum body that is not read whole
    ],
)
def test_malformed_input_is_a_decode_error(hexed: str, why: str) -> None:
    r = Reader(bytes.fromhex(hexed))
    with pytest.raises(DecodeError, match=why):
        if why == "bool is 0 or 1":
            r.bool()
        elif why == "left over":
            _, body = r.framed()
            body.u8()
            body.done()
        else:
            r.bytes() if why == "out of range" else r.varint()


@pytest.mark.fuzz
@settings(max_examples=examples(200))
@given(st.lists(st.tuples(st.integers(0, 2**64 - 1), st.binary(max_size=40)), max_size=8))
def test_round_trip(items: list[tuple[int, bytes]]) -> None:
    data = encode(lambda w: w.vec(items, lambda w2, it: w2.varint(it[0]).framed(it[0], it[1])))
    r = Reader(data)
    back = r.vec(lambda r2: (r2.varint(), r2.framed()))
    r.done()
    assert [(n, tag, body.raw(body.remaining())) for n, (tag, body) in back] == [
        (n, n, b) for n, b in items
    ]


@pytest.mark.fuzz
@settings(max_examples=examples(300))
@given(st.binary(max_size=64))
def test_random_bytes_never_crash_the_reader(data: bytes) -> None:
    r = Reader(data)
    with contextlib.suppress(DecodeError):
        r.vec(lambda r2: (r2.str(), r2.map(Reader.varint, Reader.bytes), r2.option(Reader.bool)))
