"""The short commands of the README's quick start, written into <devnet>/bin by `make run`, and
<devnet>/env, which puts them and the virtualenv's CLIs on PATH (`source .devnet/env`):

    user, user-beta    fedimint-cli of the users of alpha and beta (their data dirs)
    alice, bob         lncli of the payer's and the payee's lnd nodes
    gateway-lncli      lncli of the gateway's own node
    btc                bitcoin-cli on the world's bitcoind (the miner's wallet)
    mine [N]           mine N blocks (1)
    get [KEY ...]      print fields of the JSON on stdin on one line (a JSON string: raw)

Each is a real client with its flags filled in (and umask 077: what it writes stays private),
nothing more.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from gwcore.constants import ENV_DEVNET_DIR
from gwcore.files import write_private
from peers.cache import bitcoind_command, fedimint_bin, lnd_bin

from .peers import Peers

_GET = '''#!{python}
"""get [KEY ...]: print fields of the JSON on stdin on one line, separated by spaces (KEY: an
object's key or a list's index); with no KEY, the JSON itself (a string raw)."""
import json, sys
value = json.load(sys.stdin)
out = []
for key in sys.argv[1:] or [None]:
    v = value if key is None else value[int(key) if isinstance(value, list) else key]
    out.append(v if isinstance(v, str) else json.dumps(v))
print(" ".join(out))
'''


def _script(path: Path, comment: str, argv: list[str], env: str = "") -> None:
    text = (
        f"#!/bin/sh\n# {comment} (the local world of `make run`)\n"
        f'umask 077\n{env}exec {shlex.join(argv)} "$@"\n'
    )
    write_private(path, text)
    path.chmod(0o700)


def write_commands(devnet: Path, peers: Peers, users: dict[str, Path]) -> None:
    bin_dir = devnet / "bin"
    bin_dir.mkdir(mode=0o700, exist_ok=True)
    for name, data_dir in users.items():
        command = "user" if name == "alpha" else f"user-{name}"
        _script(
            bin_dir / command,
            f"fedimint-cli of federation {name}'s user",
            [str(fedimint_bin("fedimint-cli")), "--data-dir", str(data_dir)],
            "FM_IN_DEVIMINT=1 ",
        )
    for name, node in peers.lnd.items():
        command = "gateway-lncli" if name == "gateway" else name
        _script(
            bin_dir / command,
            f"lncli of {name}'s lnd",
            [
                str(lnd_bin("lncli")),
                f"--lnddir={node.folder}",
                "--network=regtest",
                f"--rpcserver={node.rpc_host}",
            ],
        )
    chain = peers.bitcoind
    cli = [*bitcoind_command()[:-1], str(Path(bitcoind_command()[-1]).with_name("bitcoin-cli"))]
    btc = [
        *cli,
        "-regtest",
        f"-rpcport={chain.rpc_port}",
        f"-rpcuser={chain.user}",
        f"-rpcpassword={chain.password}",
        "-rpcwallet=miner",
    ]
    _script(bin_dir / "btc", "bitcoin-cli on the world's bitcoind", btc)
    write_private(
        bin_dir / "mine",
        f'#!/bin/sh\n# mine [N]: N blocks (1)\nexec {shlex.join(btc)} -generate "${{1:-1}}" >/dev/null\n',
    )
    (bin_dir / "mine").chmod(0o700)
    write_private(bin_dir / "get", _GET.format(python=sys.executable))
    (bin_dir / "get").chmod(0o700)
    venv_bin = Path(sys.executable).parent
    path = f"{shlex.quote(str(bin_dir))}:{shlex.quote(str(venv_bin))}"
    write_private(
        devnet / "env",
        "# source me: the local world's commands and the gateway's CLIs on PATH; gateway-cli\n"
        "# finds this world (its URL and admin password) from any folder\n"
        f'export PATH={path}:"$PATH"\n'
        f"export {ENV_DEVNET_DIR}={shlex.quote(str(devnet))}\n",
    )
