"""The local world of `make run`: real peers on loopback, and the gateway serving them.

One regtest bitcoind (Bitcoin Knots) that every part shares; real fedimintd federations `alpha`
and `beta` (1 guardian each, `GUARDIANS=4` for four; `MODULES=v1` for mint, wallet and ln);
real lnd nodes alice -> gateway -> bob with public channels; the gateway under its own
supervisord on the lnd node `gateway`, connected to both federations, funded in e-cash and added
by every guardian; a funded fedimint-cli user per federation. Everything lives in `.devnet/`
(private to the user): `world/` the peers and their supervisord, `run/` and `data/` the gateway's,
`users/` the users' wallets, `bin/` short commands for the README's quick start (`source
.devnet/env` puts them on PATH), `world.json` what the CLIs read.

    python -m deploy.devnet run [--guardians N] [--modules v2|v1]   # make run
    python -m deploy.devnet stop                                    # make stop
    python -m deploy.devnet status                                  # make status
"""
