"""Running the real peers on loopback for tests: `procs` (processes with logs), `bitcoind` (a
regtest node with a funded miner wallet), `fedimintd` (federations set up from nothing)."""
