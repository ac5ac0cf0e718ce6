"""Test vectors of a real federation's signed session history (tests/fmclient/test_history.py).

    PYTHONPATH=. .venv/bin/python -m peers.session_vectors tests/fmclient/data/session-outcomes.json

(`make vectors` runs it too.) Starts a regtest bitcoind and a real 4-guardian fedimintd 0.13
federation (peers.harness, default v2 modules) in a temp folder, makes a fedimint-cli user
peg in through walletv2 and reissue mintv2 e-cash (transactions), lets a few sessions close
with nothing in them, then saves, as the guardians answered them:
- the client config (its `broadcast_public_keys` are what the signatures verify against);
- a handful of `await_signed_session_outcome` answers (raw `SerdeModuleEncoding` JSON), chosen
  to hold at least one empty session, one with module consensus items only, and every session
  that holds a transaction;
- the txid of each transaction, as the guardians' `await_transaction` confirmed it.
Every process it started is stopped again; a minute or two on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fmclient.history import TRANSACTION, decode_signed_outcome
from fmclient.tx import from_serde

from .cache import fedimint_bin
from .harness.bitcoind import Bitcoind
from .harness.fedimintd import Federation, start_federation

MAX_BYTES = 200_000


def _cli(data_dir: Path, *args: str) -> object:
    """One fedimint-cli 0.13.0 command (JSON out)."""
    out = subprocess.run(
        [str(fedimint_bin("fedimint-cli")), "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "FM_IN_DEVIMINT": "1"},
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"fedimint-cli {args}: {out.stdout} {out.stderr[-1500:]}")
    return json.loads(out.stdout)


def _transactions(fed: Federation, bitcoind: Bitcoind, folder: Path) -> None:
    """A walletv2 peg-in, then a mintv2 send and its reissue."""
    user = folder / "fedimint-cli"
    _cli(user, "join", fed.invite_code)
    pos = str(_cli(user, "dev", "next-event-log-id"))
    address = str(_cli(user, "module", "walletv2", "receive"))
    bitcoind.send(address, 50_000)
    bitcoind.mine(21)  # walletv2 sees an output once the tip is 7 blocks past it
    got = _cli(user, "module", "walletv2", "await-receive", pos)
    if not (isinstance(got, list) and got[0] == "Success"):
        raise RuntimeError(f"peg-in: {got}")
    notes = str(_cli(user, "module", "mintv2", "send", "8000"))
    if _cli(user, "module", "mintv2", "receive", notes) != "Success":
        raise RuntimeError("reissue failed")


def _kind(answer: object, index: int) -> str:
    outcome = decode_signed_outcome(from_serde(answer), index)
    if not outcome.items:
        return "empty"
    if any(i.variant == TRANSACTION for i in outcome.items):
        return "transaction"
    return "module"


def collect(folder: Path) -> dict:
    bitcoind = Bitcoind.start(folder / "bitcoind")
    try:
        fed = start_federation(folder / "federation", bitcoind, guardians=4)
        try:
            _transactions(fed, bitcoind, folder)
            g0 = fed.guardians[0]
            first_quiet = int(g0.call("session_count"))
            # a few sessions with nothing to order (about 10 s each with 4 guardians)
            deadline = time.monotonic() + 300
            while int(g0.call("session_count")) < first_quiet + 3:
                if time.monotonic() > deadline:
                    raise RuntimeError("sessions did not close")
                time.sleep(2)
            count = int(g0.call("session_count"))
            answers = {i: g0.call("await_signed_session_outcome", i) for i in range(count)}
            kinds = {i: _kind(a, i) for i, a in answers.items()}
            chosen = [i for i, k in kinds.items() if k == "transaction"]
            for kind in ("module", "empty"):
                chosen += [i for i, k in kinds.items() if k == kind][:2]
            txids = []
            for i in chosen:
                outcome = decode_signed_outcome(from_serde(answers[i]), i)
                for item in outcome.items:
                    if item.transaction is not None:
                        txid = item.transaction.txid
                        if g0.call("await_transaction", txid, timeout=60) != txid:
                            raise RuntimeError(f"the federation does not know {txid}")
                        txids.append(txid)
            return {
                "source": "a real 4-guardian fedimintd 0.13.0 federation (peers/session_vectors.py)",
                "client_config": fed.client_config,
                "session_count": count,
                "sessions": [
                    {"index": i, "kind": kinds[i], "answer": answers[i]} for i in sorted(chosen)
                ],
                "txids": txids,
            }
        finally:
            fed.stop()
    finally:
        bitcoind.stop()


def main() -> None:
    out = Path(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="fmgw-session-vectors-") as tmp:
        doc = collect(Path(tmp))
    text = json.dumps(doc, indent=1) + "\n"
    if len(text) > MAX_BYTES:
        raise SystemExit(f"{len(text)} bytes: more than {MAX_BYTES}")
    out.write_text(text)
    kinds = [s["kind"] for s in doc["sessions"]]
    print(f"{out}: sessions {[s['index'] for s in doc['sessions']]} {kinds}", file=sys.stderr)


if __name__ == "__main__":
    main()
