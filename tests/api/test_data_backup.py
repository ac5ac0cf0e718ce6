"""POST /data_backup with Falcon's TestClient against a fake router: the router's file is the
reply's body, handed out once (its name gone from the run folder); admin only; no fields."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import bcrypt
from falcon import testing

from gwcore import constants as C
from services.api.app import create_app
from services.api.settings import ApiSettings

from .fakes import BACKUP_BYTES, PASSWORD, FakeBus

AUTH = {"Authorization": f"Bearer {PASSWORD}"}


def _client(bus: FakeBus) -> testing.TestClient:
    settings = ApiSettings(
        password_hash=bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    )
    return testing.TestClient(create_app(settings, bus))


def test_the_backup_is_the_body_handed_out_once() -> None:
    bus = FakeBus()
    client = _client(bus)
    r = client.simulate_post(C.PATH_DATA_BACKUP, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.content == BACKUP_BYTES
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers[C.BACKUP_SHA256_HEADER.lower()] == hashlib.sha256(BACKUP_BYTES).hexdigest()
    assert r.headers[C.BACKUP_FILES_HEADER.lower()] == "3"
    assert 'filename="b1.fmgwdata"' in r.headers["content-disposition"]
    folder = Path(os.environ[C.ENV_PREFIX_API + "RUN_DIR"]) / C.BACKUPS_DIR_NAME
    assert list(folder.iterdir()) == []
    assert [c[:2] for c in bus.calls] == [(C.BACKUP_SERVICE, C.METHOD_DATA_BACKUP)]


def test_admin_only_and_no_fields() -> None:
    bus = FakeBus()
    client = _client(bus)
    assert client.simulate_post(C.PATH_DATA_BACKUP).status_code == 401
    r = client.simulate_post(C.PATH_DATA_BACKUP, json={"to": "/etc/passwd"}, headers=AUTH)
    assert r.status_code == 400 and "takes no fields" in r.json["error"]
    assert bus.calls == []
