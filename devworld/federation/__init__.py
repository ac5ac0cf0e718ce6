"""The development federation's guardian server (`guardiand`): mint, transactions, Lightning
contracts, wallet, over an HTTP+JSON API. See docs/federation-api.md."""
