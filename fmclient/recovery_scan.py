"""What fedimint 0.13's client modules look for when they recover from the seed alone: pure scans
of a module's recovery items (the log every guardian keeps of the module's outputs and inputs,
served in slices), one per module, each a copy of its crate's state machine. No I/O: the driver
(fmclient/recovery.py) downloads the slices, feeds them here in order, and persists `to_json()`
after each slice, so a crash resumes where it was.

- `MintV1Scan`, fedimint-mint-client `RecoveryStateV2` (backup/recovery.py:560-680): per amount
  tier a pool of the next GAP_LIMIT (100) blind nonces our note secrets give (module/0/index/
  amount), keyed by (amount, hash160 of the blind nonce), made when the tier's first output
  comes (the crate makes every tier's at the start: the same pools, found alike); an output naming one is our note,
  pending until an input names its nonce (hash160 of the nonce); each find tops the tier's pool
  up to GAP_LIMIT past the index last seen (the crate's own arithmetic, kept as is). Finalized:
  the unspent notes (amount, index) and each tier's next index, the last seen + 1.
- `MintV2Scan`, fedimint-mintv2-client `recover` (lib.rs:263-320): an output whose tweak passes
  our filter and whose blinded message (module/denomination tweaked) hashes to its nonce hash is
  ours; an input naming its nonce's hash spends it.
- `WalletV1Scan`, fedimint-wallet-client `RecoveryStateV2` (backup.rs:120-175): the peg-in
  scripts of tweak indexes 0..FEDERATION_RECOVER_MAX_GAP (50), refilled past each index seen in
  a claimed peg-in; the next index is the last used + RECOVER_NUM_IDX_ADD_TO_LAST_USED (8).

Never: decide what the gateway holds (the driver asks the federation for the notes' signatures)
or keep a secret in `to_json()` (only indexes, hashes and tweaks, from which the secrets are
derived again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from coincurve import PrivateKey

from gwcore.bitcoin_address import hash160

from . import derive, tbs
from .derive import DerivableSecret

GAP_LIMIT = 100  # fedimint-mint-client backup/recovery.py GAP_LIMIT
FEDERATION_RECOVER_MAX_GAP = 50  # fedimint-wallet-client backup.rs
RECOVER_NUM_IDX_ADD_TO_LAST_USED = 8  # fedimint-wallet-client backup.rs


@dataclass(frozen=True)
class MintV1Output:
    amount_msat: int
    blind_nonce_hash: bytes  # hash160 of the blind nonce (a G1 point, compressed)


@dataclass(frozen=True)
class MintV1Input:
    nonce_hash: bytes  # hash160 of the note's nonce (a compressed secp256k1 key)


@dataclass(frozen=True)
class MintV2Output:
    denomination: int
    nonce_hash: bytes  # hash160 of the blinded message
    tweak: bytes


@dataclass(frozen=True)
class MintV2Input:
    nonce_hash: bytes  # hash160 of the note's nonce


@dataclass(frozen=True)
class WalletV1Input:
    outpoint: str  # "txid:vout"
    script: bytes  # the peg-in address's scriptPubKey


def mint_v1_nonce_hashes(
    module: DerivableSecret, amount_msat: int, index: int
) -> tuple[bytes, bytes]:
    """(hash160 of the blind nonce, hash160 of the nonce) of our mint v1 note `index` of the
    tier `amount_msat` (NoteIssuanceRequest::new over new_note_secret_static)."""
    spend, r = derive.mint_v1_note_keys(derive.mint_v1_note_secret(module, amount_msat, index))
    nonce = PrivateKey(spend).public_key.format(compressed=True)
    blinded = tbs.to_bytes(tbs.blind(tbs.message_v1(nonce), r))
    return hash160(blinded), hash160(nonce)


class MintV1Scan:
    """fedimint-mint-client's slice recovery state (see the module docstring)."""

    def __init__(
        self,
        module: DerivableSecret,
        tiers: Iterable[int],
        nonces: Callable[[DerivableSecret, int, int], tuple[bytes, bytes]] = mint_v1_nonce_hashes,
    ) -> None:
        """`tiers`: every amount tier of the federation's mint config (the crate's
        `tbs_pks.tiers()`); `nonces`: the derivation (a seam for fast unit tests)."""
        self.module, self._nonces = module, nonces
        # (amount, blind nonce hash hex) -> (index, nonce hash hex)
        self.pending_nonces: dict[tuple[int, str], tuple[int, str]] = {}
        self.pending_outputs: dict[str, tuple[int, int]] = {}  # nonce hash hex -> (amount, index)
        self.next_pending: dict[int, int] = {}
        self.last_used: dict[int, int] = {}
        self._tier_set = set(tiers)

    def start(self) -> None:
        """Nothing yet: the crate's `RecoveryStateV2::new` makes the first pool, GAP_LIMIT nonces,
        of every tier at once; here a tier's is made when the first output of its amount comes
        (the same pool, since none of its nonces could have matched before): a federation's
        history names a few of its tiers, and each pool costs ~50 ms of CPU."""

    def _first_pool(self, amount: int) -> bool:
        """The tier's pool exists (made now if need be); False for an amount of no tier."""
        if amount not in self.next_pending:
            if amount not in self._tier_set:
                return False
            self._add(amount, GAP_LIMIT)
        return True

    def _add(self, amount: int, count: int) -> None:
        first = self.next_pending.get(amount, 0)
        self.next_pending[amount] = first + count
        for index in range(first, first + count):
            blind, nonce = self._nonces(self.module, amount, index)
            self.pending_nonces[(amount, blind.hex())] = (index, nonce.hex())

    def handle_output(self, item: MintV1Output) -> None:
        if not self._first_pool(item.amount_msat):
            return
        found = self.pending_nonces.pop((item.amount_msat, item.blind_nonce_hash.hex()), None)
        if found is None:
            return
        index, nonce = found
        amount = item.amount_msat
        # the crate's arithmetic: the gap counts from the last index seen *before* this one
        last = self.last_used.get(amount, index)
        self.last_used[amount] = max(last, index)
        missing = last + GAP_LIMIT - self.next_pending.get(amount, 0)
        if missing > 0:
            self._add(amount, missing)
        self.pending_outputs[nonce] = (amount, index)

    def handle_input(self, item: MintV1Input) -> None:
        self.pending_outputs.pop(item.nonce_hash.hex(), None)

    def handle(self, items: Iterable[object]) -> None:
        for item in items:
            if isinstance(item, MintV1Output):
                self.handle_output(item)
            elif isinstance(item, MintV1Input):
                self.handle_input(item)

    def unspent(self) -> list[tuple[int, int]]:
        """Our notes issued and not spent: (amount msat, index), in a stable order."""
        return sorted(self.pending_outputs.values())

    def next_indexes(self) -> dict[int, int]:
        """Each tier's next note index: the last one seen + 1 (tiers never seen: absent)."""
        return {amount: last + 1 for amount, last in self.last_used.items()}

    def to_json(self) -> dict:
        return {
            "pending_nonces": [[a, h, i, n] for (a, h), (i, n) in self.pending_nonces.items()],
            "pending_outputs": [[n, a, i] for n, (a, i) in self.pending_outputs.items()],
            "next_pending": [[a, i] for a, i in self.next_pending.items()],
            "last_used": [[a, i] for a, i in self.last_used.items()],
        }

    def load(self, state: dict) -> None:
        self.pending_nonces = {(a, h): (i, n) for a, h, i, n in state["pending_nonces"]}
        self.pending_outputs = {n: (a, i) for n, a, i in state["pending_outputs"]}
        self.next_pending = {a: i for a, i in state["next_pending"]}
        self.last_used = {a: i for a, i in state["last_used"]}


def mint_v2_ours(module: DerivableSecret, tweak_filter: bytes, item: MintV2Output) -> bytes | None:
    """The hash160 of the nonce of `item`'s note if it is ours, else None (check_tweak, then
    check_nonce against the blinded message our secret for that denomination and tweak gives)."""
    if not derive.mintv2_tweak_passes(item.tweak, tweak_filter):
        return None
    spend, r = derive.mintv2_note_keys(module, item.denomination, item.tweak)
    nonce = PrivateKey(spend).public_key.format(compressed=True)
    blinded = tbs.to_bytes(tbs.blind(tbs.message_sha256(nonce), r))
    return hash160(nonce) if hash160(blinded) == item.nonce_hash else None


class MintV2Scan:
    """fedimint-mintv2-client's recovery state: our notes found, by their nonce's hash."""

    def __init__(
        self,
        module: DerivableSecret,
        ours: Callable[[DerivableSecret, bytes, MintV2Output], bytes | None] = mint_v2_ours,
    ) -> None:
        self.module, self._ours = module, ours
        self.tweak_filter = derive.mintv2_tweak_filter(module)
        self.requests: dict[str, tuple[int, str]] = {}  # nonce hash hex -> (denomination, tweak)

    def start(self) -> None:
        """Nothing to prepare: the filter makes finding ours cheap."""

    def handle(self, items: Iterable[object]) -> None:
        for item in items:
            if isinstance(item, MintV2Output):
                nonce = self._ours(self.module, self.tweak_filter, item)
                if nonce is not None and nonce.hex() not in self.requests:  # duplicates ignored
                    self.requests[nonce.hex()] = (item.denomination, item.tweak.hex())
            elif isinstance(item, MintV2Input):
                self.requests.pop(item.nonce_hash.hex(), None)

    def unspent(self) -> list[tuple[int, bytes]]:
        """Our notes issued and not spent: (denomination, tweak), in a stable order."""
        return sorted((d, bytes.fromhex(t)) for d, t in self.requests.values())

    def to_json(self) -> dict:
        return {"requests": [[n, d, t] for n, (d, t) in self.requests.items()]}

    def load(self, state: dict) -> None:
        self.requests = {n: (d, t) for n, d, t in state["requests"]}


class WalletV1Scan:
    """fedimint-wallet-client's slice recovery state: which peg-in tweak indexes were used."""

    def __init__(self, script_of: Callable[[int], bytes]) -> None:
        """`script_of(index)`: the scriptPubKey of our peg-in address of tweak index `index`."""
        self._script_of = script_of
        self.pending: dict[str, int] = {}  # script hex -> tweak index
        self.next_pending = 0
        self.used: set[int] = set()
        self.claimed: dict[int, list[str]] = {}  # tweak index -> outpoints claimed

    def start(self) -> None:
        self._refill(FEDERATION_RECOVER_MAX_GAP)

    def _refill(self, up_to: int) -> None:
        while self.next_pending < up_to:
            self.pending[self._script_of(self.next_pending).hex()] = self.next_pending
            self.next_pending += 1

    def handle(self, items: Iterable[object]) -> None:
        for item in items:
            if not isinstance(item, WalletV1Input):
                continue
            index = self.pending.get(item.script.hex())
            if index is None:
                continue
            self.used.add(index)
            self.claimed.setdefault(index, []).append(item.outpoint)
            self._refill(index + FEDERATION_RECOVER_MAX_GAP)

    def new_start_index(self) -> int:
        """The next tweak index to hand out: the last used + 8 (8 when none was used)."""
        return max(self.used, default=0) + RECOVER_NUM_IDX_ADD_TO_LAST_USED

    def claimed_outpoints(self) -> list[str]:
        return sorted(o for outs in self.claimed.values() for o in outs)

    def to_json(self) -> dict:
        return {
            "pending": [[s, i] for s, i in self.pending.items()],
            "next_pending": self.next_pending,
            "used": sorted(self.used),
            "claimed": [[i, outs] for i, outs in self.claimed.items()],
        }

    def load(self, state: dict) -> None:
        self.pending = {s: i for s, i in state["pending"]}
        self.next_pending = int(state["next_pending"])
        self.used = set(state["used"])
        self.claimed = {i: list(outs) for i, outs in state["claimed"]}
