"""Fixtures and helpers for the whole gateway (the real process tree under supervisord) serving a
real fedimintd federation with the v1 modules (ln, lnv2, meta, mint, wallet), for the end-to-end
tests and the crash tests built on them.

A test module uses them by importing them (pytest finds fixtures in the module's namespace):

    from tests.e2e.conftest import tree  # the tree fixture
    from .lnv1_world import tree_env, v1, v1_user  # tree_env: the chain source of the tree

- `tree_env(base, request)`: the router's chain source (wallet v1 reads deposits from the
  chain) is the module's real bitcoind, its password in a file under the tree's folder.
- `v1` (module-scoped): `V1World` — the gateway connected to `federation1_v1` by invite, with
  e-cash from a peg-in through wallet v1 (`PEG_IN_SAT`), LNv1-registered (a fedimint-cli user
  lists us), and the regtest world's Lightning network (alice -> our node -> bob).
- `v1_user` (module-scoped): a fedimint-cli 0.13.0 user of that federation holding
  `USER_MSAT` of the gateway's v1 notes (`/spend_ecash`, reissued by `module mint reissue`:
  fedimint-cli's v1 wallet reads the chain only through Esplora, so it cannot peg in here).
- `open_world(tree, federation, bitcoind)` and `funded_user(world, dir)`: the same for another
  federation (`federation4_v1`).
- helpers: `peg_in`, `fund_user`, `lightning_msat`, `balance_of`, `v1_gateway_id`; exact
  amounts by the mint's rule: a user's (`held_notes`, `user_credit`), ours (`credit_for`,
  `paid_for`, with the notes an operation spent
  (`spent_by`) and what splits cost (`splits_paid`), read from the actor's wallet file).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from fmclient.config import parse_client_config
from fmclient.mintv1 import MintConfig, represent_amount
from gwcore.constants import ENV_ROUTER_SEED_WORDS_FILE
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation
from tests.e2e.conftest import World, ensure_lightning

from .conftest import User
from .test_gateway_fedimint import Gateway, _until

PEG_IN_SAT = 2_000_000  # the gateway's first e-cash in the v1 federation
PEG_IN_FEE_MSAT = 1_000_000  # the wallet module's default fee_consensus.peg_in_abs
# the seed words the module's gateway is given (BIP-39's "legal winner" vector)
GIVEN_WORDS = "legal winner thank year wave sausage worth useful legal winner thank yellow"
USER_MSAT = 200_000_000  # what the module's user gets of our notes


def chain_env(base: Path, bitcoind: Bitcoind) -> dict[str, str]:
    """The router's settings naming `bitcoind` as the operator's chain source."""
    secret = base / "bitcoind-password"
    secret.write_text(bitcoind.password)
    secret.chmod(0o600)
    return {
        "GATEWAY_ROUTER_BITCOIND_URL": bitcoind.url,
        "GATEWAY_ROUTER_BITCOIND_USERNAME": bitcoind.user,
        "GATEWAY_ROUTER_BITCOIND_PASSWORD_FILE": str(secret),
    }


def tree_env(base: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """The tree fixture's hook (tests/e2e/conftest.py): the module's bitcoind as chain source,
    and GIVEN_WORDS (as an operator leaving gatewayd gives its words) as the gateway's seed."""
    words = base / "seed-words"
    words.write_text(GIVEN_WORDS + "\n")
    words.chmod(0o600)
    return {
        **chain_env(base, request.getfixturevalue("bitcoind")),
        ENV_ROUTER_SEED_WORDS_FILE: str(words),
    }


def lightning_msat(gw: Gateway) -> int:
    """Our node's Lightning balance."""
    return int(gw.post("/lightning", {})["balances"]["lightning_balance_msat"])


def balance_of(user: User) -> int:
    """A fedimint-cli user's e-cash once its pending operations are done."""
    user("dev", "wait-complete")
    return int(user("info")["total_amount_msat"])  # type: ignore[index]


def held_notes(user: User) -> dict[int, int]:
    """A fedimint-cli user's notes, tier (msat) -> count, once its operations are done."""
    user("dev", "wait-complete")
    counts = user("info")["denominations_msat"]  # type: ignore[index]
    return {int(tier): int(n) for tier, n in counts.items()}


def user_credit(fed: Federation, available_msat: int, held: dict[int, int]) -> int:
    """What fedimint-cli 0.13 issues a user of `fed` holding `held` for `available_msat` (a
    claimed contract less its input fee): its change layout (`mintv1.represent_amount`)."""
    config = parse_client_config(fed.client_config)
    mint = MintConfig.from_bytes(config.modules[config.module_id("mint")].body)
    return sum(t * n for t, n in represent_amount(available_msat, held, mint, 2).items())


def peg_in(gw: Gateway, federation_id: str, bitcoind: Bitcoind, sat: int) -> dict:
    """A peg-in through the federation's wallet module: a fresh address from `/address`,
    `sat` sent by bitcoind, blocks mined until `/deposit` answers the claimed deposit."""
    dep = gw.post("/address", {"federation_id": federation_id})
    txid = bitcoind.send(dep["address"], sat)
    bitcoind.mine(1)

    last: list[str] = []

    def claimed() -> dict | None:
        r = gw.http.post("/deposit", json={"federation_id": federation_id, "txid": txid})
        if r.status_code == 409:  # the federation has not synced the block yet
            last[:] = [r.text]
            bitcoind.mine(1)
            return None
        assert r.status_code == 200, r.text
        return dict(r.json())

    try:
        got = _until("the deposit claimed", 300, claimed)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the gateway said {last}") from None
    return {**got, "address": dep["address"]}


def credit_for(fed: Federation, available_msat: int) -> int:
    """What the gateway's wallet credits of `available_msat` (a claimed contract, a deposit
    less its fee): the most that new notes of at least 512 msat hold once each new note pays
    the mint's fee; the rest goes to the federation."""
    config = parse_client_config(fed.client_config)
    mint = MintConfig.from_bytes(config.modules[config.module_id("mint")].body)
    credit = available_msat // 512 * 512
    while credit > 0:
        fees = sum(mint.fee(d) for d in range(9, 64) if credit >> d & 1)
        if credit + fees <= available_msat:
            return credit
        credit -= 512
    return 0


def spent_by(tree: dict, federation_id: str, op_id: str) -> list[int]:
    """The values of the notes the gateway's e-cash operation `op_id` spent, read from the
    actor's wallet file (read-only): what an exact balance check needs besides the rule."""
    path = tree["data_dir"] / "actors" / federation_id[:16] / "fedimint.sqlite"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT denomination FROM notes WHERE op_id = ?", (op_id,)).fetchall()
    finally:
        db.close()
    return [1 << d for (d,) in rows]


def splits_paid(tree: dict, federation_id: str) -> int:
    """What the gateway's splits (notes reissued into the denominations a spend needs) have
    paid the federation so far: their notes less the notes they issued."""
    path = tree["data_dir"] / "actors" / federation_id[:16] / "fedimint.sqlite"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        paid = 0
        for op_id, outputs in db.execute(
            "SELECT id, outputs FROM operations WHERE kind = 'split'"
        ).fetchall():
            spent = db.execute("SELECT denomination FROM notes WHERE op_id = ?", (op_id,))
            issued = [1 << o["d"] for o in json.loads(outputs)]
            paid += sum(1 << d for (d,) in spent.fetchall()) - sum(issued)
    finally:
        db.close()
    return paid


def paid_for(fed: Federation, spent: list[int], out_msat: int) -> int:
    """What the gateway's balance loses to an operation that spent the notes `spent` (each
    paying the mint's fee) for outputs worth `out_msat` (with their own fees): the notes less
    the change issued for the rest (`credit_for`)."""
    config = parse_client_config(fed.client_config)
    mint = MintConfig.from_bytes(config.modules[config.module_id("mint")].body)
    rest = sum(n - mint.fee_msat(n) for n in spent) - out_msat
    return sum(spent) - credit_for(fed, rest)


def fund_user(gw: Gateway, federation_id: str, user: User, amount_msat: int) -> dict:
    """`amount_msat` of our v1 notes reissued by `user`: the `/spend_ecash` answer."""
    spent = gw.post("/spend_ecash", {"federation_id": federation_id, "amount_msat": amount_msat})
    assert user("module", "mint", "reissue", spent["notes"]) == spent["amount_msat"]
    return spent


def v1_gateway_id(gw: Gateway, federation_id: str) -> str:
    """Our LNv1 gateway id in the federation (the key fedimint-cli's --gateway-id takes)."""
    info = next(
        f for f in gw.post("/info", {})["federations"] if f["federation_id"] == federation_id
    )
    return str(info["registration"]["gateway_id"])


@dataclass
class V1World:
    gw: Gateway
    fed: Federation
    federation_id: str
    world: World
    bitcoind: Bitcoind
    connected: dict  # the /connect-fed answer
    deposit: dict  # the first peg-in's /deposit answer (with its address)
    balance_before_peg_in: int
    tree: dict


def open_world(tree: dict, fed: Federation, bitcoind: Bitcoind) -> V1World:
    """The gateway of `tree` connected to `fed` by invite, with e-cash from a wallet v1 peg-in
    of `PEG_IN_SAT`, and the regtest world's Lightning network."""
    gw = Gateway(tree)
    connected = gw.post("/connect-fed", {"invite_code": fed.invite_code})
    before = gw.balance(fed.federation_id)
    deposit = peg_in(gw, fed.federation_id, bitcoind, PEG_IN_SAT)
    world = World(tree["regtest"])
    ensure_lightning(world)
    return V1World(gw, fed, fed.federation_id, world, bitcoind, connected, deposit, before, tree)


def funded_user(v1: V1World, data_dir: Path, amount_msat: int = USER_MSAT) -> User:
    """A fedimint-cli user of the world's federation holding `amount_msat` of our notes."""
    user = User(data_dir)
    user("join", v1.fed.invite_code)
    fund_user(v1.gw, v1.federation_id, user, amount_msat)
    return user


@pytest.fixture(scope="module")
def v1(tree: dict, federation1_v1: Federation, bitcoind: Bitcoind) -> V1World:
    return open_world(tree, federation1_v1, bitcoind)


@pytest.fixture(scope="module")
def v1_user(v1: V1World, tmp_path_factory: pytest.TempPathFactory) -> User:
    return funded_user(v1, tmp_path_factory.mktemp("v1-user"))
