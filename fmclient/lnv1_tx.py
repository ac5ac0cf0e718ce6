"""LNv1 in the federation's transactions and API (fedimint-ln-common-0.13.0): the ln module's
inputs and outputs, their outcomes, and the guardians' answers about accounts, offers and
decryptions. The contracts they carry are `fmclient.lnv1`.

    LightningInputV0 {contract_id, amount, witness: Option<Preimage (32 bytes)>}
    LightningOutputV0 = Contract({amount, contract: Incoming | Outgoing}) | Offer(offer)
                      | CancelOutgoing {contract id, gateway_signature (BIP340)}
        (an output funding a contract is read back by `contract_in`: the recovery's scan of
        the session history, services/actor/lnv1_inflight.py)

Checked against vectors from the real crates (tests/fmclient/data/lnv1_vectors.json).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .encoding import DecodeError, Reader, Writer, encode
from .lnv1 import (
    INVALID,
    PENDING,
    Contract,
    ContractAccount,
    IncomingContract,
    IncomingContractOffer,
    OutgoingContract,
    contract_bytes,
    get_decrypted,
)
from .lnv1_checks import Lnv1Error, byte_list, obj, uint
from .tx import v0, v0_variant

# -- inputs, outputs, outcomes


def lightning_input(contract_id: bytes, amount_msat: int, preimage: bytes | None) -> bytes:
    """Spend a contract account: an outgoing one with its preimage (signed by the gateway key),
    an incoming one whose decryption failed with none (signed by the gateway key too)."""
    return v0(Writer().raw(contract_id).varint(amount_msat).option(preimage, Writer.raw).getvalue())


def contract_output(amount_msat: int, contract: Contract) -> bytes:
    body = Writer().varint(amount_msat).raw(contract_bytes(contract)).getvalue()
    return v0(encode(lambda w: w.framed(0, body)))


def contract_in(output: bytes) -> tuple[int, Contract] | None:
    """(amount, contract) of an ln output that funds a contract (`contract_output` read back:
    an incoming one a gateway funded, or an outgoing one a payer funded); None for an offer, a
    cancellation or a version or variant this code does not know; Lnv1Error if the bytes are
    no ln output."""
    try:
        found = v0_variant(output, "ln output")
        if found is None or found[0] != 0:
            return None
        inner = found[1]
        amount = inner.varint()
        kind, body = inner.framed()
        inner.done()
        if kind not in (0, 1):
            return None
        contract: Contract = (IncomingContract if kind == 0 else OutgoingContract).get(body)
        body.done()
    except DecodeError as exc:
        raise Lnv1Error(str(exc)) from None
    return amount, contract


def outgoing_contract_in(output: bytes) -> tuple[int, OutgoingContract] | None:
    """`contract_in` for an outgoing contract only."""
    found = contract_in(output)
    return found if found is None or isinstance(found[1], OutgoingContract) else None  # type: ignore[return-value]


def incoming_contract_in(output: bytes) -> tuple[int, IncomingContract] | None:
    """`contract_in` for an incoming contract only."""
    found = contract_in(output)
    return found if found is None or isinstance(found[1], IncomingContract) else None  # type: ignore[return-value]


def offer_output(offer: IncomingContractOffer) -> bytes:
    return v0(encode(lambda w: w.framed(1, encode(offer.put))))


def cancel_outgoing_output(contract_id: bytes, gateway_signature: bytes) -> bytes:
    """Mark an outgoing contract cancelled (zero value, no fee): its user refunds at once."""
    return v0(encode(lambda w: w.framed(2, bytes(contract_id) + bytes(gateway_signature))))


@dataclass(frozen=True)
class OutputOutcome:
    kind: str  # "contract" | "offer" | "cancel_outgoing"
    id: bytes  # contract id (offer id = its payment hash)
    decrypted: str | bytes | None = None  # an incoming contract's decryption; None otherwise

    @classmethod
    def from_bytes(cls, data: bytes) -> OutputOutcome:
        r = Reader(data, "ln output outcome")
        version, body = r.framed()
        r.done()
        if version != 0:
            raise Lnv1Error(f"unknown ln output outcome version {version}")
        variant, inner = body.framed()
        body.done()
        if variant == 0:
            cid = inner.raw(32)
            kind, outcome = inner.framed()
            out = cls("contract", cid, get_decrypted(outcome) if kind == 0 else None)
            if kind == 1:
                outcome.done()
        elif variant in (1, 2):
            out = cls("offer" if variant == 1 else "cancel_outgoing", inner.raw(32))
        else:
            raise Lnv1Error(f"unknown ln output outcome variant {variant}")
        inner.done()
        return out


# -- the guardians' answers (module_<ln>_<endpoint>)


def parse_account(answer: object) -> ContractAccount | None:
    """`account`: Option<ContractAccount>; `await_account` answers the account itself."""
    return None if answer is None else ContractAccount.from_json(answer)


async def gateway_account(
    api: Any, module: int, contract_id: str, kind: type, gateway_key: bytes
) -> ContractAccount | None:
    """The ln module's account of `contract_id` (hex) when its contract is a `kind`
    (IncomingContract or OutgoingContract) whose gateway key is `gateway_key`; else None."""
    account = parse_account(await api.current_consensus(f"module_{module}_account", contract_id))
    if account is None or not isinstance(account.contract, kind):
        return None
    return account if account.contract.gateway_key == gateway_key else None


def parse_offer(answer: object) -> IncomingContractOffer | None:
    """`offer`: Option<IncomingContractOffer>; `await_offer` answers the offer itself."""
    return None if answer is None else IncomingContractOffer.from_json(answer)


def parse_decryption(answer: object) -> tuple[ContractAccount, bytes | str]:
    """`await_preimage_decryption` → (IncomingContractAccount, Option<Preimage>) and
    `get_decrypted_preimage_status` → (…, Pending | Some(Preimage) | Invalid): the account and
    the Lightning preimage (32 bytes), PENDING or INVALID."""
    if not (isinstance(answer, list) and len(answer) == 2):
        raise Lnv1Error("a decryption answer is [account, preimage]")
    d = obj(answer[0], "incoming contract account", ("amount", "contract"))
    account = ContractAccount(
        uint(d["amount"], "amount"), IncomingContract.from_json(d["contract"])
    )
    status = answer[1]
    if isinstance(status, dict) and set(status) == {"Some"}:
        status = status["Some"]
    if status is None or status == "Invalid":
        return account, INVALID
    if status == "Pending":
        return account, PENDING
    preimage = byte_list(status, "preimage")
    if len(preimage) != 32:
        raise Lnv1Error("a preimage is 32 bytes")
    return account, preimage
