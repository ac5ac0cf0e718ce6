"""How `make test` spreads the suite over pytest-xdist workers (`-n N --dist loadgroup`).

- A test module's tests run on one worker, in order: its module-scoped fixtures (a process tree
  under supervisord, real federations on a fresh bitcoind) are made once, as without xdist.
- Modules that share a costly session fixture name it with `pytestmark =
  pytest.mark.xdist_group("<name>")` and run together on one worker: the real lnd nodes
  (`lnd_world`, about 40 s and a core to start) are started once per run, not once per worker.
- Groups are queued longest first (from `tests/durations.json`, seconds per group as measured),
  so no long group starts last and holds the run up alone (longest-processing-time first).
  `FMGW_RECORD_DURATIONS=1 make test` rewrites that file from the run's own figures.

Each worker owns its peers: session fixtures are per worker process, and every port comes from
`peers.harness.procs.free_ports`, which hands each worker its own block.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

DURATIONS = Path(__file__).with_name("durations.json")
RECORD_ENV = "FMGW_RECORD_DURATIONS"
DEFAULT_S = 2.0  # a module not measured yet: most are unit tests


def group_of(item: pytest.Item) -> str:
    mark = item.get_closest_marker("xdist_group")
    if mark is not None:
        return str(mark.args[0] if mark.args else mark.kwargs.get("name"))
    return item.nodeid.split("::", 1)[0]


def _weights() -> dict[str, float]:
    try:
        return {str(k): float(v) for k, v in json.loads(DURATIONS.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    weights = _weights()
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group_of(item)))
    first = {}
    for i, item in enumerate(items):
        first.setdefault(group_of(item), i)
    # stable: a group keeps its tests' order; groups by weight, then by where they came first
    items.sort(key=lambda it: (-weights.get(group_of(it), DEFAULT_S), first[group_of(it)]))


class DurationRecorder:
    """Sums each group's setup, call and teardown times (in the controller under xdist, which
    sees every worker's reports) and writes them to `tests/durations.json` at the end."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.groups: dict[str, str] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.groups.update({it.nodeid: group_of(it) for it in items})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # under xdist the controller collects nothing, but loadgroup appends "@group" to node ids
        nodeid, _, group = report.nodeid.partition("@")
        group = group or self.groups.get(nodeid) or nodeid.split("::", 1)[0]
        self.seconds[group] += report.duration

    def pytest_sessionfinish(self) -> None:
        if self.seconds:
            ranked = dict(sorted(self.seconds.items(), key=lambda kv: -kv[1]))
            DURATIONS.write_text(json.dumps({k: round(v, 1) for k, v in ranked.items()}, indent=1))


def register(config: pytest.Config) -> None:
    if os.environ.get(RECORD_ENV) and not os.environ.get("PYTEST_XDIST_WORKER"):
        config.pluginmanager.register(DurationRecorder(), "fmgw-durations")
