"""The development world: what stands in for the outside world in development and tests, not
what an operator deploys. `regtest/` (a simulated chain and Lightning network, `regtestd`),
`federation/` (the development federation's guardian, `guardiand`), `devworld/fedlib/` (its client
library), `fedcli/` (its user's wallet, `fed-cli`). The product (`services/`, `fmclient/`,
`bus/`, `gwcore/`) never needs it to serve a real federation; the actor's `DevFederation`
uses `fedlib` to serve the development federation."""
