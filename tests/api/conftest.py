"""Every API front built in these tests keeps its run-directory files (the dashboard's session
secret and logouts) in a temporary folder, never in the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from gwcore.constants import ENV_PREFIX_API


@pytest.fixture(autouse=True)
def _api_run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PREFIX_API + "RUN_DIR", str(tmp_path / "api-run"))
