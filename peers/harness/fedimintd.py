"""Real fedimintd federations on loopback, set up from scratch as devimint does it.

`start_federation(folder, bitcoind, guardians=1|4)`: one fedimintd process per guardian, each
with its own data dir and four ports (p2p, API, UI, metrics), iroh off so the config lists
`ws://` URLs, `FM_IN_DEVIMINT=1` for test timings. Setup over each guardian's JSON-RPC API
(HTTP POST on the API port): `set_local_params` (the leader `g0` names the federation and its
size), every guardian's setup code added to every other, `start_dkg` on all; then the
`invite-code` file in every data dir, and "ready" when every guardian's lnv2 module has seen the
chain (its block count is above 0). Peer ids follow the sorted guardian names: `g0` is peer 0.

A guardian that dies or does not answer in time is reported with the end of its log; `stop()`
ends every process the harness started. See ../shared/reference/fedimint-0.13-testing.md §1-2.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..cache import fedimint_bin
from .bitcoind import Bitcoind
from .procs import PeerFailed, Proc, Process, free_ports

DEFAULT_MODULES = ("lnv2", "meta", "mintv2", "walletv2")
# what fedimintd 0.11 and older set up by default: every federation that has users today
V1_MODULES = ("ln", "lnv2", "meta", "mint", "wallet")


class GuardianApiError(RuntimeError):
    def __init__(self, method: str, error: dict) -> None:
        super().__init__(f"{method}: {error.get('code')} {error.get('message')}")
        self.code, self.message = error.get("code"), error.get("message")


@dataclass
class Guardian:
    name: str
    peer_id: int
    password: str
    ports: dict[str, int]
    data_dir: Path
    env: dict[str, str]
    proc: Process | None = None
    # one client for every call: a new one costs ~27 ms of CPU (its TLS context), and setups
    # and waits poll; no connection is kept (the guardian may be restarted between calls)
    _http: httpx.Client = field(
        default_factory=lambda: httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)),
        repr=False,
        compare=False,
    )

    @property
    def api_url(self) -> str:
        return f"ws://127.0.0.1:{self.ports['api']}/"

    def call(self, method: str, params: Any = None, auth: bool = False, timeout: float = 30) -> Any:
        """One JSON-RPC call, `[{"auth", "params"}]` framed, over HTTP POST to the API port."""
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": method,
            "params": [{"auth": self.password if auth else None, "params": params}],
        }
        r = self._http.post(f"http://127.0.0.1:{self.ports['api']}/", json=body, timeout=timeout)
        answer = r.json()
        if answer.get("error"):
            raise GuardianApiError(method, answer["error"])
        return answer.get("result")

    def start(self) -> None:
        """Start (or restart, on its data dir: straight into consensus) this guardian."""
        self.proc = Proc(
            f"fedimintd {self.name}",
            [str(fedimint_bin("fedimintd"))],
            self.env,
            self.data_dir.parent / f"{self.name}.log",
        )

    def wait_answering(self, timeout: float = 30.0) -> None:
        """Until a (re)started guardian's API answers (its consensus may still be catching up)."""
        if self.proc is None:
            raise RuntimeError(f"{self.name} was never started")
        self.proc.wait_for(
            lambda: self.call("session_count", timeout=2) is not None, timeout, "its API"
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()


@dataclass
class Federation:
    invite_code: str
    federation_id: str
    guardians: list[Guardian]
    module_ids: dict[str, int]
    client_config: dict = field(repr=False)

    @property
    def api_urls(self) -> list[str]:
        return [g.api_url for g in self.guardians]

    @property
    def passwords(self) -> dict[int, str]:
        return {g.peer_id: g.password for g in self.guardians}

    def block_count(self, guardian: Guardian) -> int:
        """What the guardian's lnv2 module has seen of the chain: tip + 1."""
        return int(guardian.call(f"module_{self.module_ids['lnv2']}_consensus_block_count"))

    def wait_synced(self, bitcoind: Bitcoind, timeout: float = 60.0) -> None:
        """Until every running guardian has seen bitcoind's tip."""
        want = int(bitcoind.rpc("getblockcount")) + 1
        for g in self.guardians:
            if g.proc is not None and g.proc.alive():
                g.proc.wait_for(
                    lambda g=g: self.block_count(g) >= want, timeout, f"block count {want}"
                )

    def describe(self) -> dict:
        return {
            "invite_code": self.invite_code,
            "federation_id": self.federation_id,
            "module_ids": self.module_ids,
            "guardians": [
                {
                    "name": g.name,
                    "peer_id": g.peer_id,
                    "api_url": g.api_url,
                    "password": g.password,
                    "data_dir": str(g.data_dir),
                }
                for g in self.guardians
            ],
        }

    def add_gateway(self, url: str) -> None:
        """Every guardian adds an LNv2 gateway (an admin call each: not in consensus)."""
        module = self.module_ids["lnv2"]
        for g in self.guardians:
            g.call(f"module_{module}_add_gateway", url, auth=True)

    def stop(self) -> None:
        for g in self.guardians:
            g.stop()


def start_federation(
    folder: Path,
    bitcoind: Bitcoind,
    guardians: int = 1,
    name: str = "fmgw-test",
    disable_base_fees: bool = False,
    modules: tuple[str, ...] = DEFAULT_MODULES,
    timeout: float = 120.0,
) -> Federation:
    """A running federation of `guardians` (1, or 4 and more: fedimint's rule), set up from
    nothing. Every process is stopped again if any step fails."""
    if guardians != 1 and guardians < 4:
        raise ValueError("a federation has 1 guardian or at least 4")
    folder.mkdir(parents=True, exist_ok=True)
    members = [_guardian(folder, i, bitcoind) for i in range(guardians)]
    try:
        for g in members:
            g.start()
        return _set_up(members, name, disable_base_fees, modules, bitcoind, timeout)
    except BaseException:
        for g in members:
            g.stop()
        raise


def _guardian(folder: Path, i: int, bitcoind: Bitcoind) -> Guardian:
    return guardian(folder, i, bitcoind, guardian_ports(), secrets.token_hex(12))


def guardian_ports() -> dict[str, int]:
    """Free loopback ports for a guardian: {p2p, api, ui, metrics}."""
    return dict(zip(("p2p", "api", "ui", "metrics"), free_ports(4), strict=True))


def guardian(
    folder: Path, i: int, bitcoind: Bitcoind, ports: dict[str, int], password: str
) -> Guardian:
    """Guardian `g<i>` of the federation in `folder` on `ports` {p2p, api, ui, metrics}: its
    fedimintd environment (not started)."""
    data_dir = folder / f"g{i}" / "data"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FM_")},
        "FM_IN_DEVIMINT": "1",
        "FM_ENABLE_IROH": "false",
        "FM_PASSWORD_API": password,
        "FM_DATA_DIR": str(data_dir),
        "FM_BITCOIN_NETWORK": "regtest",
        "FM_BITCOIND_URL": bitcoind.url,
        "FM_BITCOIND_USERNAME": bitcoind.user,
        "FM_BITCOIND_PASSWORD": bitcoind.password,
        "FM_BIND_P2P": f"127.0.0.1:{ports['p2p']}",
        "FM_BIND_API": f"127.0.0.1:{ports['api']}",
        "FM_BIND_UI": f"127.0.0.1:{ports['ui']}",
        "FM_BIND_METRICS": f"127.0.0.1:{ports['metrics']}",
        "FM_P2P_URL": f"fedimint://127.0.0.1:{ports['p2p']}",
        "FM_API_URL": f"ws://127.0.0.1:{ports['api']}",
        "FM_ROCKSDB_WRITE_BUFFER_SIZE": "1048576",
        "RUST_LOG": os.environ.get("FMGW_FEDIMINTD_LOG", "info"),
    }
    return Guardian(f"g{i}", i, password, ports, data_dir, env)


def _set_up(
    members: list[Guardian],
    name: str,
    disable_base_fees: bool,
    modules: tuple[str, ...],
    bitcoind: Bitcoind,
    timeout: float,
) -> Federation:
    for g in members:  # a poll: one unanswered call (a port another listener holds) is retried
        _proc(g).wait_for(
            lambda g=g: g.call("setup_status", timeout=5) == "AwaitingLocalParams",
            timeout,
            "setup API",
        )
    set_up(members, name, disable_base_fees, modules, timeout)
    federation = federation_of(members, timeout)
    started = time.monotonic()
    federation.wait_synced(bitcoind, timeout)
    if time.monotonic() - started > timeout:
        raise PeerFailed("the federation did not see the chain in time")
    return federation


def _proc(g: Guardian) -> Process:
    assert g.proc is not None, f"{g.name} was never started"
    return g.proc


def set_up(
    members: list[Guardian],
    name: str,
    disable_base_fees: bool,
    modules: tuple[str, ...],
    timeout: float,
) -> None:
    """The setup ceremony of guardians that await their local parameters: names, setup codes
    exchanged, DKG started on all; returns once every guardian wrote its invite code."""
    codes = []
    for g in members:
        params: dict[str, Any] = {"name": g.name}
        if g.peer_id == 0:  # the leader names the federation, its size, fees and modules
            params.update(
                federation_name=name,
                federation_size=len(members),
                disable_base_fees=disable_base_fees,
                enabled_modules=list(modules),
            )
        codes.append(g.call("set_local_params", params, auth=True))
    for g in members:
        for other, code in zip(members, codes, strict=True):
            if other is not g:
                g.call("add_peer_setup_code", code, auth=True)
    for g in members:
        g.call("start_dkg", auth=True)
    for g in members:
        _proc(g).wait_for(
            lambda g=g: (g.data_dir / "invite-code").is_file() or None, timeout, "its invite code"
        )


def federation_of(members: list[Guardian], timeout: float = 120.0) -> Federation:
    """The federation that set-up guardians run (their invite code, config, id), once its
    consensus API answers."""
    invite_file = members[0].data_dir / "invite-code"
    # fedimintd writes client.json beside the invite, not atomically: read it once it is whole
    config = _proc(members[0]).wait_for(
        lambda: json.loads((members[0].data_dir / "client.json").read_text()),
        timeout,
        "client.json",
    )
    invite = invite_file.read_text().strip()
    module_ids = {m["kind"]: int(i) for i, m in config["modules"].items()}
    fed_id = _proc(members[0]).wait_for(
        lambda: members[0].call("federation_id"), timeout, "the consensus API"
    )
    return Federation(invite, fed_id, members, module_ids, config)
