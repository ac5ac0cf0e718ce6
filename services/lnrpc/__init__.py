"""The Lightning extension (`gateway-lnrpc-extension`): the GatewayLightning gRPC service beside a
Lightning node, with one backend per node implementation (sim, CLN plugin, LND)."""
