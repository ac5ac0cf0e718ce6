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


def check_overrides(overrides: object) -> dict[int, str]:
    """Guardians' websocket API URLs given by hand ({peer id: ws(s) URL}), for federations whose
    config lists only `iroh://` endpoints (as `FM_WS_API_CONNECT_OVERRIDES` does for
    fedimint-cli); JoinError with the reason if malformed."""
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise JoinError("api_urls is an object {peer id: ws:// or wss:// URL}")
    out = {}
    for peer, url in overrides.items():
        if not str(peer).isdigit() or int(peer) > 0xFFFF:
            raise JoinError(f"api_urls: {str(peer)[:20]!r} is not a peer id")
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")) or len(url) > 500:
            raise JoinError(f"api_urls: the URL of peer {peer} must be ws:// or wss://")
        out[int(peer)] = url
    return out


def guardian_urls(endpoints: dict[int, str], overrides: dict[int, str]) -> dict[int, str]:
    """Where each guardian is reached: its override, else the URL the federation lists; a
    guardian with neither a websocket URL nor an override is JoinError."""
    urls = {p: overrides.get(p, url) for p, url in endpoints.items()}
    iroh = sorted(p for p, url in urls.items() if not url.startswith(("ws://", "wss://")))
    if iroh:
        raise JoinError(
            f"guardians {iroh} list no websocket API URL (iroh only): give their ws:// or "
            "wss:// URLs (api_urls; gateway-cli connect-fed --api-url PEER=URL; the dashboard's "
            "Guardian API URLs)"
        )
    return urls


async def download_config(
    invite: InviteCode | str, timeout: float = 60.0, overrides: dict[int, str] | None = None
) -> ClientConfig:
    """`overrides`: ws URLs per peer id, used instead of the invite's and config's URLs (the
    federation id is still recomputed from the config's own endpoints)."""
    invite = parse_invite(invite) if isinstance(invite, str) else invite
    overrides = overrides or {}
    first: ClientConfig | None = None
    why = []
    api = FederationApi(guardian_urls(invite.peers, overrides))
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
    everyone = FederationApi(
        guardian_urls({p: url for p, (url, _) in first.api_endpoints.items()}, overrides)
    )
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
