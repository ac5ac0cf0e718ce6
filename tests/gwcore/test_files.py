"""What the gateway writes is its user's alone whatever the umask it was started with: the
databases (with their WAL files), an actor's conf.d file (it holds the invite code), the secrets
handed to the API front; folders 0700 (gwcore/files.py)."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.dedup import ReplyStore
from deploy.api_front import API_SECRETS_FILE, front_env, hand_over, secret_names
from fmclient.config import parse_client_config
from fmclient.wallet import MintWallet
from gwcore.files import private_dir, private_file, write_private
from services.actor.store import ActorStore
from services.api.sessions import RevokedSessions
from services.router.registry import FederationRegistry
from services.router.supervisor import SupervisorControl
from tests.private_files import loose_entries

CONFIG = parse_client_config(  # a real fedimintd 0.13 federation's (the wallet's file needs one)
    json.loads(
        (Path(__file__).parents[1] / "fmclient" / "data" / "fedimintd_4_guardians.json").read_text()
    )["client_config"]
)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o002)  # group-writable, world-readable: what must not leak through
    try:
        yield
    finally:
        os.umask(old)


def test_the_databases_are_private_whatever_the_umask(tmp_path: Path, loose_umask: None) -> None:
    data = tmp_path / "data"  # and the folders they make on the way
    sqlite_files = [  # kept open: closing the last connection removes the WAL files
        ReplyStore(data / "actors" / "a1" / "bus-replies.sqlite"),
        FederationRegistry(data / "router.sqlite"),
        ActorStore(data / "actors" / "a1" / "actor.sqlite"),
        RevokedSessions(data / "run" / "dashboard-sessions.sqlite"),
        MintWallet(data / "actors" / "a1" / "fedimint.sqlite", CONFIG, None),  # type: ignore[arg-type]
    ]
    sqlite_files[3].revoke("s1", int(time.time()) + 60)
    names = {p.name for p in data.rglob("*")}
    assert {"router.sqlite-wal", "router.sqlite-shm", "fedimint.sqlite-wal"} <= names
    assert loose_entries(data) == []
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


def test_a_database_made_loose_before_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "router.sqlite"
    db.touch()
    db.chmod(0o644)  # made by an older gateway
    FederationRegistry(db)
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_an_actors_conf_file_is_private(tmp_path: Path, loose_umask: None) -> None:
    control = SupervisorControl("unix:///nonexistent.sock", tmp_path / "run" / "conf.d")
    path = control.write_program(
        "gateway-actor-ab", "ab", "/bin/true", {"GATEWAY_ACTOR_INVITE_CODE": "fed1secret"}
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "umask=077" in path.read_text().splitlines()  # what the actor itself makes
    assert loose_entries(tmp_path / "run") == []
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_the_helpers(tmp_path: Path, loose_umask: None) -> None:
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    mine.chmod(0o755)
    private_dir(mine / "a" / "b")
    assert stat.S_IMODE(mine.stat().st_mode) == 0o755  # a folder above is not ours to change
    assert loose_entries(mine / "a") == []
    private_dir(mine, tighten=True)  # the run or data folder: ours
    assert stat.S_IMODE(mine.stat().st_mode) == 0o700
    f = write_private(mine / "c" / "secret", "one")
    write_private(f, "two")
    assert f.read_text() == "two" and stat.S_IMODE(f.stat().st_mode) == 0o600
    g = mine / "db"
    g.write_text("kept")
    g.chmod(0o664)
    private_file(g)
    assert g.read_text() == "kept" and stat.S_IMODE(g.stat().st_mode) == 0o600
    assert loose_entries(mine) == []


def test_the_api_fronts_secrets_are_handed_to_it_alone(tmp_path: Path, loose_umask: None) -> None:
    names = set(secret_names())
    assert names == {
        "GATEWAY_API_PASSWORD_HASH",
        "GATEWAY_API_SESSION_SECRET",
        "GATEWAY_API_METRICS_TOKEN",
    }
    run = tmp_path / "run"
    env = {
        "GATEWAY_API_PASSWORD_HASH": "$2b$12$hash",
        "GATEWAY_API_SESSION_SECRET": "s3",
        "GATEWAY_API_METRICS_TOKEN": "",
        "GATEWAY_API_BIND": "127.0.0.1:1",
        "GATEWAY_RPCPASSWORD": "the password itself",  # gateway-cli's, in the operator's shell
        "PATH": "/bin",
    }
    supervisord_env = hand_over(env, run)
    assert not names & set(supervisord_env)  # what every program gets
    assert "GATEWAY_RPCPASSWORD" not in supervisord_env
    assert supervisord_env["GATEWAY_API_BIND"] == "127.0.0.1:1"
    assert stat.S_IMODE((run / API_SECRETS_FILE).stat().st_mode) == 0o600
    front = front_env(supervisord_env, run)
    assert front["GATEWAY_API_PASSWORD_HASH"] == "$2b$12$hash"
    assert front["GATEWAY_API_SESSION_SECRET"] == "s3" and "GATEWAY_API_METRICS_TOKEN" not in front
    # a value set by whoever started supervisord by hand wins over one kept before
    assert front_env({"GATEWAY_API_SESSION_SECRET": "mine"}, run)["GATEWAY_API_SESSION_SECRET"] == (
        "mine"
    )
    # a secret no longer set is no longer kept
    hand_over({"GATEWAY_API_PASSWORD_HASH": "$2b$12$other"}, run)
    assert "GATEWAY_API_SESSION_SECRET" not in front_env({}, run)
