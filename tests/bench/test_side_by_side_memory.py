"""bench/side_by_side_memory.py's measure: the RSS and PSS of every process of a session, here a
child started in a session of its own that holds a known amount of memory."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.side_by_side_memory import PeakSampler, session_memory_kib

HOLD = "import time; x = bytearray(64 << 20); x[::4096] = b'x' * (len(x) // 4096); time.sleep(30)"


def test_a_sessions_memory_counts_each_of_its_processes() -> None:
    child = subprocess.Popen([sys.executable, "-c", HOLD], start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while (m := session_memory_kib(child.pid))["rss_kib"] < 64 << 10:
            assert time.monotonic() < deadline, m
            time.sleep(0.1)
        assert m["processes"] == 1 and 64 << 10 <= m["pss_kib"] <= m["rss_kib"], m
        with PeakSampler(child.pid, every_s=0.05) as sampler:
            time.sleep(0.3)
        assert sampler.peak["pss_kib"] >= 64 << 10, sampler.peak
    finally:
        child.kill()
        child.wait()
    assert session_memory_kib(child.pid)["processes"] == 0
