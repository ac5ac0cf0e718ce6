"""The API front's app over the fake bus (tests/api/fakes.py), for gunicorn in tests and
benches: `gunicorn -c deploy/gunicorn.conf.py 'tests.api.fake_front:get_app()'`. Every answer
says which worker gave it (`X-Worker-Pid`), so a test can tell that several workers answered."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from services.api.app import create_app
from services.api.settings import ApiSettings

from .fakes import FakeBus


class _QuietBus(FakeBus):
    def call(self, *args: Any, **kw: Any) -> bytes:
        out = super().call(*args, **kw)
        self.calls.clear()  # a long run must not grow
        return out


def get_app() -> Callable[..., Iterable[bytes]]:
    app = create_app(ApiSettings(), _QuietBus())
    pid = str(os.getpid())

    def with_pid(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list, *exc: Any) -> Any:
            return start_response(status, [*headers, ("X-Worker-Pid", pid)], *exc)

        return app(environ, start)

    return with_pid
