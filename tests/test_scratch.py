"""tests/scratch.py: which folder the suite writes in."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tests.scratch import ram_folder


def test_a_writable_folder_with_room_is_chosen(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    assert ram_folder({}, [missing, str(tmp_path)], min_free=1) == str(tmp_path)


def test_none_without_room_or_when_the_caller_chose(tmp_path: Path) -> None:
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    assert ram_folder({}, [str(tmp_path)], min_free=free + (1 << 40)) is None
    assert ram_folder({"TMPDIR": "/elsewhere"}, [str(tmp_path)], min_free=1) is None
    assert ram_folder({}, [str(tmp_path / "missing")], min_free=1) is None


def test_pytest_folders_follow_the_temporary_folder(tmp_path: Path) -> None:
    """pytest's own folders are made after the choice (tests/conftest.py's configure), so they
    are where every other folder of the tests is."""
    assert Path(tempfile.gettempdir()).resolve() in tmp_path.resolve().parents
