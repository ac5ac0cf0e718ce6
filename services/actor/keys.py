"""Where one federation's keys come from: the gateway's seed, or (for a federation joined
before the gateway had one) the random gateway key its actor stored then.

Decided once per federation and kept in the actor's meta table (`key_source`): `seed` for a
federation first served with a seed, `random` for an actor database that already held a random
`gateway_key` (its key is never silently changed). A seeded federation also keeps the fingerprint of its client secret (fedimint's
`derive_pre_root_secret_hash`): started with other words, the actor stops rather than serve
with keys that are not the ones its contracts and notes were made with.

Never: keep a derived secret on disk, or change a federation's key source.
"""

from __future__ import annotations

from pathlib import Path

from fmclient.derive import DerivableSecret, FederationSecrets, default_client_secret
from gwcore.seed import GatewaySeed

from .store import ActorStore

KEY_SOURCE = "key_source"
SEED_FINGERPRINT = "seed_fingerprint"
SEED, RANDOM = "seed", "random"


def seed_fingerprint(root: DerivableSecret, federation_id: str) -> str:
    """fedimint's check that a client is reopened with its own secret (fedimint-client
    builder.rs:504-523): 8 bytes of the client secret's child 0."""
    client = default_client_secret(root, bytes.fromhex(federation_id))
    return client.child_key(0).to_random_bytes(8).hex()


def federation_secrets(
    store: ActorStore, data_dir: Path, federation_id: str
) -> FederationSecrets | None:
    """The federation's secrets from the seed in `data_dir`, or None where its keys are random
    (a federation joined before the gateway had a seed). SystemExit (one line) if the seed is missing
    or is not the one this federation's keys were derived from."""
    source = store.meta(KEY_SOURCE)
    if source is None:
        source = SEED if store.meta("gateway_key") is None else RANDOM
        store.set_meta(KEY_SOURCE, source)
    if source == RANDOM:
        return None
    try:
        root = GatewaySeed.load(data_dir).root_secret()
    except Exception as exc:
        raise SystemExit(f"federation {federation_id[:16]}…: {exc}") from None
    fingerprint = seed_fingerprint(root, federation_id)
    known = store.meta(SEED_FINGERPRINT)
    if known is None:
        store.set_meta(SEED_FINGERPRINT, fingerprint)
    elif known != fingerprint:
        raise SystemExit(
            f"federation {federation_id[:16]}…: the gateway seed in {data_dir} is not the one this"
            " federation's keys were derived from; put the right seed back"
        )
    return FederationSecrets.from_root(root, federation_id)
