"""What an actor says it has in flight (`actor.info`: `in_flight`, `in_flight_kinds`), which the
router's leave refuses on: for a real Fedimint federation's actor (real wallet file and config,
the guardians faked) every kind counts — LNv2 sends paying or paid and not yet claimed, LNv2
receives being funded, decrypted or refunded, withdrawals, deposits being claimed, e-cash
operations — and finished ones do not."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq.asyncio

from fmclient.config import parse_client_config
from services.actor.app import Actor
from services.actor.fedimint import FedimintFederation
from services.actor.settings import ActorSettings

DATA = Path(__file__).parents[1] / "fmclient" / "data"
CONFIG = parse_client_config(
    json.loads((DATA / "fedimintd_4_guardians.json").read_text())["client_config"]
)


class FakeApi:
    async def close(self) -> None:
        return None


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fmgw-a-"))  # ipc paths must stay short
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _row(db, table: str, **values: object) -> None:  # type: ignore[no-untyped-def]
    cols = ", ".join(values)
    db.execute(
        f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(values))})", (*values.values(),)
    )


async def test_every_kind_of_payment_in_flight_counts(home: Path) -> None:
    settings = ActorSettings(
        federation_id=CONFIG.federation_id,
        invite_code="fed11x",
        scid=1,
        run_dir=home / "run",
        data_dir=home / "data",
    )
    (home / "fed").mkdir()
    fed = FedimintFederation(home / "fed", CONFIG, FakeApi())  # type: ignore[arg-type]
    ctx = zmq.asyncio.Context()
    actor = Actor(settings, ctx, fed)
    try:
        info = await actor.info()
        assert info["in_flight"] == 0 and not any(info["in_flight_kinds"].values())
        db, now = fed.mint.db, time.time()
        send = {"txid": "00" * 32, "out_idx": 0, "contract": "{}", "invoice": "lnbc"}
        send |= {"max_delay": 1, "max_fee_msat": 1, "created": now, "updated": now}
        for i, state in enumerate(("paying", "paid", "claimed", "forfeited", "refused")):
            _row(db, "lnv2_sends", contract_id=f"{i:064x}", state=state, **send)
        receive = {"contract": "{}", "amount_msat": 1, "description": "{}", "expiry_secs": 1}
        receive |= {"created": now, "updated": now}
        for i, state in enumerate(("created", "funding", "decrypting", "refunding", "decrypted")):
            _row(db, "lnv2_receives", payment_hash=f"{i:064x}", state=state, **receive)
        for i, state in enumerate(("seen", "claiming", "claimed", "too_small")):
            _row(db, "deposits", output_index=i, address="a", value_sat=1, state=state, updated=now)
        for op, kind, state in [
            ("w1", "pegout", "submitted"),
            ("w2", "pegout", "done"),
            ("p1", "pegin", "submitted"),  # its deposit row says "claiming" already
            ("e1", "receive", "submitted"),
            ("e2", "split", "done"),
            ("l1", "lnv2_claim", "submitted"),  # counted by its send, "paid"
        ]:
            _row(db, "operations", id=op, kind=kind, state=state, created=now, updated=now)
        info = await actor.info()
        assert info["in_flight_kinds"] == {
            "lnv2_send": 2,
            "lnv2_receive": 3,
            "withdrawal": 1,
            "deposit": 2,
            "ecash": 1,
        }
        assert info["in_flight"] == 9
    finally:
        await actor.channel.close()
        ctx.term()
