"""mintv2, fedimint 0.13's default e-cash module: its client config, notes, fees and the
out-of-band e-cash string (fedimint-mintv2-common/-client-0.13.0).

- `MintClientConfig {tbs_agg_pks: BTreeMap<Denomination(u8), G2>, tbs_pks: BTreeMap<Denomination,
  BTreeMap<PeerId, G2>>, fee_consensus {base: Amount, parts_per_million: u64}, amount_unit: u64}`.
- A note is worth 2^d msat; clients issue d = 9..41 (512 msat and up). The fee is charged on every
  input note and every output note: base + amount · ppm / 10^6.
- `SpendableNote {denomination: u8, keypair: its 32-byte secret, signature: G1}`; the note's
  nonce is the keypair's compressed public key, its message `Message::from_bytes_sha256(nonce)`.
- `ECash(Vec<ECashField>)`, written `fedimint` + base32: fields 0 `Mint(FederationId)`,
  1 `Note(SpendableNote)`, 2 `Invite {peer_apis: Vec<(PeerId, String)>, federation_id}`,
  3 `ApiSecret(String)`, 4 `Unit(u64)`; unknown fields kept.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from . import base32, tbs
from .ecash import EcashError, Note, Received, signed
from .encoding import DecodeError, Reader, Writer, encode
from .tx import v0

__all__ = ["EcashError"]  # re-exported: callers import it from here

CLIENT_DENOMINATIONS = range(9, 42)
SPENT_COIN = 1  # MintInputError::SpentCoin
MINT, NOTE, INVITE, API_SECRET, UNIT = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class MintConfig:
    agg_pks: dict[int, bytes]  # denomination -> G2, compressed
    pks: dict[int, dict[int, bytes]]  # denomination -> peer -> G2
    fee_base_msat: int
    fee_ppm: int
    amount_unit: int

    @classmethod
    def from_bytes(cls, body: bytes) -> MintConfig:
        r = Reader(body, "mintv2 config")
        agg = r.map(Reader.u8, lambda r2: r2.raw(96))
        pks = r.map(
            Reader.u8, lambda r2: r2.map(lambda r3: r3.varint(0xFFFF), lambda r3: r3.raw(96))
        )
        base, ppm, unit = r.varint(), r.varint(), r.varint()
        r.done()
        return cls(agg, pks, base, ppm, unit)

    def to_bytes(self) -> bytes:
        return encode(
            lambda w: (
                w.map(self.agg_pks, Writer.u8, Writer.raw)
                .map(
                    self.pks,
                    Writer.u8,
                    lambda w2, by_peer: w2.map(by_peer, Writer.varint, Writer.raw),
                )
                .varint(self.fee_base_msat)
                .varint(self.fee_ppm)
                .varint(self.amount_unit)
            )
        )

    def fee(self, denomination: int) -> int:
        """The fee of one input or output note of this denomination, msat."""
        return self.fee_base_msat + (1 << denomination) * self.fee_ppm // 1_000_000

    @functools.cached_property
    def _agg_points(self) -> dict[int, tbs.G2Point]:
        return {d: tbs.g2(pk) for d, pk in self.agg_pks.items()}

    @functools.cached_property
    def _share_points(self) -> dict[tuple[int, int], tbs.G2Point]:
        return {}

    def share_key(self, denomination: int, peer: int) -> tbs.G2Point:
        """A guardian's key share for a denomination, decompressed (and checked) once."""
        key = (denomination, peer)
        if key not in self._share_points:
            self._share_points[key] = tbs.g2(self.pks[denomination][peer])
        return self._share_points[key]

    def aggregate_key(self, denomination: int) -> tbs.G2Point:
        try:
            return self._agg_points[denomination]
        except KeyError:
            raise EcashError(f"the federation has no key for denomination {denomination}") from None


@dataclass(frozen=True)
class SpendableNote(Note):
    """A note as mintv2's e-cash string carries it."""

    def valid(self, config: MintConfig) -> bool:
        """The federation's signature on this note's nonce."""
        return signed(self, tbs.message_sha256, config.aggregate_key)

    def put(self, w: Writer) -> None:
        w.u8(self.denomination).raw(self.secret).raw(self.signature)

    @classmethod
    def get(cls, r: Reader) -> SpendableNote:
        return cls(r.u8(), r.raw(32), r.raw(48))


@dataclass(frozen=True)
class ECash:
    federation_id: str | None
    notes: tuple[SpendableNote, ...]
    invite_peers: tuple[tuple[int, str], ...] = ()
    invite_federation_id: str | None = None
    api_secret: str | None = None
    unit: int | None = None
    unknown: tuple[tuple[int, bytes], ...] = field(default=())

    @property
    def amount_msat(self) -> int:
        return sum(n.amount_msat for n in self.notes)

    def to_bytes(self) -> bytes:
        fields: list[tuple[int, bytes]] = []
        if self.federation_id is not None:
            fields.append((MINT, bytes.fromhex(self.federation_id)))
        fields += [(NOTE, encode(n.put)) for n in self.notes]
        if self.invite_federation_id is not None:
            fields.append(
                (
                    INVITE,
                    encode(
                        lambda w: w.vec(
                            self.invite_peers, lambda w2, pu: w2.varint(pu[0]).str(pu[1])
                        ).raw(bytes.fromhex(self.invite_federation_id or ""))
                    ),
                )
            )
        if self.api_secret is not None:
            fields.append((API_SECRET, encode(lambda w: w.str(self.api_secret or ""))))
        if self.unit is not None:
            fields.append((UNIT, encode(lambda w: w.varint(self.unit or 0))))
        fields += list(self.unknown)
        return encode(lambda w: w.vec(fields, lambda w2, f: w2.framed(*f)))

    def __str__(self) -> str:
        return base32.FEDIMINT_PREFIX + base32.encode(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> ECash:
        r = Reader(data, "e-cash")
        fed_id = invite_fed = secret = unit = None
        notes, peers, unknown = [], (), []
        for _ in range(r.length()):
            tag, body = r.framed()
            if tag == MINT:
                fed_id = body.raw(32).hex()
            elif tag == NOTE:
                notes.append(SpendableNote.get(body))
            elif tag == INVITE:
                peers = tuple(body.vec(lambda r2: (r2.varint(0xFFFF), r2.str())))
                invite_fed = body.raw(32).hex()
            elif tag == API_SECRET:
                secret = body.str()
            elif tag == UNIT:
                unit = body.varint()
            else:
                unknown.append((tag, body.raw(body.remaining())))
            body.done()
        r.done()
        return cls(fed_id, tuple(notes), peers, invite_fed, secret, unit, tuple(unknown))


def parse_ecash(text: object) -> ECash:
    if not isinstance(text, str) or not text.strip():
        raise EcashError("e-cash is a string (fedimint…)")
    try:
        ecash = ECash.from_bytes(base32.decode_prefixed(base32.FEDIMINT_PREFIX, text))
    except (DecodeError, ValueError) as exc:
        raise EcashError(f"not mintv2 e-cash: {exc}") from None
    if not ecash.notes:
        raise EcashError("the e-cash holds no notes")
    if ecash.federation_id is None and ecash.invite_federation_id is None:
        raise EcashError("the e-cash does not say which federation issued it")
    bad = [n.denomination for n in ecash.notes if n.denomination not in CLIENT_DENOMINATIONS]
    if bad:
        raise EcashError(f"notes of denominations {bad} are outside 2^9..2^41 msat")
    return ecash


class Dialect:
    """mintv2 as `MintWallet` speaks it (fmclient.ecash.Dialect)."""

    kind: ClassVar[str] = "mintv2"
    spent_coin = SPENT_COIN
    denominations = CLIENT_DENOMINATIONS

    def __init__(self, module: int, body: bytes) -> None:
        self.module = module
        self.config = MintConfig.from_bytes(body)
        self.fee = self.config.fee
        self.aggregate_key = self.config.aggregate_key
        self.share_key = self.config.share_key

    message = staticmethod(tbs.message_sha256)

    def output(self, denomination: int, blinded: tbs.G1Point, tweak: bytes | None = None) -> bytes:
        """`MintOutputV0 {denomination, nonce, tweak}`: the note's tweak (a note derived from
        the seed: the one its secret was derived with, ground to pass the client's recovery
        filter; else random)."""
        tweak = os.urandom(16) if tweak is None else tweak
        if len(tweak) != 16:
            raise ValueError("a mintv2 tweak is 16 bytes")
        return v0(bytes([denomination]) + tbs.to_bytes(blinded) + tweak)

    def input(self, note: Note) -> bytes:
        return v0(bytes([note.denomination]) + note.nonce + note.signature)

    def shares_request(self, txid: str, start: int, end: int) -> tuple[str, Any]:
        rng = {"txid": txid, "idx_range": {"start": start, "end": end}}
        return f"module_{self.module}_signature_shares", rng

    def recovery_shares_request(self, blinded: list[str]) -> tuple[str, Any]:
        """`recovery_signature_shares`: the shares of notes issued earlier, by blinded message
        (fedimint-mintv2-client api.rs, as its recovery asks them)."""
        return f"module_{self.module}_recovery_signature_shares", blinded

    def decode_shares(self, answer: Any, count: int) -> list[tbs.G1Point] | None:
        if not isinstance(answer, list) or len(answer) != count:
            return None
        try:
            return [tbs.g1(bytes.fromhex(s)) for s in answer]
        except (tbs.TbsError, ValueError, TypeError):
            return None

    @staticmethod
    def parse(text: object) -> Received:
        ecash = parse_ecash(text)
        federation = ecash.federation_id or ecash.invite_federation_id or ""
        return Received(federation, ecash.notes, ecash.to_bytes())

    def format(self, federation_id: str, notes: Sequence[Note]) -> str:
        own = tuple(SpendableNote(n.denomination, n.secret, n.signature) for n in notes)
        return str(ECash(federation_id, own))
