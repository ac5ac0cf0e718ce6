"""What every e-cash module version gives `MintWallet` (fmclient/wallet.py): a note, the error of
bad e-cash, and the small interface ("dialect") one implementation per module version fills
(`fmclient.mintv1.Dialect` for `mint`, `fmclient.mintv2.Dialect` for `mintv2`).

Both versions' notes are worth a power of two msat, so a note is kept as its exponent
(`denomination`), its spend key (whose compressed public key is the nonce) and the federation's
signature (a G1 point) on the version's message of that nonce. The wallet does everything else
(fees, layout, signing, storing, combining shares) the same way for both.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from coincurve import PrivateKey

from . import tbs


class EcashError(ValueError):
    """Not an e-cash string, or notes that are not valid; one line saying why."""


@dataclass(frozen=True)
class Note:
    denomination: int  # worth 2^denomination msat
    secret: bytes  # the note's spend key; its public key is the nonce
    signature: bytes  # G1, compressed

    @property
    def amount_msat(self) -> int:
        return 1 << self.denomination

    @functools.cached_property
    def nonce(self) -> bytes:
        return PrivateKey(self.secret).public_key.format(compressed=True)


@dataclass(frozen=True)
class Received:
    """E-cash someone gives us, as a dialect reads it: `federation` is the issuing federation's
    id, or the first bytes of it (hex) when the string carries no more; `key` names the e-cash
    (the receive's operation id is derived from it)."""

    federation: str
    notes: tuple[Note, ...]
    key: bytes

    @property
    def amount_msat(self) -> int:
        return sum(n.amount_msat for n in self.notes)


class Dialect(Protocol):
    """One e-cash module version as `MintWallet` needs it. `denominations` are the exponents
    the wallet issues, ascending and contiguous; the smallest is also what a spend rounds up to."""

    kind: ClassVar[str]  # the module kind in the client config
    module: int  # its instance id
    spent_coin: int  # the variant of the module's input error "this note is already spent"
    denominations: Sequence[int]

    def __init__(self, module: int, body: bytes) -> None:
        """The module `module`'s client config (its consensus encoding)."""

    def fee(self, denomination: int) -> int:
        """The fee (msat) of one input or output note of this denomination."""

    def message(self, nonce: bytes) -> tbs.G1Point:
        """The point a note's nonce is signed as."""

    def aggregate_key(self, denomination: int) -> tbs.G2Point:
        """The federation's key for this denomination; EcashError if it has none."""

    def share_key(self, denomination: int, peer: int) -> tbs.G2Point:
        """A guardian's key share for this denomination; KeyError if it has none."""

    def output(self, denomination: int, blinded: tbs.G1Point, tweak: bytes | None = None) -> bytes:
        """The module's output (its V0) issuing a note of this blinded nonce (`tweak`: the
        note's mintv2 tweak, random if None; mint v1 has none)."""

    def input(self, note: Note) -> bytes:
        """The module's input (its V0) spending this note."""

    def shares_request(self, txid: str, start: int, end: int) -> tuple[str, Any]:
        """The API method and params fetching a guardian's signature shares of outputs
        start..end of an accepted transaction."""

    def recovery_shares_request(self, blinded: list[str]) -> tuple[str, Any]:
        """The API method and params fetching a guardian's signature shares of notes a recovery
        found, by their blinded messages (hex); EcashError where the version asks by outpoint."""

    def decode_shares(self, answer: Any, count: int) -> list[tbs.G1Point] | None:
        """A guardian's shares from its answer, in output order; None if malformed."""

    @staticmethod
    def parse(text: object) -> Received:
        """E-cash in this version's string forms; EcashError saying why not."""

    def format(self, federation_id: str, notes: Sequence[Note]) -> str:
        """Our notes as this version's e-cash string."""


def signed(
    note: Note,
    message: Callable[[bytes], tbs.G1Point],
    aggregate_key: Callable[[int], tbs.G2Point],
) -> bool:
    """The federation's signature on this note's nonce (as `message` makes it a point), under
    its denomination's key (`aggregate_key`, EcashError if there is none)."""
    try:
        signature = tbs.g1(note.signature)
        key = aggregate_key(note.denomination)
    except (tbs.TbsError, EcashError):
        return False
    return tbs.verify(message(note.nonce), signature, key)


def note_valid(dialect: Dialect, note: Note) -> bool:
    return signed(note, dialect.message, dialect.aggregate_key)


def parse_for(dialect: Dialect, others: Sequence[type[Dialect]], text: object) -> Received:
    """`dialect.parse(text)`; when that fails and another version reads the string, the error
    says so (e-cash of the federation's other module, or of another federation's)."""
    try:
        return dialect.parse(text)
    except EcashError as exc:
        for other in others:
            if other.kind == dialect.kind:
                continue
            try:
                other.parse(text)
            except EcashError:
                continue
            raise EcashError(
                f"this is {other.kind} e-cash; this federation's e-cash module is {dialect.kind}"
            ) from None
        raise exc from None
