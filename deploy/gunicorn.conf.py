"""gunicorn settings of the API front (`gunicorn -c deploy/gunicorn.conf.py`).

Workers are threads in few processes (gthread): responders block on the bus, whose own timeouts
(GATEWAY_API_BUS_TIMEOUT_S, GATEWAY_API_PAY_TIMEOUT_S) stay well under `timeout` here. The bus
connection is made in each worker after fork (never at import).
"""

import os

wsgi_app = "services.api.app:get_app()"
bind = os.environ.get("GATEWAY_API_BIND", "127.0.0.1:8175")
workers = int(os.environ.get("GATEWAY_API_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GATEWAY_API_THREADS", "8"))
timeout = 150  # > pay timeout (100 s) + margin
graceful_timeout = 30
keepalive = 5
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GATEWAY_API_LOG_LEVEL", "info").lower()
proc_name = "gateway-api"
control_socket_disable = True
