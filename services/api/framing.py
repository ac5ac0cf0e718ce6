"""Where an HTTP/1.x request ends in the bytes a connection has sent so far, for the worker
(services/api/worker.py) that reads requests whole before a thread parses them.

`RequestFraming.feed(buffer)` is called with the connection's buffer each time bytes arrive
and answers None (more to come) or the offset just past the request: its headers (up to the
empty line), then its body by `Content-Length` or by walking `Transfer-Encoding: chunked`
(incrementally: a body of many small chunks is walked once). Sizes are bounded as they arrive:
headers over `max_header_bytes` are a 431, a body over `max_body_bytes` (declared or chunked) a
413, framing that cannot be trusted (both lengths, several lengths, an unknown coding, bad
chunk sizes) a 400 — raised as `Refused`, answered by the worker, the connection closed.

Only framing is judged here; everything else about the request (its line, header names and
values) is gunicorn's parser's, which reads the same bytes afterwards.
"""

from __future__ import annotations

HEX = frozenset(b"0123456789abcdefABCDEF")
MAX_CHUNK_LINE = 1024


class Refused(Exception):
    """The request is refused before it is read any further: an HTTP status and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class RequestFraming:
    def __init__(self, max_header_bytes: int, max_body_bytes: int) -> None:
        self.max_header, self.max_body = max_header_bytes, max_body_bytes
        self.header_end: int | None = None  # offset past the empty line, once seen
        self.expect_continue = False
        self._scanned = 0  # where the search for the empty line goes on from
        self._length: int | None = None  # Content-Length
        self._chunked = False
        self._pos = 0  # the chunk walk: where the next chunk-size line (or data) starts
        self._data_left: int | None = None  # bytes of the current chunk still to come
        self._trailers = False  # past the last chunk: trailer lines until an empty one
        self._total = 0  # chunk bytes so far

    def feed(self, buf: bytes | bytearray) -> int | None:
        """None while the request is incomplete; then the offset just past it. Raises
        Refused."""
        if self.header_end is None:
            end = buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
            if end < 0:
                self._scanned = len(buf)
                if len(buf) > self.max_header:
                    raise Refused(431, f"headers over {self.max_header} bytes")
                return None
            if end + 4 > self.max_header:
                raise Refused(431, f"headers over {self.max_header} bytes")
            self.header_end = self._pos = end + 4
            self._headers(bytes(buf[:end]))
        if self._chunked:
            return self._walk(buf)
        assert self._length is not None
        end = self.header_end + self._length
        return end if len(buf) >= end else None

    def _headers(self, block: bytes) -> None:
        lengths, codings = set(), []
        for line in block.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip()
            if name == b"content-length":
                lengths.add(value)
            elif name == b"transfer-encoding":
                codings += [c.strip().lower() for c in value.split(b",")]
            elif name == b"expect" and value.lower() == b"100-continue":
                self.expect_continue = True
        if codings and lengths:
            raise Refused(400, "both Content-Length and Transfer-Encoding")
        if codings:
            if codings != [b"chunked"]:
                raise Refused(400, "unsupported Transfer-Encoding (only chunked)")
            self._chunked = True
            return
        if len(lengths) > 1:
            raise Refused(400, "several Content-Length values")
        value = lengths.pop() if lengths else b"0"
        if not value.isdigit() or len(value) > 18:
            raise Refused(400, "Content-Length is not a number")
        self._length = int(value)
        if self._length > self.max_body:
            raise Refused(413, f"body over {self.max_body} bytes")

    def _walk(self, buf: bytes | bytearray) -> int | None:
        while True:
            if self._data_left is not None:  # a chunk's data, then its CRLF
                end = self._pos + self._data_left
                if len(buf) < end + 2:
                    return None
                if buf[end : end + 2] != b"\r\n":
                    raise Refused(400, "a chunk is not followed by CRLF")
                self._pos, self._data_left = end + 2, None
                continue
            eol = buf.find(b"\r\n", self._pos)
            if eol < 0:
                if len(buf) - self._pos > MAX_CHUNK_LINE:
                    raise Refused(400, "chunk line too long")
                return None
            line = bytes(buf[self._pos : eol])
            self._pos = eol + 2
            if self._trailers:
                if not line:
                    return self._pos  # the empty line after the trailers: the end
                if self._pos - (self.header_end or 0) - self._total > self.max_header:
                    raise Refused(431, f"trailers over {self.max_header} bytes")
                continue
            size = line.split(b";")[0].strip()
            if not size or len(size) > 15 or not set(size) <= HEX:
                raise Refused(400, "bad chunk size")
            n = int(size, 16)
            self._total += n
            if self._total > self.max_body:
                raise Refused(413, f"body over {self.max_body} bytes")
            if n == 0:
                self._trailers = True
            else:
                self._data_left = n
