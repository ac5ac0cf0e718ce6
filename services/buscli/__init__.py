"""`gateway-bus`: look at the bus from a shell (liveness table, ping a service)."""
