"""The development federation's shared code: its cryptography, transaction encoding, invite
codes, and the client library that users (fed-cli) and the gateway's actors use.

Imported by the guardian server (devworld/federation), fed-cli and the actors; opens nothing at
import.
"""
