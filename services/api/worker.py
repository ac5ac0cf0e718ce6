"""The API front's gunicorn worker: requests are read whole by the worker's event loop, never by
a thread, so slow or stalled clients cannot take the threads the answers need.

gunicorn's gthread worker hands a connection to a thread as soon as a byte arrives; the thread
then reads the headers and body itself, blocking, with no deadline, so a few dozen clients
sending a header line every few seconds hold every thread and the whole API (liveness
included) stops answering. Here (`deploy/gunicorn.conf.py`: `worker_class`):

    accept -> reading (event loop, non-blocking: bytes appended to the connection's buffer;
              services/api/framing.py says where the request ends)
           -> busy (one thread: gunicorn's parser over the buffered bytes, the Falcon app, the
              answer written with a deadline) -> kept alive (back to reading) or closed

Deadlines while reading: the headers within `header_timeout_s` of the connection (or of the
first byte of a kept-alive connection's next request), the body within `body_timeout_s` after
the headers; a connection idle between requests for gunicorn's `keepalive`. A late client is
answered 408 and cut, whatever it trickles meanwhile (the deadline never moves). Headers over
`max_header_bytes` are a 431, a body over `max_body_bytes` a 413, refused before it is read.
At most `worker_connections` connections per worker (beyond, new ones wait in the listen
backlog). `Expect: 100-continue` is answered by the loop when the headers are in.

Never: let a thread read from a client socket; move a deadline because a byte arrived.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import queue
import selectors
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gunicorn import http
from gunicorn.http import wsgi
from gunicorn.workers import base

from .framing import Refused, RequestFraming
from .settings import ApiSettings

SWEEP_EVERY_S = 0.1
REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
}
CODES = {400: "invalid_input", 408: "http_error", 413: "too_large", 431: "too_large"}


@dataclass(eq=False)
class Connection:
    sock: socket.socket
    client: Any
    server: Any
    framing: RequestFraming
    deadline: float
    buf: bytearray = field(default_factory=bytearray)
    reading: bool = False  # a request has begun (not idle between requests)
    continued: bool = False  # 100 Continue sent for the current request


class BufferingWorker(base.Worker):
    """gunicorn worker (see the module): an event loop reads, `threads` threads answer."""

    def init_process(self) -> None:
        if self.cfg.is_ssl:
            raise RuntimeError("the API front speaks plain HTTP: TLS is the reverse proxy's")
        s = ApiSettings()
        self.header_timeout, self.body_timeout = s.header_timeout_s, s.body_timeout_s
        self.max_header, self.max_body = s.max_header_bytes, s.max_body_bytes
        self.tpool = ThreadPoolExecutor(self.cfg.threads, thread_name_prefix="api")
        self.selector = selectors.DefaultSelector()
        self.done: queue.SimpleQueue[tuple[Connection, bool]] = queue.SimpleQueue()
        self.reading: set[Connection] = set()  # registered with the selector
        self.busy: set[Connection] = set()  # with a thread
        self.accepting = False
        super().init_process()  # loads the app, then run()

    # --- the loop ------------------------------------------------------------------------------
    def run(self) -> None:
        for listener in self.sockets:
            listener.setblocking(False)
        self.selector.register(self.PIPE[0], selectors.EVENT_READ, self._woken)
        swept = 0.0
        while self.alive:
            self.notify()
            self._accept_while(len(self.reading) + len(self.busy) < self.cfg.worker_connections)
            self._wait(self._timeout())
            self._finish_answered()
            now = time.monotonic()
            if now - swept >= SWEEP_EVERY_S:
                swept = now
                self._cut_late(now)
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                break
        self._stop()

    def _timeout(self) -> float:
        soonest = min((c.deadline for c in self.reading), default=time.monotonic() + 1)
        return max(0.0, min(1.0, soonest - time.monotonic() + 0.01))

    def _wait(self, timeout: float) -> None:
        try:
            events = self.selector.select(timeout)
        except InterruptedError:
            return
        for key, _ in events:
            try:
                key.data(key.fileobj)
            except Exception:  # one connection's trouble must not end the worker's others
                self.log.exception("Error reading a request")
                conn = next((c for c in self.reading if c.sock is key.fileobj), None)
                if conn is not None:
                    self._close(conn)

    def _woken(self, fd: Any) -> None:
        try:
            while os.read(self.PIPE[0], 4096):
                pass
        except BlockingIOError:
            pass

    def _accept_while(self, allowed: bool) -> None:
        if allowed == self.accepting:
            return
        for listener in self.sockets:
            if allowed:
                self.selector.register(listener, selectors.EVENT_READ, self._accept)
            else:
                self.selector.unregister(listener)
        self.accepting = allowed

    def _accept(self, listener: Any) -> None:
        try:
            sock, client = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        sock.setblocking(False)
        conn = Connection(
            sock,
            client,
            listener.getsockname(),
            self._framing(),
            time.monotonic() + self.header_timeout,  # the first request's headers, idle included
        )
        conn.reading = True
        self._listen(conn)

    def _framing(self) -> RequestFraming:
        return RequestFraming(self.max_header, self.max_body)

    def _listen(self, conn: Connection) -> None:
        self.reading.add(conn)
        self.selector.register(conn.sock, selectors.EVENT_READ, lambda _, c=conn: self._read(c))

    def _unlisten(self, conn: Connection) -> None:
        self.reading.discard(conn)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn.sock)

    # --- reading -------------------------------------------------------------------------------
    def _read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client is gone
            self._close(conn)
            return
        if not conn.reading:  # a kept-alive connection's next request begins
            conn.reading = True
            conn.deadline = time.monotonic() + self.header_timeout
        conn.buf += data
        self._advance(conn)

    def _advance(self, conn: Connection) -> None:
        """Hand the request to a thread once it is all here."""
        had_headers = conn.framing.header_end is not None
        try:
            end = conn.framing.feed(conn.buf)
        except Refused as why:
            self._refuse(conn, why.status, why.reason)
            return
        if end is None:
            if not had_headers and conn.framing.header_end is not None:  # now the body
                conn.deadline = time.monotonic() + self.body_timeout
                if conn.framing.expect_continue and not conn.continued:
                    conn.continued = True
                    self._send_now(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        request = bytes(conn.buf[:end])
        del conn.buf[:end]
        conn.framing, conn.continued = self._framing(), False
        self._unlisten(conn)
        self.busy.add(conn)
        future = self.tpool.submit(self._answer, conn, request)
        future.add_done_callback(lambda f, c=conn: self._answered(c, f))

    def _cut_late(self, now: float) -> None:
        for conn in [c for c in self.reading if c.deadline <= now]:
            if conn.reading and (conn.buf or conn.framing.header_end is not None):
                self.log.debug("request from %s too slow: cut", _ip(conn.client))
                self._refuse(conn, 408, "request not received in time")
            else:  # idle: nothing begun, nothing to answer
                self._close(conn)

    def _refuse(self, conn: Connection, status: int, reason: str) -> None:
        body = json.dumps({"error": reason, "code": CODES[status]}).encode()
        head = (
            f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        self._send_now(conn, head.encode() + body)
        self._close(conn)

    @staticmethod
    def _send_now(conn: Connection, data: bytes) -> None:
        """What the socket takes at once (a few hundred bytes: all of it), never waiting."""
        with contextlib.suppress(OSError):
            conn.sock.send(data)

    def _close(self, conn: Connection) -> None:
        self._unlisten(conn)
        self.busy.discard(conn)
        with contextlib.suppress(OSError):
            conn.sock.close()

    # --- answering (a thread) ------------------------------------------------------------------
    def _answer(self, conn: Connection, request: bytes) -> bool:
        """Parse and answer one buffered request; whether the connection may stay open."""
        req = None
        conn.sock.settimeout(self.body_timeout)  # writing the answer: a client must read it
        try:
            req = next(http.RequestParser(self.cfg, iter([request]), conn.client))
            if getattr(req, "_expected_100_continue", False):
                req._expected_100_continue = False  # answered by the loop, or the body came
            return self._respond(req, conn)
        except StopIteration:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, None):
                self.log.exception("Socket error processing request.")
            return False
        except Exception as exc:
            self.handle_error(req, conn.sock, conn.client, exc)
            return False

    def _respond(self, req: Any, conn: Connection) -> bool:
        """As gunicorn's gthread worker answers a request (its handle_request)."""
        environ: dict = {}
        resp = None
        try:
            self.cfg.pre_request(self, req)
            started = datetime.now()
            resp, environ = wsgi.create(req, conn.sock, conn.client, conn.server, self.cfg)
            environ["wsgi.multithread"] = True
            self.nr += 1
            if self.nr >= self.max_requests and self.alive:
                self.log.info("Autorestarting worker after current request.")
                self.alive = False
            if not self.alive or not self.cfg.keepalive:
                resp.force_close()
            body = self.wsgi(environ, resp.start_response)
            try:
                if isinstance(body, environ["wsgi.file_wrapper"]):
                    resp.write_file(body)
                else:
                    for item in body:
                        resp.write(item)
                resp.close()
            finally:
                self.log.access(resp, req, environ, datetime.now() - started)
                if hasattr(body, "close"):
                    body.close()
            return not resp.should_close()
        except OSError:
            raise
        except (Exception, SystemExit):
            if resp is not None and resp.headers_sent:  # too late for a 500: cut it short
                self.log.exception("Error handling request")
                return False
            raise
        finally:
            try:
                self.cfg.post_request(self, req, environ, resp)
            except Exception:
                self.log.exception("Exception in post_request hook")

    def _answered(self, conn: Connection, future: Any) -> None:
        """(A thread) back to the loop, which owns every connection's state."""
        keep = not future.cancelled() and future.exception() is None and future.result()
        self.done.put((conn, bool(keep)))
        with contextlib.suppress(OSError):
            os.write(self.PIPE[1], b".")

    def _finish_answered(self) -> None:
        while True:
            try:
                conn, keep = self.done.get_nowait()
            except queue.Empty:
                return
            self.busy.discard(conn)
            if not keep or not self.alive:
                self._close(conn)
                continue
            conn.sock.setblocking(False)
            conn.reading = bool(conn.buf)  # a pipelined request is already here
            conn.deadline = time.monotonic() + (
                self.header_timeout if conn.reading else self.cfg.keepalive
            )
            self._listen(conn)
            if conn.buf:
                self._advance(conn)

    # --- stopping ------------------------------------------------------------------------------
    def _stop(self) -> None:
        """Stop accepting, drop what is not being answered, let the answers finish (within
        gunicorn's graceful timeout)."""
        self._accept_while(False)
        for conn in list(self.reading):
            self._close(conn)
        until = time.monotonic() + self.cfg.graceful_timeout
        while self.busy and time.monotonic() < until:
            self.notify()
            self._wait(0.5)
            self._finish_answered()
        self.tpool.shutdown(wait=False)
        for listener in self.sockets:
            listener.close()


def _ip(client: Any) -> str:
    return client[0] if isinstance(client, tuple) else str(client)
