"""The modules of this folder share one chain and its federations (1 and 4 guardians), set up
once for the folder (package scope) instead of once per module: each is small and uses the
federations as a client would, and a 4-guardian federation costs ~10 CPU-s and ~10 s to set up.
tests/scheduling.py runs the folder on one worker, its modules one after another.

The 4-guardian federation idles at a third of a core, so it lives no longer than its tests: the
folder's tests that use it run first (`pytest_collection_modifyitems` below), and it stops after
the last of them (`pytest_runtest_teardown`), not at the folder's end. The 1-guardian one idles at
a thirtieth of a core and stops with the chain.

A module here leaves the federations as it found them: every guardian it stops is started again
(in `finally`; the next test of the federation waits until it answers), and it makes its own
wallets and users."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation, start_federation

from ..conftest import fresh_chain, running_federation

FOLDER = Path(__file__).parent
FEDERATION4 = "federation4"
_RUNNING4 = pytest.StashKey[Federation]()


def _in_folder(item: pytest.Item) -> bool:
    return FOLDER in item.path.parents


def _uses_federation4(item: pytest.Item) -> bool:
    """Asked for by name or through a fixture (`fixturenames` is the closure), or as the
    parameter of a test that calls `request.getfixturevalue(which)`."""
    callspec = getattr(item, "callspec", None)
    params = callspec.params.values() if callspec is not None else ()
    return FEDERATION4 in getattr(item, "fixturenames", ()) or FEDERATION4 in params


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The folder's tests that use the 4-guardian federation first, each in its place otherwise
    (a stable sort within the folder's own slots: the folder stays where the scheduler put it)."""
    slots = [i for i, item in enumerate(items) if _in_folder(item)]
    ordered = sorted((items[i] for i in slots), key=lambda item: not _uses_federation4(item))
    for i, item in zip(slots, ordered, strict=True):
        items[i] = item


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield
    fed = item.config.stash.get(_RUNNING4, None)
    if fed is None or not _in_folder(item):
        return
    later = item.session.items[item.session.items.index(item) + 1 :]
    if not any(_in_folder(i) and _uses_federation4(i) for i in later):
        fed.stop()  # the fixture's own teardown, at the folder's end, stops it again: a no-op


@pytest.fixture(autouse=True)
def _federation4_answering(request: pytest.FixtureRequest) -> None:
    """A test of the 4-guardian federation finds every guardian answering: one a test before
    it stopped and started again (in its `finally`) may still be opening its database."""
    fed = request.config.stash.get(_RUNNING4, None)
    if fed is not None and _uses_federation4(request.node):
        for guardian in fed.guardians:
            guardian.wait_answering()


@pytest.fixture(scope="package")
def bitcoind(peer_dir: Path) -> Iterator[Bitcoind]:
    yield from fresh_chain(peer_dir)


@pytest.fixture(scope="package")
def federation1(
    bitcoind: Bitcoind, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    yield from running_federation(bitcoind, tmp_path_factory.mktemp("shared-fed1"), 1)


@pytest.fixture(scope="package")
def federation4(
    bitcoind: Bitcoind, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Federation]:
    fed = start_federation(tmp_path_factory.mktemp("shared-fed4"), bitcoind, guardians=4)
    request.config.stash[_RUNNING4] = fed
    try:
        yield fed
    finally:
        del request.config.stash[_RUNNING4]
        fed.stop()
