"""How `make test` spreads the suite over pytest-xdist workers (`-n N --dist loadscope`, with the
scheduler below in place of xdist's own).

- A test module's tests run on one worker, in order: its module-scoped fixtures (a process tree
  under supervisord, real federations on a fresh bitcoind) are made once, as without xdist.
- Modules that share a costly session fixture are one group (`SHARED_GROUPS`) and run on one
  worker: the real lnd nodes (`lnd_world`, about 40 s and a core to start) start once per run,
  not once per worker. So do the modules of a folder whose package-scoped fixtures they share
  (`SHARED_FOLDERS`: tests/fedimint/shared/, one chain and its federations). (Tables, not
  `xdist_group` marks: the controller, which schedules, collects nothing and sees only node
  ids; and pytest 9.2 no longer lets xdist 3.8 put the group in the node id, so
  `--dist loadgroup` silently spread every test on its own.)
- Groups are queued longest first (`tests/durations.json`, seconds per group as measured), and a
  worker takes its next group only when it is down to its last test, so no long group waits
  behind another while a worker idles (longest-processing-time first).
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
from xdist.scheduler import LoadScopeScheduling

DURATIONS = Path(__file__).with_name("durations.json")
RECORD_ENV = "FMGW_RECORD_DURATIONS"
DEFAULT_S = 2.0  # a module not measured yet: most are unit tests

SHARED_GROUPS = {
    "lnd": (  # the session's real lnd nodes (tests/conftest.py::lnd_world)
        "tests/contract/test_gateway_lightning.py",
        "tests/contract/test_lnd_interceptor.py",
        "tests/contract/test_lnd_interceptor_rules.py",
        "tests/chaos/test_chaos.py",
    ),
    # the operating guide's deployments (minutes) start lnd nodes of their own on another
    # worker: one group of both would be the suite's longest path by far
}
_GROUP_OF_MODULE = {m: g for g, modules in SHARED_GROUPS.items() for m in modules}
# folders whose modules share package-scoped fixtures: each folder is one group
SHARED_FOLDERS = ("tests/fedimint/shared/",)


def group_of(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    for folder in SHARED_FOLDERS:
        if module.startswith(folder):
            return folder
    return _GROUP_OF_MODULE.get(module, module)


def _weights() -> dict[str, float]:
    try:
        return {str(k): float(v) for k, v in json.loads(DURATIONS.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest group first; a group keeps its tests' order (stable sort). Every worker collects
    and sorts alike, as xdist requires."""
    weights, first = _weights(), {}
    for i, item in enumerate(items):
        first.setdefault(group_of(item.nodeid), i)

    def key(item: pytest.Item) -> tuple[float, int]:
        group = group_of(item.nodeid)
        return -weights.get(group, DEFAULT_S), first[group]

    items.sort(key=key)


class GroupScheduling(LoadScopeScheduling):
    """xdist's scope scheduling with our groups as scopes, queued in collection order (longest
    first), and a worker given its next group only when down to its last test (xdist holds a
    worker's last test until it knows what comes next)."""

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid)

    def _reschedule(self, node) -> None:  # type: ignore[no-untyped-def]
        if node.shutting_down:
            return
        if not self.workqueue:
            node.shutdown()
            return
        if self._pending_of(self.assigned_work[node]) > 1:
            return
        self._assign_work_unit(node)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):  # type: ignore[no-untyped-def]
    if config.getvalue("dist") != "loadscope":
        return None
    config.option.loadscopereorder = False  # our order, not xdist's (by number of tests)
    return GroupScheduling(config, log)


class DurationRecorder:
    """Sums each group's setup, call and teardown times (in the controller under xdist, which
    sees every worker's reports) and writes them to `tests/durations.json` at the end."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[group_of(report.nodeid)] += report.duration

    def pytest_sessionfinish(self) -> None:
        if self.seconds:
            ranked = dict(sorted(self.seconds.items(), key=lambda kv: -kv[1]))
            DURATIONS.write_text(json.dumps({k: round(v, 1) for k, v in ranked.items()}, indent=1))


def register(config: pytest.Config) -> None:
    if os.environ.get(RECORD_ENV) and not os.environ.get("PYTEST_XDIST_WORKER"):
        config.pluginmanager.register(DurationRecorder(), "fmgw-durations")
