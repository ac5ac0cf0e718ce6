"""The version hash is the commit the code runs from."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gwcore.version import REPO, _git_commit, version_hash


def test_the_commit_of_this_checkout() -> None:
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert version_hash() == head


def test_loose_packed_and_detached_refs(tmp_path: Path) -> None:
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "packed-refs").write_text("# pack-refs\n" + "ab" * 20 + " refs/heads/main\n")
    assert _git_commit(tmp_path) == "ab" * 20
    (git / "refs" / "heads" / "main").write_text("cd" * 20 + "\n")
    assert _git_commit(tmp_path) == "cd" * 20  # a loose ref is newer than the packed one
    (git / "HEAD").write_text("ef" * 20 + "\n")
    assert _git_commit(tmp_path) == "ef" * 20
    assert _git_commit(tmp_path / "nowhere") is None
