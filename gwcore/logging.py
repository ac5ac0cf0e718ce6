"""Structured logs: one JSON object per line on stderr, for supervisord to capture.

Every line carries the process name and, when known, the federation id, request id and payment
hash of the work in progress. Those travel in context variables: `log_context(...)` sets them for
a block (and for the tasks it starts), so code deep down need not pass them around.

Secrets must never be logged: settings hold them as `SecretStr`, which prints as '**********'.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

_CONTEXT_FIELDS = ("federation_id", "request_id", "payment_hash")
_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "log_context", default=None
)


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Attach fields (federation_id, request_id, payment_hash, ...) to every log line inside."""
    merged = dict(_context.get() or {})
    merged.update({k: v for k, v in fields.items() if v})
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, str]:
    return dict(_context.get() or {})


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line with the process name and the log context."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "process": self.process,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_context.get() or {})
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            out.update(extra)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


def configure_logging(process: str, level: str = "INFO") -> None:
    """Send all logging of this process to stderr as JSON lines. Call once, in `main()`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(process))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for chatty in ("httpx", "httpcore"):  # one line per request: only warnings
        logging.getLogger(chatty).setLevel(logging.WARNING)


def fields(**kw: Any) -> dict[str, Any]:
    """`log.info("msg", extra=fields(x=1))` adds x to the JSON line."""
    return {"fields": kw}
