"""OpenAPI-driven fuzzing (schemathesis) of the HTTP front: whatever the input, no server error."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import bcrypt
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from services.api.app import create_app
from services.api.settings import ApiSettings
from tests.fuzzing import examples

from .fakes import PASSWORD, FakeBus

# made at import (schemathesis parametrizes from the app when the module is collected), so
# removed when the test process ends: one per worker and run was left behind
RUN_DIR = Path(tempfile.mkdtemp(prefix="fuzz-run-"))
atexit.register(shutil.rmtree, RUN_DIR, True)
APP = create_app(
    ApiSettings(
        password_hash=bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode(),
        public_rate_per_s=100_000,
        run_dir=RUN_DIR,
    ),
    FakeBus(RUN_DIR),
)
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP)


@pytest.mark.fuzz
@schema.parametrize()
@settings(max_examples=examples(25), deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case) -> None:  # type: ignore[no-untyped-def]
    response = case.call(headers={"Authorization": f"Bearer {PASSWORD}"})
    case.validate_response(response, checks=[not_a_server_error])
