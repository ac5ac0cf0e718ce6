"""Notes strings: e-cash handed from one wallet to another (`fed-cli spend` / `reissue`).

`fednotes` + base64url(JSON {federation_id, notes: [{amount, spend_key, signature}]}). Whoever
holds the string can spend the notes (it carries their spend keys): the receiver reissues them at
once, which makes them theirs.
"""

from __future__ import annotations

import base64
import json

PREFIX = "fednotes"


def encode_notes(federation_id: str, notes: list[dict]) -> str:
    body = json.dumps(
        {"federation_id": federation_id, "notes": notes}, separators=(",", ":")
    ).encode()
    return PREFIX + base64.urlsafe_b64encode(body).decode().rstrip("=")


def decode_notes(text: str) -> tuple[str, list[dict]]:
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise ValueError("notes must start with 'fednotes'")
    raw = text[len(PREFIX) :].strip()
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        fed, notes = data["federation_id"], data["notes"]
        if not isinstance(notes, list) or not notes:
            raise ValueError
        for n in notes:
            if (
                not isinstance(n.get("amount"), int)
                or not isinstance(n.get("spend_key"), str)
                or not isinstance(n.get("signature"), str)
            ):
                raise ValueError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError("notes string is damaged") from None
    return fed, notes
