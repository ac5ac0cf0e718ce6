"""Every flow's state table against the diagram its enum's docstring draws (gwcore/states.py),
found in every product module that builds a StateMachine; and the table refusing moves."""

from __future__ import annotations

import importlib
from enum import StrEnum
from pathlib import Path

import pytest

from gwcore.states import IllegalTransition, StateMachine, diagram_edges

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("fmclient", "gwcore", "services", "devworld")


def _machines() -> list[tuple[str, StateMachine]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "StateMachine(" not in path.read_text() or path.name == "states.py":
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            module = importlib.import_module(name)
            found += [
                (f"{name}.{attr}", value)
                for attr, value in vars(module).items()
                if isinstance(value, StateMachine) and value.states.__module__ == name
            ]
    return found


MACHINES = _machines()


def test_machines_are_found() -> None:
    assert len(MACHINES) >= 1


@pytest.mark.parametrize(("name", "machine"), MACHINES, ids=[n for n, _ in MACHINES])
def test_the_diagram_is_the_table(name: str, machine: StateMachine) -> None:
    doc = machine.states.__doc__ or ""
    names = {s.value for s in machine.states}
    drawn = diagram_edges(doc, names)
    assert drawn - machine.edges() == set(), f"{name}: drawn but not allowed"
    assert machine.edges() - drawn == set(), f"{name}: allowed but not drawn"


class Light(StrEnum):
    """A toy:

    red --go--> green (lit) --slow--> amber --stop--> red
                \\--broken--> dark
    amber --broken--> dark
    """

    RED = "red"
    GREEN = "green"
    AMBER = "amber"
    DARK = "dark"


LIGHT = StateMachine(
    Light,
    {
        Light.RED: {Light.GREEN},
        Light.GREEN: {Light.AMBER, Light.DARK},
        Light.AMBER: {Light.RED, Light.DARK},
    },
)


def test_the_parser_reads_chains_branches_and_asides() -> None:
    assert diagram_edges(Light.__doc__ or "", {s.value for s in Light}) == LIGHT.edges()


def test_a_move_the_table_does_not_allow_is_refused() -> None:
    assert LIGHT.check("red", "green") is Light.GREEN
    assert LIGHT.check("red", "red") is Light.RED  # staying is no move
    with pytest.raises(IllegalTransition, match="red -> amber"):
        LIGHT.check("red", "amber")
    with pytest.raises(IllegalTransition):
        LIGHT.check("red", "blue")
    assert LIGHT.final(Light.DARK) and not LIGHT.final(Light.RED)


def test_an_unreadable_diagram_fails() -> None:
    with pytest.raises(ValueError, match="unreadable"):
        diagram_edges("red --go--> purple", {"red", "green"})
