"""Names shared by servers, CLIs, the dashboard and tests: one spelling for each.

Endpoint names, environment variable names and prefixes, bus service and method names, and
program-name prefixes live here and nowhere else. Nothing here does anything.
"""

from __future__ import annotations

from typing import Final

# --- The bus ---------------------------------------------------------------------------------
BUS_PROTOCOL_VERSION: Final = 1
# The router's ROUTER socket: ipc://<run_dir>/bus/<ROUTER_ENDPOINT_NAME>.sock
ROUTER_ENDPOINT_NAME: Final = "router"
BUS_SUBDIR: Final = "bus"
# Bus identity of the router (the broker).
ROUTER_IDENTITY: Final = "router"
# Broker-local service answering bus status requests, and its methods.
BUS_SERVICE: Final = "bus"
METHOD_BUS_LIVENESS: Final = "bus.liveness"
METHOD_BUS_PING: Final = "bus.ping"

# Default limits (overridable in each process's settings).
DEFAULT_MAX_FRAME_BYTES: Final = 1 << 20  # 1 MiB per envelope
DEFAULT_HEARTBEAT_INTERVAL_S: Final = 1.0
DEFAULT_HEARTBEAT_LIVENESS: Final = 3  # intervals of silence before a peer is declared dead

# --- Environment ----------------------------------------------------------------------------
# One env prefix per process kind (pydantic-settings `env_prefix`).
ENV_PREFIX_ROUTER: Final = "GATEWAY_ROUTER_"
ENV_PREFIX_BUSCLI: Final = "GATEWAY_BUS_"
# Shared run directory (bus sockets, supervisor socket, conf.d) and data directory.
ENV_RUN_DIR: Final = "GATEWAY_RUN_DIR"
ENV_DATA_DIR: Final = "GATEWAY_DATA_DIR"
# a file holding 12 BIP-39 words (e.g. gatewayd's) the router takes as the gateway's seed at
# its first start, instead of making new ones (gwcore/seed.py); read once, never needed again
ENV_ROUTER_SEED_WORDS_FILE: Final = "GATEWAY_ROUTER_SEED_WORDS_FILE"
ENV_DEVNET_DIR: Final = "GATEWAY_DEVNET_DIR"  # the local world of `make run` (default .devnet/)
DEFAULT_RUN_DIR: Final = ".run"

# --- Supervisor -----------------------------------------------------------------------------
# every program of the gateway is named so (the router, the API front, the extension, the
# actors); the process list shows those alone, whatever else a supervisord runs beside them
PROGRAM_PREFIX: Final = "gateway-"
PROGRAM_ROUTER: Final = "gateway-router"
# Each federation actor is its own program: f"{PROGRAM_ACTOR_PREFIX}{federation_id}"
PROGRAM_ACTOR_PREFIX: Final = "gateway-actor-"

# --- Data backups (gateway-cli backup --to FILE) ---------------------------------------------------
# the router makes them (a broker-local service: it owns the data folder) into
# <run dir>/<BACKUPS_DIR_NAME>/, whence the API front hands each out once (PATH_DATA_BACKUP)
BACKUP_SERVICE: Final = "backups"
METHOD_DATA_BACKUP: Final = "backups.make"
BACKUPS_DIR_NAME: Final = "backups"
BACKUP_SHA256_HEADER: Final = "X-Backup-Sha256"
BACKUP_FILES_HEADER: Final = "X-Backup-Files"

# --- The simulated regtest world ---------------------------------------------------------------
ENV_PREFIX_REGTEST: Final = "REGTEST_"
REGTESTD_INFO_FILE: Final = "regtestd.json"  # written into regtestd's data dir

# --- The Lightning extension ---------------------------------------------------------------------
ENV_PREFIX_LNRPC: Final = "GATEWAY_LNRPC_"
PROGRAM_LNRPC: Final = "gateway-lnrpc-extension"
# where the extension listens and the gateway dials it: `unix:PATH` or `HOST:PORT` (mutual TLS)
ENV_LNRPC_LISTEN: Final = "GATEWAY_LNRPC_LISTEN"
# the folder of `gateway-cli make-extension-certs` (TCP only; "" for the unix socket)
ENV_LNRPC_TLS_DIR: Final = "GATEWAY_LNRPC_TLS_DIR"
# the default: unix:<run dir>/<LNRPC_SOCKET_SUBDIR>/<LNRPC_SOCKET_NAME>, its folder 0700
LNRPC_SOCKET_SUBDIR: Final = "lnrpc"
LNRPC_SOCKET_NAME: Final = "extension.sock"
# the files of a TLS folder, and the name the extension's certificate is issued to (the gateway
# checks it whatever host it dials)
LNRPC_TLS_CA: Final = "ca.crt"
LNRPC_TLS_EXTENSION_CERT: Final = "extension.crt"
LNRPC_TLS_EXTENSION_KEY: Final = "extension.key"
LNRPC_TLS_GATEWAY_CERT: Final = "gateway.crt"
LNRPC_TLS_GATEWAY_KEY: Final = "gateway.key"
LNRPC_TLS_SERVER_NAME: Final = "fmgw-lnrpc-extension"
LNRPC_TLS_CLIENT_NAME: Final = "fmgw-gateway"

# --- Actors and the gateway service ---------------------------------------------------------------
ENV_PREFIX_ACTOR: Final = "GATEWAY_ACTOR_"
GATEWAY_SERVICE: Final = "gateway"  # router-local bus service for gateway-level requests
METHOD_CONNECT_FED: Final = "gateway.connect_fed"
METHOD_LIST_FEDS: Final = "gateway.list_feds"
METHOD_LEAVE_FED: Final = "gateway.leave_fed"
METHOD_CONNECT_STATUS: Final = "gateway.connect_status"  # how far a connect has got
METHOD_LIGHTNING: Final = "gateway.lightning"
# the gateway's 12 seed words (admin only: `gateway-cli seed`)
METHOD_SEED: Final = "gateway.seed"
# an actor claims a payment hash: HTLCs of its hold invoice go to it (LNv2 receives)
METHOD_CLAIM_PAYMENT_HASH: Final = "gateway.claim_payment_hash"
METHOD_PAYMENT_HASH_OWNER: Final = "gateway.payment_hash_owner"  # who claimed it (swaps)
# an actor claims a payment hash it is about to pay (one contract per hash, gateway-wide), and
# releases it when that contract failed definitely
METHOD_CLAIM_OUTGOING: Final = "gateway.claim_outgoing_hash"
METHOD_RELEASE_OUTGOING: Final = "gateway.release_outgoing_hash"
# an actor connected with `connect-fed --recover` says its recovery from the seed is done
METHOD_RECOVERED: Final = "gateway.recovered"
# why a second contract for a payment hash is refused (payment log, the refusal's message)
DUPLICATE_PAYMENT_REASON: Final = "payment hash already paid or being paid by this gateway"
METHOD_ACTOR_INFO: Final = "actor.info"
METHOD_ACTOR_HTLC: Final = "actor.htlc"
METHOD_ACTOR_PAY: Final = "actor.pay_invoice"
METHOD_ACTOR_SET_FEES: Final = "actor.set_fees"
METHOD_ACTOR_ADDRESS: Final = "actor.address"
METHOD_ACTOR_DEPOSIT: Final = "actor.deposit"
METHOD_ACTOR_WITHDRAW: Final = "actor.withdraw"
METHOD_ACTOR_PAYMENT_LOG: Final = "actor.payment_log"
METHOD_ACTOR_METRICS: Final = "actor.metrics"
METHOD_ACTOR_PAYMENT_SUMMARY: Final = "actor.payment_summary"

# payments as the log, the summary and /metrics show them
PAYMENT_DIRECTIONS: Final = ("outgoing", "incoming", "swap", "withdrawal")  # withdrawal: a peg-out
PAYMENT_STATUSES: Final = ("settled", "failed", "pending")
# what an actor may have in flight (actor.info's in_flight_kinds; leave names them)
IN_FLIGHT_KINDS: Final = {
    "outgoing": "outgoing payment",
    "incoming": "incoming payment",
    "swap": "swap",
    "lnv2_send": "LNv2 send",
    "lnv2_receive": "LNv2 receive",
    "withdrawal": "withdrawal",
    "deposit": "deposit being claimed",
    "ecash": "e-cash operation",
    "recovery": "recovery from the seed",
}
PAYMENT_LATENCY_BUCKETS_S: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
METHOD_ACTOR_RECEIVE_ECASH: Final = "actor.receive_ecash"
METHOD_ACTOR_ROUTING_INFO: Final = "actor.routing_info"
METHOD_ACTOR_LNV2_SEND: Final = "actor.lnv2_send_payment"
METHOD_ACTOR_LNV2_INVOICE: Final = "actor.lnv2_create_invoice"
METHOD_ACTOR_LNV2_VERIFY: Final = "actor.lnv2_verify"
METHOD_ACTOR_SPEND_ECASH: Final = "actor.spend_ecash"

# --- The HTTP API front -------------------------------------------------------------------------
ENV_PREFIX_API: Final = "GATEWAY_API_"
# the API front's secrets (deploy/api_front.py hands them to the front alone)
ENV_API_PASSWORD_HASH: Final = "GATEWAY_API_PASSWORD_HASH"
ENV_API_SESSION_SECRET: Final = "GATEWAY_API_SESSION_SECRET"
# gateway-cli's admin password (a client's: no program of the gateway is given it)
ENV_CLI_PASSWORD: Final = "GATEWAY_RPCPASSWORD"
# bcrypt reads at most 72 bytes of a password: a longer admin password is refused, not truncated
MAX_PASSWORD_BYTES: Final = 72
DEFAULT_API_URL: Final = "http://127.0.0.1:8175"
REQUEST_ID_HEADER: Final = "X-Request-Id"
# public
PATH_PAY_INVOICE: Final = "/pay_invoice"
PATH_GATEWAY_ID: Final = "/id"  # LNv1, public: clients ask it before they fund a contract
PATH_ROUTING_INFO: Final = "/routing_info"  # LNv2, public, also under /v1/
PATH_SEND_PAYMENT: Final = "/send_payment"  # LNv2, public, also under /v1/
PATH_CREATE_BOLT11_INVOICE: Final = "/create_bolt11_invoice"  # LNv2, public, also under /v1/
PATH_VERIFY: Final = "/verify/{payment_hash}"  # LNv2 (LUD-21), public, also under /v1/
PATH_RECEIVE_ECASH: Final = "/receive_ecash"  # public: e-cash given to the gateway
PATH_SPEND_ECASH: Final = "/spend_ecash"  # admin: out-of-band e-cash for the operator
PATH_HEALTH: Final = "/health"  # readiness: router, extension and every actor
PATH_HEALTH_LIVE: Final = "/health/live"  # liveness: this front answers (no bus call)
PATH_METRICS: Final = "/metrics"
PATH_OPENAPI: Final = "/openapi.json"
# admin (Bearer password)
PATH_INFO: Final = "/info"
PATH_BALANCE: Final = "/balance"
PATH_BALANCES: Final = "/balances"
PATH_ADDRESS: Final = "/address"
PATH_DEPOSIT: Final = "/deposit"
PATH_WITHDRAW: Final = "/withdraw"
PATH_CONNECT_FED: Final = "/connect-fed"
PATH_LEAVE_FED: Final = "/leave-fed"
PATH_SET_FEES: Final = "/set_fees"
PATH_DATA_BACKUP: Final = "/data_backup"  # the data folder, encrypted (octet-stream reply)
PATH_SEED: Final = "/seed"  # admin: the gateway's 12 seed words
PATH_CONFIG: Final = "/config"
PATH_LIGHTNING: Final = "/lightning"
PATH_PAYMENT_LOG: Final = "/payment_log"
PATH_PAYMENT_SUMMARY: Final = "/payment_summary"
