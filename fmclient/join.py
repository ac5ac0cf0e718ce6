"""Joining a federation by invite code, as fedimint-api-client's `try_download_client_config`:
the config from the invite's guardian(s) (the first whose federation id, recomputed from the
config's `api_endpoints`, is the invite's), then the config again from every guardian it lists,
by threshold consensus, and the id checked once more. Module instance ids come from it."""

from __future__ import annotations

from .api import ApiError, FederationApi, NoConsensus, PeerUnreachable
from .config import ClientConfig, ConfigError, parse_client_config
from .invite import InviteCode, parse_invite


class JoinError(Exception):
    """The federation could not be joined; one line saying why."""


async def download_config(invite: InviteCode | str, timeout: float = 60.0) -> ClientConfig:
    invite = parse_invite(invite) if isinstance(invite, str) else invite
    first: ClientConfig | None = None
    why = []
    api = FederationApi(invite.peers)
    try:
        for peer in invite.peers:
            try:
                cfg = parse_client_config(await api.request_peer(peer, "client_config"))
            except (ApiError, PeerUnreachable, ConfigError) as exc:
                why.append(str(exc))
                continue
            if cfg.federation_id == invite.federation_id:
                first = cfg
                break
            why.append(f"guardian {peer} serves the config of federation {cfg.federation_id}")
    finally:
        await api.close()
    if first is None:
        raise JoinError(f"no guardian of the invite gave the federation's config: {'; '.join(why)}")
    everyone = FederationApi({p: url for p, (url, _) in first.api_endpoints.items()})
    try:
        doc = await everyone.current_consensus("client_config", timeout=timeout)
    except NoConsensus as exc:
        raise JoinError(f"the guardians do not agree on the config: {exc}") from None
    finally:
        await everyone.close()
    cfg = parse_client_config(doc)
    if cfg.federation_id != invite.federation_id:
        raise JoinError("the guardians agree on a config that is not the invite's federation")
    return cfg
