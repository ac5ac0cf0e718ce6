"""The backup commands as an operator runs them (processes, no gateway): `python -m
deploy.gateway --restore-from` takes the words on stdin only, refuses wrong words, a damaged
file, a non-empty data folder and a running gateway in one line with nothing written, and
restores otherwise; `--rollback` puts back the copies made before a newer version's migrations;
`gateway-cli backup` wants exactly one of --to and --federation-id."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from embit import bip39

from gwcore.databackup import write_backup
from gwcore.schema import backup_path, copy_database
from gwcore.seed import GatewaySeed
from services.actor.store import ACTOR_DB
from services.router.registry import ROUTER_DB

BIN = Path(sys.executable).parent
WORDS = bip39.mnemonic_from_bytes(bytes(range(16)))
OTHER = bip39.mnemonic_from_bytes(bytes(16))


def _run(argv: list[str], stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
    )


@pytest.fixture
def made(tmp_path: Path) -> dict:
    data = tmp_path / "data"
    data.mkdir()
    (data / "gateway-seed").write_text(WORDS + "\n")
    (data / "session-secret").write_text("s")
    backup = tmp_path / "gw.fmgwdata"
    write_backup(data, backup, GatewaySeed(WORDS).file_backup_key(), tmp_path / "work")
    env_file = tmp_path / "gateway.env"
    new_data, run = tmp_path / "new-data", tmp_path / "run"
    env_file.write_text(f"GATEWAY_DATA_DIR={new_data}\nGATEWAY_RUN_DIR={run}\n")
    return {"backup": backup, "env": env_file, "data": new_data, "run": run}


def _restore(made: dict, words: str) -> subprocess.CompletedProcess:
    argv = [str(BIN / "python"), "-m", "deploy.gateway", "--env-file", str(made["env"])]
    return _run([*argv, "--restore-from", str(made["backup"])], words + "\n")


def _refused(done: subprocess.CompletedProcess, why: str) -> None:
    assert done.returncode == 2, done
    assert done.stderr.count("\n") == 1 and why in done.stderr, done.stderr
    assert done.stdout == ""


def test_restore_takes_the_words_on_stdin(made: dict) -> None:
    _refused(_restore(made, OTHER), "not the seed this backup was made with")
    _refused(_restore(made, "twelve words that are not bip39 at all"), "BIP-39")
    assert not made["data"].exists()
    raw = bytearray(made["backup"].read_bytes())
    raw[-20] ^= 1
    made["backup"].write_bytes(bytes(raw))
    _refused(_restore(made, WORDS), "damaged")
    raw[-20] ^= 1
    made["backup"].write_bytes(bytes(raw))
    assert not made["data"].exists()
    made["run"].mkdir()
    (made["run"] / "supervisord.pid").write_text(str(os.getpid()))  # a live process
    _refused(_restore(made, WORDS), "the gateway is running")
    (made["run"] / "supervisord.pid").write_text("999999999")
    done = _restore(made, WORDS)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"] == 2
    assert (made["data"] / "gateway-seed").read_text() == WORDS + "\n"
    _refused(_restore(made, WORDS), "is not empty")


def test_backup_wants_its_destination() -> None:
    done = _run([str(BIN / "gateway-cli"), "-a", "http://127.0.0.1:9", "backup"])
    assert done.returncode == 2 and "--to" in done.stderr and done.stderr.count("\n") == 1


def test_rollback_puts_back_the_copies_from_before_a_migration(tmp_path: Path) -> None:
    """A newer version migrated router.sqlite (a copy beside it) and left its -wal; the actor's
    database is this version's: `--rollback` puts the router's copy back, drops the -wal, leaves
    the rest. Without its copy, a newer database stops it before anything moves."""
    data, run = tmp_path / "data", tmp_path / "run"
    (data / "actors" / "ab").mkdir(parents=True)
    router = data / "router.sqlite"
    db = sqlite3.connect(router, isolation_level=None)
    db.execute("CREATE TABLE federations (scid INTEGER)")
    db.execute("INSERT INTO federations VALUES (1)")
    copy_database(db, backup_path(router, ROUTER_DB.version))
    db.execute("ALTER TABLE federations ADD COLUMN note TEXT")  # the newer version's migration
    db.execute(f"PRAGMA user_version = {ROUTER_DB.version + 1}")
    db.close()
    (data / "router.sqlite-wal").write_bytes(b"the newer version's log")
    actor = sqlite3.connect(data / "actors" / "ab" / "actor.sqlite")
    actor.execute(f"PRAGMA user_version = {ACTOR_DB.version}")
    actor.execute("CREATE TABLE meta (k)")
    actor.close()
    env_file = tmp_path / "gateway.env"
    env_file.write_text(f"GATEWAY_DATA_DIR={data}\nGATEWAY_RUN_DIR={run}\n")
    argv = [str(BIN / "python"), "-m", "deploy.gateway", "--env-file", str(env_file), "--rollback"]
    kept = backup_path(router, ROUTER_DB.version).read_bytes()
    backup_path(router, ROUTER_DB.version).rename(tmp_path / "aside")
    missing = f"router.sqlite.v{ROUTER_DB.version}.bak is missing"
    _refused(_run(argv), f"is version {ROUTER_DB.version + 1} and {missing}")
    (tmp_path / "aside").rename(backup_path(router, ROUTER_DB.version))
    done = _run(argv)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"rolled_back": ["router.sqlite"]}
    assert router.read_bytes() == kept and not (data / "router.sqlite-wal").exists()
    db = sqlite3.connect(router)
    assert [r[1] for r in db.execute("PRAGMA table_info(federations)")] == ["scid"]
    db.close()
    assert (data / "actors" / "ab" / "actor.sqlite").exists()
