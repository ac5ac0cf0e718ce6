"""The actor's LNv2 receive (services/actor/lnv2_receive.py) with a real wallet file, real
incoming contracts (TPE ciphertexts under a real federation's key) and a real config; the
guardians, the node and the router faked. Each refusal of /create_bolt11_invoice says why and
keeps nothing and makes no invoice; the same payload again gets the same invoice; an HTLC the
checks refuse is cancelled and leaves the contract waiting, nothing funded."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from coincurve import PrivateKey

from fmclient import tpe
from fmclient.config import parse_client_config
from fmclient.lnv2 import Commitment, IncomingContract, Lnv2Config, PaymentImage
from fmclient.wallet import MintWallet
from gwcore.errors import InvalidInput
from gwproto import gateway_lnrpc_pb2 as lnpb
from services.actor.lnv2_invoice import receive_fee
from services.actor.lnv2_receive import Lnv2Receiver

DATA = Path(__file__).parents[1] / "fmclient" / "data"
CONFIG = parse_client_config(
    json.loads((DATA / "fedimintd_4_guardians.json").read_text())["client_config"]
)
LNV2 = Lnv2Config.from_bytes(CONFIG.modules[CONFIG.module_id("lnv2")].body)
KEY = PrivateKey()
FEES = {"base_msat": 0, "proportional_millionths": 10_000}  # 1 %: 0.5 % for receives


class FakeLightning:
    def __init__(self) -> None:
        self.invoices: list[lnpb.CreateInvoiceRequest] = []

    async def CreateInvoice(self, req: lnpb.CreateInvoiceRequest, timeout: float) -> Any:
        self.invoices.append(req)
        return lnpb.CreateInvoiceResponse(invoice=f"lnbcrt1{req.payment_hash.hex()[:8]}")

    async def GetNodeInfo(self, req: Any, timeout: float) -> Any:
        return lnpb.GetNodeInfoResponse(block_height=500)


def _contract(
    amount: int = 100_000, refund: bytes | None = None, **changes: Any
) -> IncomingContract:
    preimage = os.urandom(32)
    commitment = Commitment(
        PaymentImage("Hash", hashlib.sha256(preimage).digest()),
        amount - amount * 5_000 // 1_000_000,
        int(time.time()) + 3600,
        PrivateKey().public_key.format(),
        refund or KEY.public_key.format(),
        PrivateKey().public_key.format(),
    )
    commitment = dataclasses.replace(commitment, **changes)
    ct = tpe.encrypt_preimage(LNV2.tpe_agg_pk, os.urandom(32), preimage, commitment.hash)
    return IncomingContract(commitment, ct)


def _body(of: IncomingContract, **changes: Any) -> dict:
    return {
        "federation_id": CONFIG.federation_id,
        "contract": of.json(),
        "amount": 100_000,
        "description": {"Direct": "coffee"},
        "expiry_secs": 3600,
        **changes,
    }


@pytest.fixture
def receiver(tmp_path: Path) -> tuple[Lnv2Receiver, FakeLightning, list[str]]:
    ln, claimed = FakeLightning(), []

    async def claim(ph: str) -> None:
        claimed.append(ph)

    mint = MintWallet(tmp_path / "w.sqlite", CONFIG, None)  # type: ignore[arg-type]
    return Lnv2Receiver(mint, KEY, ln, FEES, CONFIG.federation_id, claim), ln, claimed


def test_the_receive_fee_stays_within_what_clients_accept() -> None:
    assert receive_fee(FEES) == {"base_msat": 0, "proportional_millionths": 5_000}
    small = {"base_msat": 1_000, "proportional_millionths": 100}
    assert receive_fee(small) == small
    assert receive_fee({"base_msat": 10**8, "proportional_millionths": 10**6}) == {
        "base_msat": 50_000,
        "proportional_millionths": 5_000,
    }


async def test_an_invoice_is_made_once_per_contract(receiver) -> None:  # type: ignore[no-untyped-def]
    rx, ln, claimed = receiver
    contract = _contract()
    ph = contract.commitment.payment_image.value.hex()
    invoice = await rx.create_invoice(_body(contract))
    assert await rx.create_invoice(_body(contract)) == invoice and len(ln.invoices) == 1
    (req,) = ln.invoices
    assert req.payment_hash.hex() == ph and req.amount_msat == 100_000 and req.memo == "coffee"
    assert req.expiry_secs == 3600 and claimed[0] == ph  # claimed at the router first
    assert rx.row(ph)["state"] == "created"  # type: ignore[index]
    # the same hash with anything else is refused, the first one kept
    with pytest.raises(InvalidInput, match="already registered"):
        await rx.create_invoice(_body(contract, amount=100_001))
    hashed = _contract()
    digest = hashlib.sha256(b"a long description").hexdigest()
    await rx.create_invoice(_body(hashed, description={"Hash": digest}))
    assert ln.invoices[-1].description_hash.hex() == digest


@pytest.mark.parametrize(
    ("contract", "changes", "why"),
    [
        (lambda: _contract(refund=PrivateKey().public_key.format()), {}, "another gateway"),
        (lambda: _contract(amount=100_100), {}, "does not pay our receive fee"),
        (lambda: _contract(expiration=int(time.time()) - 1), {}, "already expired"),
        (_contract, {"expiry_secs": 86_401}, "maximum of one day"),
        (_contract, {"expiry_secs": 0}, "expiry_secs"),
        (_contract, {"amount": -5}, "amount"),
        (_contract, {"description": {"Direct": "x" * 640}}, "description"),
        (_contract, {"description": {"Hash": "00"}}, "description"),
        (_contract, {"description": "coffee"}, "description"),
        (_contract, {"federation_id": "ef" * 32}, "federation_id"),
        (_contract, {"contract": {"commitment": {}}}, "contract"),
    ],
)
async def test_bad_contracts_are_refused_and_nothing_is_kept(
    receiver, contract, changes, why
) -> None:  # type: ignore[no-untyped-def]
    rx, ln, claimed = receiver
    with pytest.raises(InvalidInput, match=why):
        await rx.create_invoice(_body(contract(), **changes))
    assert rx.db.execute("SELECT COUNT(*) FROM lnv2_receives").fetchone()[0] == 0
    assert ln.invoices == [] and claimed == []


async def test_a_ciphertext_made_for_another_commitment_is_refused(receiver) -> None:  # type: ignore[no-untyped-def]
    rx, ln, _ = receiver
    a, b = _contract(), _contract()
    tampered = IncomingContract(a.commitment, b.ciphertext)
    with pytest.raises(InvalidInput, match="invalid"):
        await rx.create_invoice(_body(tampered))
    assert ln.invoices == []


async def test_htlcs_the_checks_refuse_are_cancelled_and_fund_nothing(receiver) -> None:  # type: ignore[no-untyped-def]
    rx, _, _ = receiver
    contract = _contract()
    ph = contract.commitment.payment_image.value.hex()
    await rx.create_invoice(_body(contract))
    htlc = {"payment_hash": ph, "incoming_amount_msat": 100_000, "incoming_expiry": 600}
    unknown = await rx.on_htlc({**htlc, "payment_hash": "ab" * 32})
    assert unknown["action"] == "cancel" and "no incoming contract" in unknown["reason"]
    short = await rx.on_htlc({**htlc, "incoming_amount_msat": 99_999})
    assert short["action"] == "cancel" and "100000 msat" in short["reason"]
    late = await rx.on_htlc({**htlc, "incoming_expiry": 501})
    assert late["action"] == "cancel" and "deadline" in late["reason"]
    broke = await rx.on_htlc(htlc)  # the wallet is empty: no funding
    assert broke["action"] == "cancel" and "cannot fund" in broke["reason"]
    assert rx.row(ph)["state"] == "created"  # type: ignore[index]  # the payer may try again
    assert rx.db.execute("SELECT COUNT(*) FROM operations").fetchone()[0] == 0


def _as_left(rx, ph: str, **fields: str) -> None:  # type: ignore[no-untyped-def]
    """The row as a finished receive leaves it (written directly: the steps are not run)."""
    sets = "".join(f", {k} = ?" for k in fields)
    rx.db.execute(
        f"UPDATE lnv2_receives SET state = 'decrypted'{sets} WHERE payment_hash = ?",
        (*fields.values(), ph),
    )


async def test_an_invoice_is_paid_once(receiver) -> None:  # type: ignore[no-untyped-def]
    """Once an HTLC (or a direct swap) has the preimage, that one is settled (again, when the
    router asks again) and any other HTLC of the hash is cancelled."""
    rx, _, _ = receiver
    contract = _contract()
    ph = contract.commitment.payment_image.value.hex()
    await rx.create_invoice(_body(contract))
    _as_left(rx, ph, htlc="7:1", preimage="11" * 32)  # as the first HTLC left it
    first = {"payment_hash": ph, "incoming_chan_id": 7, "htlc_id": 1}
    assert await rx.on_htlc(first) == {"action": "settle", "preimage": "11" * 32}
    again = await rx.on_htlc({**first, "htlc_id": 2})
    assert again["action"] == "cancel" and "already paid" in again["reason"]
    _as_left(rx, ph, htlc="swap")  # paid by a direct swap
    after_swap = await rx.on_htlc(first)
    assert after_swap["action"] == "cancel" and "already paid" in after_swap["reason"]
    assert (await rx.on_htlc({"payment_hash": ph, "swap": True}))["action"] == "settle"
