"""The chaos run's parts that need no world: the draws, finding a session's processes, the
books' arithmetic."""

from __future__ import annotations

import subprocess
import sys
import time

from .books import Books, _mismatch
from .driver import WEIGHTS, Op, draw, processes
from .world import USER_FED


def test_a_payment_is_drawn_from_the_seed_and_its_number_alone() -> None:
    assert [draw(7, n) for n in range(50)] == [draw(7, n) for n in range(50)]
    assert [draw(7, n) for n in range(50)] != [draw(8, n) for n in range(50)]
    drawn = [draw(7, n) for n in range(2000)]
    assert {k for k, _, _ in drawn} == set(WEIGHTS) and {u for _, _, u in drawn} == set(USER_FED)
    for kind, msat, _ in drawn:
        assert msat > 0
        if kind in ("ln_send", "ln_receive", "swap", "peg_in", "withdraw"):
            assert msat % 1000 == 0  # whole sats: lnd and bitcoind count in sat


def test_the_killer_finds_a_sessions_processes_by_their_command_line() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)  # chaos-mark"],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not processes(child.pid, "chaos-mark"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert processes(child.pid, "chaos-mark") == [child.pid]
        assert processes(child.pid, "no-such-mark") == []
    finally:
        child.kill()
        child.wait()


def test_the_books_sum_every_holder_and_name_what_moved() -> None:
    before = Books({"alice": 10, "bob": 5}, {"a": 7}, {"four": 3}, {"four": -10}, 0)
    after = Books({"alice": 4, "bob": 11}, {"a": 6}, {"four": 3}, {"four": -9}, 0)
    assert before.total_msat == after.total_msat == 15
    assert after.diff(before) == {
        "federation.four": 1,
        "lightning.alice": -6,
        "lightning.bob": 6,
        "users.a": -1,
    }


def test_lnd_and_the_payments_must_agree() -> None:
    ops = [
        Op(0, "ln_send", "a", "four", 1000, "settled", invoice_hash="h0"),
        Op(1, "ln_send", "a", "four", 1000, "failed", invoice_hash="h1"),
    ]
    assert _mismatch(ops, "ln_send", {"h0", "other-test"}, "bob settled") == []
    assert _mismatch(ops, "ln_send", {"h0", "h1"}, "bob settled")  # a failed one was paid
    assert _mismatch(ops, "ln_send", set(), "bob settled")  # a settled one was not
