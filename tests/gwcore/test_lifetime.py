"""gwcore.lifetime for real: a program whose parent (supervisord) is killed outright ends too;
a second owner of a database waits for the first to end, and gets it the moment the first dies,
even by SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from peers.harness.procs import pid_alive

CHILD = """
import os, sys, time
from gwcore.lifetime import die_with_parent
assert die_with_parent()
print(os.getpid(), flush=True)
time.sleep(60)
"""
# a parent (standing in for supervisord) that starts the child and prints its pid
PARENT = f"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", {CHILD!r}], stdout=sys.stdout)
time.sleep(60)
"""
HOLDER = """
import sys, time
from pathlib import Path
from gwcore.lifetime import only_instance
with only_instance(Path(sys.argv[1]), "test holder", report_every_s=0.5):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""
REPO = Path(__file__).resolve().parents[2]


def test_a_program_ends_when_its_parent_is_killed_outright() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        child = int(parent.stdout.readline())  # type: ignore[union-attr]
        assert pid_alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while pid_alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(child), "the child outlived its parent"
    finally:
        parent.kill()


def test_a_second_owner_waits_until_the_first_is_gone(tmp_path: Path) -> None:
    lock = tmp_path / "actors" / "x" / "actor.lock"
    first = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), "60"], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    second = None
    try:
        assert first.stdout.readline().strip() == "held"  # type: ignore[union-attr]
        assert lock.parent.stat().st_mode & 0o777 == 0o700
        second = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(lock), "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        time.sleep(1.5)
        assert second.poll() is None  # still waiting: the first holds the lock
        first.send_signal(signal.SIGKILL)  # dies without a word: the kernel frees the lock
        out, err = second.communicate(timeout=10)
        assert out.strip() == "held" and second.returncode == 0
        assert "another test holder still runs" in err
        assert lock.read_text().strip() == str(second.pid)
    finally:
        first.kill()
        if second is not None:
            second.kill()
