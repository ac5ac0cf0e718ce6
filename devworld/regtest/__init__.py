"""The simulated regtest world: a chain with a bitcoind-compatible RPC and a Lightning network,
in one asyncio process (`regtestd`), with its CLI (`regtest-cli`). See docs/regtest-world.md."""
