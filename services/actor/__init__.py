"""A federation actor (`gateway-actor --federation-id ID`): one process per federation, holding
that federation's client (gateway role), registration, and the payment state machines."""
