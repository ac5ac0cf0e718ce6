"""mint v1 (module kind `mint`), the e-cash module of every federation fedimintd 0.11 and older
set up, as fedimint-mint-common/-client 0.13.0 have it.

- `MintClientConfig {tbs_pks: Tiered<AggregatePublicKey>, fee_consensus: FeeConsensus {base:
  Amount, parts_per_million: u64}, peer_tbs_pks: BTreeMap<PeerId, Tiered<PublicKeyShare>>,
  max_notes_per_denomination: u16}`; `Tiered<T>` is a BTreeMap from the amount (msat) to T. The
  server's tiers are 1 msat · 2^k up to 10^6 BTC (k = 0..56). A FeeConsensus decodes only as
  zero, or base 100 msat with at most 1,000 ppm.
- The fee is charged on every input and output note: base + amount · ppm / 10^6. The client
  rounds sends up to, and treats as uneconomical notes below, `min_economical_denomination` =
  (4 · base) rounded up to a power of two: 512 msat with the base fee, 1 msat without. Our
  wallet issues the tiers from there up (fedimint-cli's own change keeps `max_notes_per_
  denomination` sets of every tier, 1 msat notes included, each paying the full base fee).
- `MintOutputV0 {amount, blind_nonce: G1}`, `MintInputV0 {amount, note: Note {nonce: secp
  PublicKey, signature: G1}}`, `MintOutputOutcomeV0(BlindedSignatureShare)`: each guardian's
  share of an output, fetched through the core endpoint `await_outputs_outcomes`.
- A nonce's message is `Message::from_bytes(pk)`: SHA3-256 of "TBS_BLS12-381_" ‖ the 33-byte key
  (mintv2 uses SHA-256 and its own domain).
- `MintInputError`: SpentCoin = 0, InvalidAmountTier = 1, InvalidSignature = 2.
- The out-of-band string `OOBNotes(Vec<OOBNotesPart>)`, parts: 0 `Notes(TieredMulti<
  SpendableNote {signature: G1, spend_key: 32-byte secret}>)`, 1 `FederationIdPrefix([u8; 4])`,
  2 `Invite {peer_apis: Vec<(PeerId, SafeUrl)>, federation_id}`, 3 `ApiSecret(String)`; unknown
  parts kept. Written as URL-safe base64 with padding; read also as `fedimint` + base32 and as
  standard base64, whitespace ignored. Verified against tests/fmclient/data/mintv1_vectors.json.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, ClassVar

from coincurve import PrivateKey

from . import base32, tbs
from .ecash import EcashError, Note, Received
from .encoding import DecodeError, Reader, Writer, encode
from .tx import from_serde, v0

KIND = "mint"
SPENT_COIN, INVALID_AMOUNT_TIER, INVALID_SIGNATURE = 0, 1, 2
NOTES, FEDERATION_ID_PREFIX, INVITE, API_SECRET = 0, 1, 2, 3
MAX_PPM = 1_000
_URL_SAFE = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_STANDARD = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _exponent(amount_msat: int, what: str) -> int:
    if amount_msat <= 0 or amount_msat & (amount_msat - 1):
        raise EcashError(f"{what} of {amount_msat} msat is not a power of two")
    return amount_msat.bit_length() - 1


@dataclass(frozen=True)
class MintConfig:
    tbs_pks: dict[int, bytes]  # amount (msat) -> aggregate G2 key, compressed
    fee_base_msat: int
    fee_ppm: int
    peer_tbs_pks: dict[int, dict[int, bytes]]  # peer -> amount (msat) -> G2 key share
    max_notes_per_denomination: int

    @classmethod
    def from_bytes(cls, body: bytes) -> MintConfig:
        r = Reader(body, "mint v1 config")
        pks = r.map(Reader.varint, lambda r2: r2.raw(96))
        base, ppm = r.varint(), r.varint()
        if (base, ppm) != (0, 0) and not (base == 100 and ppm <= MAX_PPM):
            raise r.fail("fees must be zero or 100 msat base with at most 1000 ppm")
        peers = r.map(
            lambda r2: r2.varint(0xFFFF), lambda r2: r2.map(Reader.varint, lambda r3: r3.raw(96))
        )
        max_notes = r.varint(0xFFFF)
        r.done()
        for amount in pks:
            _exponent(amount, "a tier")
        return cls(pks, base, ppm, peers, max_notes)

    def to_bytes(self) -> bytes:
        def tiered(w: Writer, keys: dict[int, bytes]) -> None:
            w.map(keys, Writer.varint, Writer.raw)

        return encode(
            lambda w: (
                tiered(w, self.tbs_pks),
                w.varint(self.fee_base_msat).varint(self.fee_ppm),
                w.map(self.peer_tbs_pks, Writer.varint, tiered),
                w.varint(self.max_notes_per_denomination),
            )
        )

    def fee_msat(self, amount_msat: int) -> int:
        return self.fee_base_msat + amount_msat * self.fee_ppm // 1_000_000

    def fee(self, denomination: int) -> int:
        """The fee of one input or output note worth 2^denomination msat."""
        return self.fee_msat(1 << denomination)

    @property
    def min_economical_msat(self) -> int:
        """`FeeConsensus::min_economical_denomination`: 4 · base, up to a power of two."""
        n = 4 * self.fee_base_msat
        return 1 if n <= 1 else 1 << (n - 1).bit_length()

    @functools.cached_property
    def client_denominations(self) -> range:
        """The tiers our wallet issues: from the smallest economical one up, contiguous."""
        lo = self.min_economical_msat.bit_length() - 1
        tiers = sorted(_exponent(a, "a tier") for a in self.tbs_pks)
        issued = [t for t in tiers if t >= lo]
        if not issued or issued != list(range(issued[0], issued[-1] + 1)):
            raise EcashError("the federation's note tiers are not contiguous powers of two")
        return range(issued[0], issued[-1] + 1)

    @functools.cached_property
    def _points(self) -> dict[tuple[int, int | None], tbs.G2Point]:
        return {}

    def aggregate_key(self, denomination: int) -> tbs.G2Point:
        key = (denomination, None)
        if key not in self._points:
            try:
                self._points[key] = tbs.g2(self.tbs_pks[1 << denomination])
            except KeyError:
                raise EcashError(
                    f"the federation has no key for {1 << denomination} msat"
                ) from None
        return self._points[key]

    def share_key(self, denomination: int, peer: int) -> tbs.G2Point:
        key = (denomination, peer)
        if key not in self._points:
            self._points[key] = tbs.g2(self.peer_tbs_pks[peer][1 << denomination])
        return self._points[key]


def represent_amount(
    amount_msat: int, held: dict[int, int], config: MintConfig, sets: int
) -> dict[int, int]:
    """The notes (tier msat -> count) fedimint-cli's v1 client makes of `amount_msat` of change,
    each note paying its own fee from it (`represent_amount`): first, ascending, what tops up
    the notes `held` to `sets` of each tier; then the rest greedily, largest tier first. What
    is left (less than a 1 msat note and its fee) goes to the federation."""
    counts: dict[int, int] = {}
    remaining = amount_msat
    tiers = sorted(config.tbs_pks)
    for tier in tiers:
        cost = tier + config.fee_msat(tier)
        add = min(remaining // cost, max(0, sets - held.get(tier, 0)))
        if add:
            counts[tier] = add
            remaining -= cost * add
    for tier in reversed(tiers):
        cost = tier + config.fee_msat(tier)
        n, remaining = divmod(remaining, cost)
        if n:
            counts[tier] = counts.get(tier, 0) + n
    return dict(sorted(counts.items()))


# -- the module's items ------------------------------------------------------------------------


@dataclass(frozen=True)
class MintOutput:
    amount_msat: int
    blind_nonce: bytes  # G1, compressed

    def to_bytes(self) -> bytes:
        return v0(encode(lambda w: w.varint(self.amount_msat).raw(self.blind_nonce)))

    @classmethod
    def from_bytes(cls, data: bytes) -> MintOutput:
        body = _v0(data, "mint v1 output")
        out = cls(body.varint(), body.raw(48))
        body.done()
        return out


@dataclass(frozen=True)
class MintInput:
    amount_msat: int
    nonce: bytes  # secp256k1 public key, compressed
    signature: bytes  # G1, compressed

    def to_bytes(self) -> bytes:
        return v0(encode(lambda w: w.varint(self.amount_msat).raw(self.nonce).raw(self.signature)))

    @classmethod
    def from_bytes(cls, data: bytes) -> MintInput:
        body = _v0(data, "mint v1 input")
        out = cls(body.varint(), body.raw(33), body.raw(48))
        body.done()
        return out


def outcome_share(data: bytes, module: int) -> bytes:
    """The blinded signature share in a `DynOutputOutcome` of our module (its V0)."""
    r = Reader(data, "output outcome")
    instance, item = r.framed()
    r.done()
    if instance != module:
        raise item.fail(f"of module {instance}, not {module}")
    body = _v0(item.raw(item.remaining()), "mint v1 outcome")
    share = body.raw(48)
    body.done()
    return share


def _v0(data: bytes, what: str) -> Reader:
    r = Reader(data, what)
    variant, body = r.framed()
    r.done()
    if variant != 0:
        raise r.fail(f"variant {variant} is not V0")
    return body


# -- out-of-band e-cash ------------------------------------------------------------------------


@dataclass(frozen=True)
class OOBNotes:
    notes: tuple[tuple[int, bytes, bytes], ...]  # (amount msat, signature, spend key), by tier
    federation_prefix: str | None  # 4 bytes of the federation id, hex
    invite_peers: tuple[tuple[int, str], ...] = ()
    invite_federation_id: str | None = None
    api_secret: str | None = None
    unknown: tuple[tuple[int, bytes], ...] = field(default=())

    @property
    def amount_msat(self) -> int:
        return sum(amount for amount, _, _ in self.notes)

    def notes_bytes(self) -> bytes:
        """The `TieredMulti<SpendableNote>`: per tier ascending, its notes in order."""
        tiers: dict[int, list[tuple[bytes, bytes]]] = {}
        for amount, sig, key in self.notes:
            tiers.setdefault(amount, []).append((sig, key))
        return encode(
            lambda w: w.map(
                tiers, Writer.varint, lambda w2, ns: w2.vec(ns, lambda w3, n: w3.raw(n[0] + n[1]))
            )
        )

    def to_bytes(self) -> bytes:
        parts: list[tuple[int, bytes]] = []
        if self.federation_prefix is not None:
            parts.append((FEDERATION_ID_PREFIX, bytes.fromhex(self.federation_prefix)))
        parts.append((NOTES, self.notes_bytes()))
        if self.invite_federation_id is not None:
            peers, fed = self.invite_peers, bytes.fromhex(self.invite_federation_id)
            parts.append(
                (
                    INVITE,
                    encode(
                        lambda w: w.vec(peers, lambda w2, p: w2.varint(p[0]).str(p[1])).raw(fed)
                    ),
                )
            )
        if self.api_secret is not None:
            parts.append((API_SECRET, encode(lambda w: w.str(self.api_secret or ""))))
        parts += list(self.unknown)
        return encode(lambda w: w.vec(parts, lambda w2, p: w2.framed(*p)))

    def __str__(self) -> str:
        return base64.urlsafe_b64encode(self.to_bytes()).decode()

    @classmethod
    def from_bytes(cls, data: bytes) -> OOBNotes:
        r = Reader(data, "OOBNotes")
        found: dict[int, Any] = {}
        unknown = []
        for _ in range(r.length()):
            tag, body = r.framed()
            if tag in found:
                raise body.fail(f"part {tag} appears twice")
            if tag == NOTES:
                tiers = body.map(
                    Reader.varint, lambda r2: r2.vec(lambda r3: (r3.raw(48), r3.raw(32)))
                )
                found[tag] = tuple((a, s, k) for a, ns in tiers.items() for s, k in ns)
            elif tag == FEDERATION_ID_PREFIX:
                found[tag] = body.raw(4).hex()
            elif tag == INVITE:
                peers = tuple(body.vec(lambda r2: (r2.varint(0xFFFF), r2.str())))
                found[tag] = (peers, body.raw(32).hex())
            elif tag == API_SECRET:
                found[tag] = body.str()
            else:
                unknown.append((tag, body.raw(body.remaining())))
            body.done()
        r.done()
        if NOTES not in found:
            raise r.fail("no e-cash notes")
        prefix = found.get(FEDERATION_ID_PREFIX)
        peers, fed = found.get(INVITE, ((), None))
        if prefix is None and fed is None:
            raise r.fail("no federation id")
        if prefix is not None and fed is not None and not fed.startswith(prefix):
            raise r.fail("the federation id prefix and the invite's federation differ")
        if fed is not None and not peers:
            raise r.fail("the invite names no guardian")
        return cls(found[NOTES], prefix, peers, fed, found.get(API_SECRET), tuple(unknown))


def parse_oob_notes(text: object) -> OOBNotes:
    """`OOBNotes::from_str`: whitespace dropped, then `fedimint` + base32, URL-safe base64 or
    standard base64 (with padding), the first that decodes."""
    if not isinstance(text, str):
        raise EcashError("e-cash is a string")
    s = "".join(text.split())
    data = None
    with suppress(ValueError):  # binascii.Error is one
        data = base32.decode_prefixed(base32.FEDIMINT_PREFIX, s)
    for pattern, alt in ((_URL_SAFE, b"-_"), (_STANDARD, b"+/")):
        if data is None and s and len(s) % 4 == 0 and pattern.fullmatch(s):
            with suppress(ValueError):  # binascii.Error is one
                data = base64.b64decode(s, altchars=alt, validate=True)
    if data is None:
        raise EcashError("not mint v1 e-cash: neither fedimint base32 nor base64")
    try:
        oob = OOBNotes.from_bytes(data)
        for _, _, key in oob.notes:
            PrivateKey(key)
    except (DecodeError, ValueError) as exc:
        raise EcashError(f"not mint v1 e-cash: {exc}") from None
    if not oob.notes:
        raise EcashError("the e-cash holds no notes")
    return oob


# -- the wallet's dialect ----------------------------------------------------------------------


class Dialect:
    """mint v1 as `MintWallet` speaks it (fmclient.ecash.Dialect)."""

    kind: ClassVar[str] = KIND
    spent_coin = SPENT_COIN

    def __init__(self, module: int, body: bytes) -> None:
        self.module = module
        self.config = MintConfig.from_bytes(body)
        self.denominations = self.config.client_denominations
        self.fee = self.config.fee
        self.aggregate_key = self.config.aggregate_key
        self.share_key = self.config.share_key

    message = staticmethod(tbs.message_v1)

    def output(self, denomination: int, blinded: tbs.G1Point, tweak: bytes | None = None) -> bytes:
        """`MintOutput {amount, blind nonce}` (`tweak`: mintv2's only, not sent)."""
        return MintOutput(1 << denomination, tbs.to_bytes(blinded)).to_bytes()

    def input(self, note: Note) -> bytes:
        return MintInput(note.amount_msat, note.nonce, note.signature).to_bytes()

    def shares_request(self, txid: str, start: int, end: int) -> tuple[str, Any]:
        return "await_outputs_outcomes", {"txid": txid, "idx_range": {"start": start, "end": end}}

    def recovery_shares_request(self, blinded: list[str]) -> tuple[str, Any]:
        raise EcashError("mint v1 notes are issued by their outpoint, recovered ones too")

    def decode_shares(self, answer: Any, count: int) -> list[tbs.G1Point] | None:
        if not isinstance(answer, list) or len(answer) != count:
            return None
        try:
            return [tbs.g1(outcome_share(from_serde(a), self.module)) for a in answer]
        except (DecodeError, tbs.TbsError, ValueError, TypeError):
            return None

    @staticmethod
    def parse(text: object) -> Received:
        oob = parse_oob_notes(text)
        notes = tuple(Note(_exponent(amount, "a note"), key, sig) for amount, sig, key in oob.notes)
        federation = oob.invite_federation_id or oob.federation_prefix or ""
        return Received(federation, notes, oob.notes_bytes())

    def format(self, federation_id: str, notes: Sequence[Note]) -> str:
        ordered = sorted(notes, key=lambda n: n.denomination)
        return str(
            OOBNotes(
                tuple((n.amount_msat, n.signature, n.secret) for n in ordered), federation_id[:8]
            )
        )
