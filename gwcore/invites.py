"""The product's one reader of invite codes: the federation's id, and where each of its guardians
is reached. The router (connect), the API front (`/connect-fed`) and the dashboard (its connect
form's check at once) read invites here and nowhere else. It only reads text: it never reaches
the network (the federation's config is fetched by the router).

An invite is a Fedimint federation's, `fed11…` (or `fedimint…`), read by `fmclient.invite`.
Optional per-guardian websocket URLs (`api_urls`, {peer id: ws URL}) stand in for the `iroh://`
endpoints a federation may list (`fmclient.join.check_overrides`).

Bad input is `InvalidInput` with a one-line reason ("invalid invite code: …" for the code).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fmclient.invite import InviteError
from fmclient.invite import parse_invite as parse_fedimint_invite
from fmclient.join import JoinError, check_overrides, guardian_urls

from .errors import InvalidInput

FEDIMINT = "fedimint"  # the kind of every federation served (the API's `kind`)
MAX_INVITE_CHARS = 20_000  # a federation of hundreds of guardians fits; a pasted novel does not


@dataclass(frozen=True)
class Invite:
    """An invite code, checked: what the connect needs of it."""

    federation_id: str  # 64 hex
    guardians: dict[int, str]  # peer id -> where its API is reached (api_urls applied)
    api_urls: dict[int, str] = field(default_factory=dict)  # the overrides given, checked

    @property
    def api_url(self) -> str:
        """The first guardian's API URL (what the registry shows for the federation)."""
        return next(iter(self.guardians.values()))


def parse_invite(code: object, api_urls: object = None) -> Invite:
    """The invite `code` (with the guardians' ws URLs `api_urls`, Fedimint only), checked; else
    InvalidInput saying why in one line."""
    if not isinstance(code, str) or not code.strip():
        raise InvalidInput("invite_code is required (a Fedimint invite code, fed11…)")
    code = code.strip()
    if len(code) > MAX_INVITE_CHARS:
        raise InvalidInput(f"invalid invite code: longer than {MAX_INVITE_CHARS} characters")
    try:
        invite = parse_fedimint_invite(code)
    except InviteError as exc:
        raise InvalidInput(_reason(str(exc))) from None
    try:
        overrides = check_overrides(api_urls if api_urls else None)
        return Invite(invite.federation_id, guardian_urls(invite.peers, overrides), overrides)
    except JoinError as exc:
        raise InvalidInput(str(exc)) from None


def parse_api_urls(text: str) -> dict[str, str]:
    """`PEER=URL` items separated by spaces or new lines (the dashboard's field, as gateway-cli's
    `--api-url PEER=URL`) -> {peer: URL}, checked by `parse_invite`; InvalidInput if one is not
    of that form."""
    urls: dict[str, str] = {}
    for item in text.split():
        peer, sep, url = item.partition("=")
        if not sep or not peer.isdigit() or not url:
            raise InvalidInput(f"api_urls: {item[:60]!r} is not PEER=URL (e.g. 0=ws://host:8174)")
        if peer in urls:
            raise InvalidInput(f"api_urls: peer {peer} is given twice")
        urls[peer] = url
    return urls


def _reason(message: str) -> str:
    return (
        message if message.startswith("invalid invite code") else f"invalid invite code: {message}"
    )
