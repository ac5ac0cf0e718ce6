"""Where a request ends in the bytes read so far (services/api/framing.py): whole requests are
found however the bytes are split, oversized and ambiguous ones are refused before their body
is read."""

from __future__ import annotations

import pytest

from services.api.framing import Refused, RequestFraming

HEAD = b"POST /pay_invoice HTTP/1.1\r\nHost: gw\r\n"


def _bytewise(data: bytes, framing: RequestFraming) -> int | None:
    """Feed `data` one byte at a time, as a slow client sends it; the end once complete."""
    buf = bytearray()
    for i in range(len(data)):
        buf += data[i : i + 1]
        end = framing.feed(buf)
        if end is not None:
            return end
    return None


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /health/live HTTP/1.1\r\nHost: gw\r\n\r\n",
        HEAD + b"Content-Length: 5\r\n\r\nhello",
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\n!!!\r\n0\r\n\r\n",
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n\r\n\r\n0\r\nX-Trailer: 1\r\n\r\n",
    ],
)
def test_a_request_ends_where_it_ends(request_bytes: bytes) -> None:
    next_one = b"GET /next HTTP/1.1\r\n"
    assert RequestFraming(4096, 1024).feed(request_bytes + next_one) == len(request_bytes)
    assert _bytewise(request_bytes + next_one, RequestFraming(4096, 1024)) == len(request_bytes)
    assert RequestFraming(4096, 1024).feed(request_bytes[:-1]) is None


def test_the_headers_are_known_before_the_body() -> None:
    f = RequestFraming(4096, 1024)
    assert f.feed(HEAD + b"Expect: 100-continue\r\nContent-Length: 9\r\n\r\nabc") is None
    assert f.header_end is not None and f.expect_continue


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 5000, 431),  # no end of headers in sight
        (b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 5000 + b"\r\n\r\n", 431),
        (HEAD + b"Content-Length: 1025\r\n\r\n", 413),  # refused before the body comes
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n401\r\n", 413),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n200\r\n" + b"a" * 512 + b"\r\n201\r\n", 413),
        (HEAD + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (HEAD + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
        (HEAD + b"Content-Length: -3\r\n\r\n", 400),
        (HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 400),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcXY", 400),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"1" * 2000, 400),
    ],
)
def test_refused_before_reading_on(request_bytes: bytes, status: int) -> None:
    with pytest.raises(Refused) as refused:
        RequestFraming(4096, 1024).feed(request_bytes)
    assert refused.value.status == status
    with pytest.raises(Refused):
        _bytewise(request_bytes, RequestFraming(4096, 1024))
