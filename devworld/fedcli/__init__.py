"""`fed-cli`: a federation user's wallet on the command line (the dev federation's client)."""
