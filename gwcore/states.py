"""Explicit state machines for the gateway's flows: an enum of states and one table of the moves
allowed between them. Every store that keeps a flow's state asks `check(old, new)` before it
writes the new state, so a move the table does not allow is refused (IllegalTransition), not
written.

Each state enum's docstring draws its diagram, and a test (tests/gwcore/test_state_diagrams.py)
checks that the drawing and the table say the same thing. The drawing's syntax:

    a --label--> b --other label--> c        arrows, chained; "(…)" between them is ignored
                 \\--label--> d               a branch: from the nearest state name above whose
                                             first character is at or left of the backslash

A state with no way out of it is final.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Generic, TypeVar

S = TypeVar("S", bound=StrEnum)
_ARROW = re.compile(r"--[^>\n]*?-->")
_NAME = re.compile(r"[a-z][a-z0-9_]*")


class IllegalTransition(RuntimeError):
    """A move the flow's table does not allow: a bug, never written to the store."""


class StateMachine(Generic[S]):
    def __init__(self, states: type[S], moves: Mapping[S, Iterable[S]]) -> None:
        self.states = states
        self.moves: dict[S, frozenset[S]] = {s: frozenset(moves.get(s, ())) for s in states}
        for source, targets in moves.items():
            if source not in self.moves or not all(t in self.moves for t in targets):
                raise ValueError(f"{states.__name__}: a move names a state not in the enum")

    def check(self, old: str | S, new: str | S) -> S:
        """The new state, if the table allows moving to it from `old` (staying is allowed)."""
        try:
            before, after = self.states(old), self.states(new)
        except ValueError:
            raise IllegalTransition(f"{self.states.__name__}: {old!r} -> {new!r}") from None
        if before != after and after not in self.moves[before]:
            raise IllegalTransition(
                f"{self.states.__name__}: {before.value} -> {after.value} is not allowed"
            )
        return after

    def final(self, state: str | S) -> bool:
        return not self.moves[self.states(state)]

    def finals(self) -> tuple[str, ...]:
        """The values of the states with no way out."""
        return tuple(s.value for s in self.states if not self.moves[s])

    def edges(self) -> set[tuple[str, str]]:
        return {(a.value, b.value) for a, targets in self.moves.items() for b in targets}

    def in_states(self, *states: S) -> tuple[str, ...]:
        """The values, for SQL `IN (…)` lists."""
        return tuple(s.value for s in states)


def diagram_edges(doc: str, names: set[str]) -> set[tuple[str, str]]:
    """The arrows a docstring draws between the state `names` (see the module's docstring)."""
    edges: set[tuple[str, str]] = set()
    placed: list[list[tuple[int, str]]] = []  # per line: (column, state name)
    for line in doc.splitlines():
        here: list[tuple[int, str]] = []
        source: str | None = None
        pos = 0
        for arrow in _ARROW.finditer(line):
            before = re.sub(r"\([^)]*\)", lambda m: " " * len(m.group()), line[pos : arrow.start()])
            words = [(pos + m.start(), m.group()) for m in _NAME.finditer(before)]
            words = [w for w in words if w[1] in names]
            here += words
            if words:
                source = words[-1][1]
            elif line[: arrow.start()].rstrip().endswith("\\") and source is None:
                col = line.rindex("\\", 0, arrow.start())
                source = _above(placed, col)
            after = _NAME.match(line[arrow.end() :].lstrip())
            target = after.group() if after else None
            if source is None or target not in names:
                raise ValueError(f"unreadable arrow in diagram line: {line.strip()!r}")
            edges.add((source, target))
            start = arrow.end() + (len(line[arrow.end() :]) - len(line[arrow.end() :].lstrip()))
            here.append((start, target))
            source, pos = target, start + len(target)
        if here:
            placed.append(here)
    return edges


def _above(placed: list[list[tuple[int, str]]], col: int) -> str | None:
    for line in reversed(placed):
        left = [name for c, name in line if c <= col]
        if left:
            return left[-1]
    return None
