"""The router process: the bus broker, the federation registry, HTLC dispatch (later issues)."""
