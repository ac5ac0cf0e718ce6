"""The guardian's HTTP surface through Falcon (WSGI): config, long-polls, backups, errors."""

from __future__ import annotations

import threading
import time

import pytest
from coincurve import PrivateKey

from devworld.federation.engine import Federation
from devworld.fedlib import crypto
from devworld.fedlib.api import FedApiError
from devworld.fedlib.tx import backup_message

from .conftest import Regtest, wsgi_api


def test_config_and_block_height(regtest: Regtest, fed: Federation) -> None:
    api = wsgi_api(fed)
    cfg = api.config()
    assert (
        cfg["federation_id"] == fed.federation_id
        and len(cfg["modules"]["mint"]["denominations"]) == 41
    )
    h = api.block_height()
    threading.Timer(0.3, regtest.mine).start()
    start = time.monotonic()
    assert api.block_height(wait_for=h + 1, timeout=10) >= h + 1
    assert time.monotonic() - start < 8


def test_backups_are_signed(fed: Federation) -> None:
    api = wsgi_api(fed)
    key = PrivateKey()
    user = crypto.xonly(key)
    data = "ab" * 100
    api.put_backup(user, data, crypto.schnorr_sign(key, backup_message(user, data)))
    assert api.get_backup(user)["data"] == data
    with pytest.raises(FedApiError) as err:
        api.put_backup(user, "cd", crypto.schnorr_sign(PrivateKey(), backup_message(user, "cd")))
    assert err.value.status == 400 and err.value.code == "invalid_signature"
    assert api.get_backup(user)["data"] == data  # unchanged
    with pytest.raises(FedApiError) as missing:
        api.get_backup(crypto.xonly(PrivateKey()))
    assert missing.value.status == 404


def test_unknown_ids_and_bad_queries(fed: Federation) -> None:
    api = wsgi_api(fed)
    for call in (
        lambda: api.contract("00" * 32),
        lambda: api.offer("11" * 32),
        lambda: api.transaction("22" * 32),
        lambda: api.deposits("bcrt1qnotours"),
    ):
        with pytest.raises(FedApiError) as err:
            call()
        assert err.value.status == 404
    with pytest.raises(FedApiError) as bad:
        api.contract("nothex")
    assert bad.value.status == 400
    with pytest.raises(FedApiError) as bad_addr:
        api.pegout_fees("tb1qwrongnetwork", 1000)
    assert bad_addr.value.code == "invalid_address"
