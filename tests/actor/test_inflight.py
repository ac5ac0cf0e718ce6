"""The scan of a federation's session history for contracts in flight after a recovery
(services/actor/inflight.py `find_in_history`), with a fake history of made-up sessions (real
`SessionOutcome`s, consensus items encoded as the modules encode them) and fake finders: the
open session is awaited first, then sessions back from the newest; each finder gets its own
module's outputs; the scan stops once a threshold of guardians voted and the highest of their
earliest votes is more than the window below the block count, and not before; a federation
nobody voted in is read to session 0; progress is reported per session; each finder adopts
once."""

from __future__ import annotations

from dataclasses import dataclass, field

from fmclient.encoding import encode
from fmclient.history import MODULE, TRANSACTION, AcceptedItem, SessionOutcome
from fmclient.tx import ModuleItem, Transaction
from services.actor.inflight import find_in_history

A, B, OTHER = 1, 3, 2  # module instance ids: finder A's, finder B's, nobody's


@dataclass
class Config:
    threshold: int = 3  # 4 guardians


def vote(module: int, peer: int, count: int, variant: int = 0) -> AcceptedItem:
    """A module's consensus item voting `count` (lnv2's BlockCountVote is variant 0, a varint)."""
    body = encode(lambda w: w.framed(variant, encode(lambda w2: w2.varint(count))))
    return AcceptedItem(peer, MODULE, None, ModuleItem(module, body), b"")


def tx(*outputs: tuple[int, bytes]) -> tuple[Transaction, AcceptedItem]:
    t = Transaction([], [ModuleItem(m, b) for m, b in outputs], nonce=bytes(8))
    return t, AcceptedItem(0, TRANSACTION, t, None, b"")


class History:
    """`SessionHistory`: `count()` closed sessions, and each one by index (the open one too)."""

    def __init__(self, sessions: list[list[AcceptedItem]], threshold: int = 3) -> None:
        self.sessions, self.config, self.read = sessions, Config(threshold), []

    async def count(self) -> int:
        return len(self.sessions) - 1  # the last is still open

    async def session(self, index: int) -> SessionOutcome:
        self.read.append(index)
        return SessionOutcome(index, tuple(self.sessions[index]), {})


@dataclass
class Finder:
    module: int
    window: int = 100
    count: int = 1000
    vote_variant: int = 0
    taken: int = 0
    outputs: list[tuple[str, int, bytes]] = field(default_factory=list)
    adopted: int = 0

    inputs: list[tuple[str, int, bytes]] = field(default_factory=list)

    def output(self, txid: str, out_idx: int, body: bytes) -> None:
        self.outputs.append((txid, out_idx, body))

    def input(self, txid: str, in_idx: int, body: bytes) -> None:
        self.inputs.append((txid, in_idx, body))

    async def block_count(self) -> int:
        return self.count

    async def adopt(self) -> int:
        self.adopted += 1
        return self.taken


def _votes(module: int, count: int, *peers: int) -> list[AcceptedItem]:
    return [vote(module, p, count) for p in peers]


async def test_each_finder_gets_its_modules_outputs_and_adopts_once() -> None:
    t1, item1 = tx((A, b"a0"), (OTHER, b"x"), (B, b"b0"), (A, b"a1"))
    t2, item2 = tx((B, b"b1"))
    history = History([[], [item1], [vote(A, 0, 5)], [item2], []])
    a, b = Finder(A, taken=2), Finder(B, taken=1)
    done: list[tuple[int, int]] = []
    assert await find_in_history(history, [a, b], lambda n, total: done.append((n, total))) == 3
    assert history.read == [4, 3, 2, 1, 0]  # the open session first, then back to the first
    assert a.outputs == [(t1.txid, 0, b"a0"), (t1.txid, 3, b"a1")]
    assert b.outputs == [(t2.txid, 0, b"b1"), (t1.txid, 2, b"b0")]  # newest first
    assert (a.adopted, b.adopted) == (1, 1)
    assert done == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


def _stop_history() -> History:
    """Block count 1000, window 100: a guardian's votes fall as the scan goes back."""
    return History(
        [
            _votes(A, 500, 0, 1, 2, 3),  # 0: never read
            _votes(A, 899, 2),  # 1: 2's earliest falls to 899: max 899 + 100 < 1000, stop
            _votes(A, 899, 0, 1, 3),  # 2: earliest {0,1,3: 899, 2: 900}: max 900, not < 1000
            _votes(A, 905, 0, 1) + _votes(A, 900, 2),  # 3
            _votes(A, 950, 0, 1, 2, 3),  # 4
            [],  # 5: open when the scan began
        ]
    )


async def test_it_stops_when_a_threshold_of_earliest_votes_are_a_window_below_the_count() -> None:
    history = _stop_history()
    finder = Finder(A)
    done: list[tuple[int, int]] = []
    await find_in_history(history, [finder], lambda n, total: done.append((n, total)))
    assert history.read == [5, 4, 3, 2, 1]
    assert done == [(1, 6), (2, 6), (3, 6), (4, 6), (5, 6)]
    assert finder.adopted == 1


async def test_the_widest_window_and_the_highest_count_of_the_finders_rule() -> None:
    # a second finder with a window one block wider: session 1's 899 + 101 is not < 1000
    history = _stop_history()
    await find_in_history(history, [Finder(A), Finder(B, window=101)])
    assert history.read == [5, 4, 3, 2, 1, 0]
    # a second finder whose module sees one block more: 900 + 100 < 1001 stops at session 2
    history = _stop_history()
    await find_in_history(history, [Finder(A), Finder(B, count=1001)])
    assert history.read == [5, 4, 3, 2]


async def test_fewer_than_a_threshold_of_guardians_never_stop_it() -> None:
    # two guardians vote far below the count in every session: 2 of 4 is no threshold
    sessions = [_votes(A, 10 + i, 0, 1) for i in range(6)]
    history = History(sessions)
    await find_in_history(history, [Finder(A)])
    assert history.read == [5, 4, 3, 2, 1, 0]
    # with a threshold of 2 (a made-up federation), the newest session already stops it
    history = History(sessions, threshold=2)
    await find_in_history(history, [Finder(A)])
    assert history.read == [5]


async def test_with_no_votes_it_reads_to_the_first_session() -> None:
    low = [vote(OTHER, p, 1) for p in range(4)]  # another module's votes do not count
    other_variant = [vote(A, p, 1, variant=1) for p in range(4)]  # nor another item of A's
    garbage = [AcceptedItem(p, MODULE, None, ModuleItem(A, b"\x00\xff"), b"") for p in range(4)]
    history = History([low, other_variant, garbage, [], []])
    finder = Finder(A)
    await find_in_history(history, [finder])
    assert history.read == [4, 3, 2, 1, 0] and finder.adopted == 1


async def test_a_finder_with_its_own_vote_variant() -> None:
    # votes as variant 1 (the ln module's BlockCount is not lnv2's variant 0)
    sessions = [[vote(A, p, 10, variant=1) for p in range(4)] for _ in range(4)]
    history = History(sessions)
    await find_in_history(history, [Finder(A, vote_variant=1)])
    assert history.read == [3]


async def test_no_finders_reads_nothing() -> None:
    history = History([[], []])
    assert await find_in_history(history, []) == 0
    assert history.read == []
