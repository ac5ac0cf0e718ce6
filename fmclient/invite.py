"""Invite codes (fedimint-core-0.13.0/src/invite_code.rs).

`fed11…`: bech32m, HRP `fed1`, of the consensus encoding of `InviteCode(Vec<InviteCodePart>)`,
with no length limit (the BIP173 limit of 90 characters does not apply; either checksum constant
is read, bech32m is written). `fedimint…`: the same bytes in fedimint's base32. Parts are enum
variants: 0 `Api{url: String, peer: u16}`, 1 `FederationId([u8; 32])`, 2 `ApiSecret(String)`;
unknown variants are kept verbatim and written back. A code needs an Api part and a
FederationId part.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from embit.bech32 import (
    CHARSET,
    Encoding,
    bech32_create_checksum,
    bech32_verify_checksum,
    convertbits,
)

from . import base32
from .encoding import DecodeError, Reader, Writer, encode

HRP = "fed1"
API, FEDERATION_ID, API_SECRET = 0, 1, 2


class InviteError(ValueError):
    """Not an invite code; the message says why in one line."""


@dataclass(frozen=True)
class InviteCode:
    federation_id: str  # 64 hex
    peers: dict[int, str]  # peer id -> API URL, in the order given
    api_secret: str | None = None
    unknown: tuple[tuple[int, bytes], ...] = field(default=())

    def to_bytes(self) -> bytes:
        def put(w: Writer) -> None:
            parts: list[tuple[int, bytes]] = [
                (API, encode(lambda b, u=url, p=peer: b.str(u).varint(p)))
                for peer, url in self.peers.items()
            ]
            parts.append((FEDERATION_ID, bytes.fromhex(self.federation_id)))
            if self.api_secret is not None:
                parts.append((API_SECRET, encode(lambda b: b.str(self.api_secret or ""))))
            parts.extend(self.unknown)
            w.vec(parts, lambda w2, part: w2.framed(*part))

        return encode(put)

    def __str__(self) -> str:
        data = convertbits(list(self.to_bytes()), 8, 5)
        assert data is not None
        checksum = bech32_create_checksum(Encoding.BECH32M, HRP, data)
        return HRP + "1" + "".join(CHARSET[d] for d in data + checksum)

    @classmethod
    def from_bytes(cls, data: bytes) -> InviteCode:
        r = Reader(data, "invite code")
        fed_id, secret = None, None
        peers: dict[int, str] = {}
        unknown = []
        for _ in range(r.length()):
            tag, body = r.framed()
            if tag == API:
                url, peer = body.str(), body.varint(0xFFFF)
                peers[peer] = url
            elif tag == FEDERATION_ID:
                fed_id = body.raw(32).hex()
            elif tag == API_SECRET:
                secret = body.str()
            else:
                unknown.append((tag, body.raw(body.remaining())))
            body.done()
        r.done()
        if fed_id is None or not peers:
            raise InviteError("an invite code names a federation id and at least one guardian")
        return cls(fed_id, peers, secret, tuple(unknown))


def parse_invite(text: object) -> InviteCode:
    """A `fed11…` or `fedimint…` invite code; InviteError naming what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise InviteError("an invite code is a string (fed11…)")
    text = text.strip()
    try:
        if text[: len(base32.FEDIMINT_PREFIX)].lower() == base32.FEDIMINT_PREFIX:
            return InviteCode.from_bytes(base32.decode_prefixed(base32.FEDIMINT_PREFIX, text))
        return InviteCode.from_bytes(_bech32_payload(text))
    except (DecodeError, ValueError) as exc:
        if isinstance(exc, InviteError):
            raise
        raise InviteError(f"invalid invite code: {exc}") from None


def _bech32_payload(text: str) -> bytes:
    if text.lower() != text and text.upper() != text:
        raise InviteError("invalid invite code: mixed upper and lower case")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or len(text) - pos < 7:
        raise InviteError("invalid invite code: no bech32 separator and checksum")
    hrp, rest = text[:pos], text[pos + 1 :]
    if hrp != HRP:
        raise InviteError(f"not a Fedimint invite code (prefix {hrp}1, not {HRP}1)")
    bad = next((c for c in rest if c not in CHARSET), None)
    if bad is not None:
        raise InviteError(f"invalid invite code: {bad!r} is not a bech32 character")
    data = [CHARSET.index(c) for c in rest]
    if bech32_verify_checksum(hrp, data) is None:
        raise InviteError("invalid invite code: the checksum does not match (mistyped?)")
    payload = convertbits(data[:-6], 5, 8, False)
    if payload is None:
        raise InviteError("invalid invite code: bad padding")
    return bytes(payload)
