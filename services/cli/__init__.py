"""`gateway-cli`: the operator's command line, a client of the HTTP API (and its client library)."""
