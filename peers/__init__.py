"""The real outside world for tests, kept apart from the product and from the development world.

Peers installed at pinned versions into a cache folder outside the repo (`peers/cache.py`):
fedimintd + fedimint-cli (`peers/fedimint/`: one cargo graph, committed Cargo.lock) and bitcoind
(`peers/bitcoind/install.sh`: Bitcoin Knots from Debian unstable), both by `make peers`. The
harness that runs them on loopback (`peers/harness/`): a real regtest bitcoind and real
fedimintd federations of 1 or 4 guardians, set up from nothing.

The gateway never imports this package.
"""
