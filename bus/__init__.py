"""The gateway's message bus: protobuf envelopes over ZeroMQ ROUTER/DEALER sockets.

    Broker     (bus.broker)  ROUTER in the router process: worker table, routing, heartbeats
    Worker     (bus.worker)  DEALER serving one service (an actor serves its federation id)
    BusClient  (bus.client)  DEALER making requests through the broker (the API front)
    Codec      (bus.codec)   the only code that touches raw frames
    ReplyStore (bus.dedup)   replies to non-idempotent requests, replayed for duplicates

See docs/architecture.md, "The bus protocol". Importing this package opens nothing.
"""

from .broker import Broker
from .calls import Call, Handler
from .client import BusClient
from .codec import Codec, new_message_id
from .dedup import ReplyStore
from .endpoints import HeartbeatPolicy, ReconnectPolicy, ensure_run_dir, ipc_endpoint
from .security import CurveClientConfig, CurveKeyPair, CurveServerConfig
from .stats import BusStats
from .worker import Worker

__all__ = [
    "Broker",
    "BusClient",
    "BusStats",
    "Call",
    "Codec",
    "CurveClientConfig",
    "CurveKeyPair",
    "CurveServerConfig",
    "Handler",
    "HeartbeatPolicy",
    "ReconnectPolicy",
    "ReplyStore",
    "Worker",
    "ensure_run_dir",
    "ipc_endpoint",
    "new_message_id",
]
