"""The development world: what stands in for the outside world in development and tests, not
what an operator deploys. `regtest/`: a simulated chain and Lightning network (`regtestd`,
`regtest-cli`), whose node the Lightning extension's sim backend drives, for the extension's
contract suite, fast benchmarks and the tests of the gateway's process tree. The product
(`services/`, `fmclient/`, `bus/`, `gwcore/`) imports nothing from it
(tests/test_import_rule.py); real peers (fedimintd, lnd, bitcoind) are under `peers/`."""
