"""gunicorn settings of the API front (`gunicorn -c deploy/gunicorn.conf.py`).

Each worker process reads requests whole in its event loop and answers them in `threads`
threads (services/api/worker.py, not gthread: there a slow client holds a thread while it
trickles its headers or body). Reading is bounded by GATEWAY_API_HEADER_TIMEOUT_S and
_BODY_TIMEOUT_S; an idle kept-alive connection by `keepalive`.

Responders block on the bus, whose own timeouts
(GATEWAY_API_BUS_TIMEOUT_S, _PAY_TIMEOUT_S, _LONG_TIMEOUT_S) stay well under `timeout` here: it is
derived from them (ApiSettings.worker_timeout_s). The bus connection is made in each worker after
fork (never at import).

The front's Prometheus counters are shared by the workers through prometheus_client's
multiprocess files in `<run dir>/api-metrics` (emptied when gunicorn starts; a dead worker's
live gauges are dropped): /metrics shows every worker's counts whichever worker answers. The
rate limit's and the password throttle's counts (`<run dir>/api-limits.sqlite`, shared by the
workers: services/api/limits.py) start empty too.
"""

import contextlib
import os
import shutil

from services.api.limits import LIMITS_FILE
from services.api.settings import ApiSettings

wsgi_app = "services.api.app:get_app()"
bind = os.environ.get("GATEWAY_API_BIND", "127.0.0.1:8175")
workers = int(os.environ.get("GATEWAY_API_WORKERS", "2"))
worker_class = "services.api.worker.BufferingWorker"
threads = int(os.environ.get("GATEWAY_API_THREADS", "8"))
timeout = ApiSettings().worker_timeout_s()  # the longest bus call + a minute
graceful_timeout = 30
keepalive = 5
worker_connections = int(os.environ.get("GATEWAY_API_WORKER_CONNECTIONS", "1000"))
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GATEWAY_API_LOG_LEVEL", "info").lower()
proc_name = "gateway-api"
control_socket_disable = True

# before any worker imports prometheus_client (workers import the app after fork)
_run_dir = os.environ.get("GATEWAY_API_RUN_DIR", ".run")
_metrics_dir = os.path.join(_run_dir, "api-metrics")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def on_starting(server):  # type: ignore[no-untyped-def]
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, mode=0o700, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(_run_dir, LIMITS_FILE + suffix))


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
