"""A bus worker in its own OS process, for the multi-process tests.

    python worker_proc.py ENDPOINT SERVICE DATA_DIR [--crash-after-persist]

Methods: "pid" returns the process id; "work" (non-idempotent) sleeps for the float in its payload,
records one row in DATA_DIR/effects.db and returns "done:<pid>". With --crash-after-persist, the
first reply it commits to its reply store is followed by os._exit before it is sent (once: a marker
file remembers), which is the worst moment for a crash.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import zmq.asyncio

from bus import Call, HeartbeatPolicy, ReplyStore, Worker
from bus.dedup import StoredReply


class CrashingStore(ReplyStore):
    def __init__(self, path: Path, marker: Path) -> None:
        super().__init__(path)
        self.marker = marker

    def put(self, reply: StoredReply) -> StoredReply:
        stored = super().put(reply)
        if not self.marker.exists():
            self.marker.write_text("crashed")
            os._exit(17)
        return stored


async def main(endpoint: str, service: str, data_dir: Path, crash: bool) -> None:
    effects = sqlite3.connect(data_dir / "effects.db", isolation_level=None)
    effects.execute("CREATE TABLE IF NOT EXISTS effects (message_id TEXT, pid INTEGER)")

    async def handler(call: Call) -> bytes:
        if call.method == "pid":
            return str(os.getpid()).encode()
        if call.method == "work":
            await asyncio.sleep(float(call.payload or b"0"))
            effects.execute("INSERT INTO effects VALUES (?, ?)", (call.message_id, os.getpid()))
            return f"done:{os.getpid()}".encode()
        raise ValueError(call.method)

    store_path = data_dir / f"replies-{service}.db"
    store = CrashingStore(store_path, data_dir / "crashed") if crash else ReplyStore(store_path)
    ctx = zmq.asyncio.Context()
    worker = Worker(
        endpoint=endpoint,
        service=service,
        handler=handler,
        ctx=ctx,
        identity=f"actor-{service}",
        heartbeat=HeartbeatPolicy(0.1, 3),
        store=store,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await worker.start()
    await stop.wait()
    await worker.stop()
    ctx.destroy(linger=0)


if __name__ == "__main__":
    asyncio.run(
        main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), "--crash-after-persist" in sys.argv)
    )
