"""The product imports nothing from the development world: every module of `services/`,
`fmclient/`, `bus/` and `gwcore/` is parsed, and each of its imports (at the top or inside a
function, absolute or relative, or a module named to `importlib.import_module`) must stay out of
`devworld` (the simulated world), `peers` (the real peers' harness), `tests` and `bench`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRODUCT = ("services", "fmclient", "bus", "gwcore")
OUTSIDE = ("devworld", "peers", "tests", "bench")


def _imports(path: Path, base: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file (its package: its folder under `base`),
    relative ones resolved."""
    package = path.relative_to(base).with_suffix("").parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            found.append((node.lineno, ".".join([*base, *([node.module] if node.module else [])])))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.append((node.lineno, str(node.args[0].value)))
    return found


def _violations(root: Path, base: Path = REPO) -> list[str]:
    return [
        f"{path.relative_to(base)}:{line}: imports {module}"
        for path in sorted(root.rglob("*.py"))
        for line, module in _imports(path, base)
        if module.split(".")[0] in OUTSIDE
    ]


@pytest.mark.parametrize("package", PRODUCT)
def test_the_product_imports_nothing_from_the_development_world(package: str) -> None:
    assert (REPO / package).is_dir()
    assert _violations(REPO / package) == []


def test_the_rule_sees_every_kind_of_import(tmp_path: Path) -> None:
    """A module with each kind of forbidden import is caught on each line (the rule can fail)."""
    root = tmp_path / "services" / "probe"
    root.mkdir(parents=True)
    (root / "probe.py").write_text(
        "import devworld.regtest\n"
        "from peers.harness import procs\n"
        "def f():\n"
        "    from tests import simworld\n"
        "    import importlib\n"
        "    importlib.import_module('bench._devnet')\n"
        "from ..actor import app\n"
        "from . import probe\n"
    )
    found = _violations(tmp_path / "services", tmp_path)
    assert [v.split(": imports ")[1] for v in found] == [
        "devworld.regtest",
        "peers.harness",
        "tests",
        "bench._devnet",
    ], found
