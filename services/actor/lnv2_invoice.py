"""What an LNv2 receive must be before we make its invoice (`POST /create_bolt11_invoice`,
lnv2_receive.Lnv2Receiver.create_invoice), checked as gatewayd's create_bolt11_invoice_v2 checks
it (fedimint-0.13.md §6.4): the CreateBolt11InvoicePayload's fields (our federation, amount,
expiry at most a day, a description or its hash) and its IncomingContract (refund key ours,
amount = invoice less our receive fee, not expired, its ciphertext verified); the receive fee we
announce; and the extension's request for the hold invoice. Nothing here keeps anything or talks
to the node: it only checks and builds.
"""

from __future__ import annotations

import asyncio
import time

from coincurve import PrivateKey

from fmclient.lnv2 import IncomingContract, Lnv2Error
from gwcore.errors import InvalidInput
from gwcore.values import fee_msat
from gwproto import gateway_lnrpc_pb2 as lnpb

MAX_INVOICE_EXPIRY_SECS = 86_400  # gatewayd's (lnv2-common MAX_INVOICE_EXPIRY_SECS)
# LNv2 clients refuse a gateway whose receive fee is above this (PaymentFee::RECEIVE_FEE_LIMIT)
RECEIVE_FEE_LIMIT = {"base_msat": 50_000, "proportional_millionths": 5_000}


def receive_fee(fees: dict) -> dict:
    """The receive fee we announce: our fees, each part within what LNv2 clients accept."""
    return {k: min(int(fees[k]), limit) for k, limit in RECEIVE_FEE_LIMIT.items()}


def parse_payload(body: dict, federation_id: str) -> tuple[IncomingContract, int, dict, int]:
    """A CreateBolt11InvoicePayload for federation `federation_id` -> (contract, amount in msat,
    description, expiry in seconds), or InvalidInput saying what is wrong."""
    if body.get("federation_id") != federation_id:
        raise InvalidInput("federation_id is not this federation's")
    try:
        contract = IncomingContract.from_json(body.get("contract"))
    except Lnv2Error as exc:
        raise InvalidInput(f"contract: {exc}") from None
    amount, expiry, desc = body.get("amount"), body.get("expiry_secs"), body.get("description")
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount < 2**63:
        raise InvalidInput("amount is a positive number of msat")
    if not isinstance(expiry, int) or isinstance(expiry, bool) or expiry <= 0:
        raise InvalidInput("expiry_secs is a positive number of seconds")
    if expiry > MAX_INVOICE_EXPIRY_SECS:
        raise InvalidInput("the invoice expiry exceeds the maximum of one day")
    ok = isinstance(desc, dict) and len(desc) == 1
    if ok and isinstance(desc.get("Direct"), str):  # type: ignore[union-attr]
        ok = len(desc["Direct"].encode()) <= 639  # type: ignore[index]  # BOLT11's d tag
    elif ok and isinstance(desc.get("Hash"), str):  # type: ignore[union-attr]
        try:
            ok = len(bytes.fromhex(desc["Hash"])) == 32  # type: ignore[index]
        except ValueError:
            ok = False
    else:
        ok = False
    if not ok:
        raise InvalidInput('description is {"Direct": text} or {"Hash": 64 hex digits}')
    return contract, amount, desc, expiry  # type: ignore[return-value]


async def check_contract(
    contract: IncomingContract, amount: int, key: PrivateKey, fees: dict
) -> None:
    """The contract of an invoice of `amount` msat pays us (refund key `key`) our receive fee
    (of `fees`), has not expired and verifies; else InvalidInput saying why."""
    c = contract.commitment
    if c.refund_pk != key.public_key.format(compressed=True):
        raise InvalidInput("the incoming contract is keyed to another gateway")
    fee = receive_fee(fees)
    want = amount - fee_msat(fee, amount)
    if want <= 0:
        raise InvalidInput("zero amount incoming contracts are not supported")
    if c.amount_msat != want:
        raise InvalidInput(
            f"the contract amount does not pay our receive fee: {want} msat expected"
        )
    if c.expiration <= time.time():
        raise InvalidInput("the contract has already expired")
    if not await asyncio.to_thread(contract.verify):  # two pairings and a hash to G2
        raise InvalidInput("the contract is invalid (its ciphertext does not verify)")


def hold_invoice_request(
    payment_hash: str, amount: int, expiry: int, description: dict
) -> lnpb.CreateInvoiceRequest:
    """The extension's CreateInvoice for a checked payload: a hold invoice for the contract's
    payment hash, with the payload's description (a memo) or its hash."""
    req = lnpb.CreateInvoiceRequest(
        payment_hash=bytes.fromhex(payment_hash), amount_msat=amount, expiry_secs=expiry
    )
    if "Hash" in description:
        req.description_hash = bytes.fromhex(description["Hash"])
    else:
        req.memo = description["Direct"]
    return req
