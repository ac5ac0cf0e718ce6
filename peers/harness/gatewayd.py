"""fedimint's own gateway, gatewayd 0.13.0, in LND mode beside a real federation: what the
side-by-side benchmark runs next to ours.

    gw = Gatewayd.start(folder, node, bitcoind)   # `gatewayd lnd` on `node`, ready (Running)
    fed_id = gw.connect_fed(federation)           # joined (retried, as devimint does)
    federation.add_gateway(gw.url)                # every guardian lists it (LNv2)
    gw.receive_ecash(notes) / gw.pegin(fed_id, bitcoind, sat)
    gw.ecash_msat(fed_id); gw.info(); gw.cli("get-balances")
    gw.stop()

It runs as devimint runs it (devimint-0.13.0 gatewayd.rs, vars.rs): a seed made at first start
(`FM_GATEWAY_SKIP_SETUP`), no wait for lnd's chain sync, test timings (`FM_IN_DEVIMINT`),
regtest, an admin password of its own (bcrypt hash), bitcoind as chain source; plus the
invoice rate limit raised for load (gatewayd's default 50 burst, 5 per second, answers a burst
of receives with 429). It needs an lnd node of its own: lnd serves one HTLC interceptor per node
and gatewayd always opens one. Nothing here needs gatewayd until `start` (`make bench-peers`
builds it; `make test` does not).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

from ..cache import gatewayd_bin
from .bitcoind import Bitcoind
from .fedimintd import Federation
from .lnd import Lnd
from .procs import PeerFailed, Proc, free_ports

# fees a new federation gets, "<base msat>,<ppm>": none, as devimint sets routing fees
# (FM_DEFAULT_ROUTING_FEES=0,0); the transaction fee is ours to state, none either, so that both
# gateways of the benchmark charge the same (nothing) for the same payment
ROUTING_FEES = "0,0"
TRANSACTION_FEES = "0,0"
# the public invoice route's token bucket, raised far above any benchmark's rate
INVOICE_RATE_BURST = 100_000
INVOICE_RATE_PER_SECOND = 100_000
BCRYPT_COST = 4  # gatewayd checks the hash on every admin call: the cheapest cost bcrypt allows


class GatewaydError(PeerFailed):
    """gateway-cli answered with an error (its exit code was not 0)."""


class Gatewayd:
    """One gatewayd process on one lnd node; `url` is its public API (what guardians list and
    fedimint-cli users pass as `--gateway`), `password` its admin password."""

    def __init__(
        self,
        folder: Path,
        node: Lnd,
        bitcoind: Bitcoind,
        port: int,
        *,
        routing_fees: str = ROUTING_FEES,
        transaction_fees: str = TRANSACTION_FEES,
    ) -> None:
        import bcrypt  # a dev dependency: only a harness that starts gatewayd needs it

        self.folder, self.node, self.port = folder, node, port
        self.listen = f"127.0.0.1:{port}"
        # what devimint registers (gatewayd.rs:851): every route is also served under /v1/
        self.url = f"http://127.0.0.1:{port}/v1"
        self.password = secrets.token_hex(12)
        hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(BCRYPT_COST)).decode()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FM_")},
            "FM_GATEWAY_DATA_DIR": str(folder / "data"),
            "FM_GATEWAY_LISTEN_ADDR": self.listen,
            "FM_GATEWAY_API_ADDR": self.url,
            "FM_GATEWAY_METRICS_LISTEN_ADDR": f"127.0.0.1:{free_ports(1)[0]}",
            "FM_GATEWAY_BCRYPT_PASSWORD_HASH": hashed,
            "FM_GATEWAY_NETWORK": "regtest",
            "FM_GATEWAY_SKIP_SETUP": "true",
            "FM_GATEWAY_SKIP_WAIT_FOR_SYNC": "1",
            "FM_IN_DEVIMINT": "1",
            "FM_DEFAULT_ROUTING_FEES": routing_fees,
            "FM_DEFAULT_TRANSACTION_FEES": transaction_fees,
            "FM_GATEWAY_INVOICE_RATE_LIMIT_BURST": str(INVOICE_RATE_BURST),
            "FM_GATEWAY_INVOICE_RATE_LIMIT_PER_SECOND": str(INVOICE_RATE_PER_SECOND),
            "FM_BITCOIND_URL": bitcoind.url,
            "FM_BITCOIND_USERNAME": bitcoind.user,
            "FM_BITCOIND_PASSWORD": bitcoind.password,
            "FM_LND_RPC_ADDR": f"https://{node.rpc_host}",
            "FM_LND_TLS_CERT": str(node.tls_cert),
            "FM_LND_MACAROON": str(node.macaroon),
            "RUST_LOG": os.environ.get("FMGW_GATEWAYD_LOG", "info"),
        }
        self.proc: Proc | None = None

    @classmethod
    def start(cls, folder: Path, node: Lnd, bitcoind: Bitcoind, **fees: str) -> Gatewayd:
        """`gatewayd lnd` in `folder` on `node`, once it says it is Running; stopped again if
        it does not get there."""
        folder.mkdir(parents=True, exist_ok=True)
        gw = cls(folder, node, bitcoind, free_ports(1)[0], **fees)
        gw.restart()
        return gw

    def restart(self, timeout: float = 120.0) -> None:
        """Start it (again, after `stop`: same data dir, port and seed)."""
        self.proc = Proc(
            "gatewayd",
            [str(gatewayd_bin("gatewayd")), "lnd"],
            self.env,
            self.folder / "gatewayd.log",
        )
        try:
            self.wait_running(timeout)
        except BaseException:
            self.stop()
            raise

    def _proc(self) -> Proc:
        if self.proc is None:
            raise PeerFailed("gatewayd was never started")
        return self.proc

    def cli(self, *args: str, timeout: float = 120.0) -> Any:
        """gateway-cli against it, JSON out; GatewaydError if it fails."""
        argv = [
            str(gatewayd_bin("gateway-cli")),
            "--address",
            f"http://{self.listen}",
            "--rpcpassword",
            self.password,
            *args,
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise GatewaydError(f"gateway-cli {args[0]}: {(done.stdout + done.stderr).strip()}")
        out = done.stdout.strip()
        return json.loads(out) if out else None

    def info(self) -> dict:
        return dict(self.cli("info"))

    def wait_running(self, timeout: float = 120.0) -> dict:
        """Until `info` says Running (it has a seed, reached lnd and holds its interceptor)."""
        return self._proc().wait_for(
            lambda: (i := self.info())["gateway_state"] == "Running" and i,
            timeout,
            "state Running",
        )

    def connect_fed(self, fed: Federation, timeout: float = 120.0) -> str:
        """Join `fed` (retried until it succeeds, as devimint does: the gateway may just have
        become Running); its federation id."""
        last: list[str] = ["none"]

        def connect() -> Any:
            try:
                return self.cli("connect-fed", fed.invite_code)
            except GatewaydError as exc:
                last[0] = str(exc)
                raise

        if fed.federation_id not in self.federation_ids():
            try:
                self._proc().wait_for(connect, timeout, "connect-fed")
            except PeerFailed as exc:
                raise GatewaydError(f"{exc}\nits last answer: {last[0]}") from None
        return fed.federation_id

    def federation_ids(self) -> list[str]:
        return [f["federation_id"] for f in self.info()["federations"]]

    def federation(self, federation_id: str) -> dict:
        """What `info` says of one joined federation (balance, fees, config)."""
        for f in self.info()["federations"]:
            if f["federation_id"] == federation_id:
                return dict(f)
        raise PeerFailed(f"gatewayd has not joined {federation_id}")

    def ecash_msat(self, federation_id: str) -> int:
        """Its e-cash in one federation (`get-balances`)."""
        for b in self.cli("get-balances")["ecash_balances"]:
            if b["federation_id"] == federation_id:
                return int(b["ecash_balance_msats"])
        return 0

    def receive_ecash(self, notes: str) -> int:
        """Reissue e-cash (a fedimint-cli user's `mintv2 send`): the notes' amount, msat
        (gatewayd answers their face value, not what it keeps after the mint's fees)."""
        return int(self.cli("ecash", "receive", "--notes", notes)["amount"])

    def pegin(self, federation_id: str, bitcoind: Bitcoind, sat: int, timeout: float = 300) -> int:
        """A peg-in of `sat` into its e-cash in one federation, as devimint's `pegin_gateways`:
        its deposit address, the coins sent, blocks mined until it has claimed them. The msat
        credited."""
        before = self.ecash_msat(federation_id)
        address = self.cli("ecash", "pegin", "--federation-id", federation_id)["address"]
        bitcoind.send(address, sat)
        bitcoind.mine(21)  # walletv2 records an output once the tip is 7 blocks past it
        deadline = time.monotonic() + timeout
        while (now := self.ecash_msat(federation_id)) <= before:
            if not self._proc().alive() or time.monotonic() > deadline:
                raise self._proc().failed(f"no peg-in of {sat} sat claimed")
            bitcoind.mine(1)
            time.sleep(1)
        return now - before

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (it leaves its task groups and exits), SIGKILL after `timeout` s."""
        if self.proc is not None:
            self.proc.stop(timeout)
