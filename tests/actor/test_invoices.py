"""The actor's BOLT11 decoding: once per exact string, failures never kept."""

from __future__ import annotations

import os

import pytest
from bolt11 import decode

from services.actor.invoices import decode_invoice

from .lnv1_fakes import invoice


def test_an_invoice_is_decoded_once_and_read_as_bolt11_reads_it() -> None:
    decode_invoice.cache_clear()
    text = invoice(os.urandom(32), 21_000, hint_scid=(600 << 40) | (1 << 16) | 1)
    first = decode_invoice(text)
    assert decode_invoice(text) is first
    assert decode_invoice.cache_info().misses == 1
    want = decode(text)
    assert (first.payment_hash, first.amount_msat, first.payee) == (
        want.payment_hash,
        want.amount_msat,
        want.payee,
    )
    assert first.route_hints[0].routes[-1].short_channel_id == "600x1x1"
    other = invoice(os.urandom(32), 21_000)
    assert decode_invoice(other).payment_hash != first.payment_hash


def test_a_bad_invoice_raises_every_time() -> None:
    for _ in range(2):
        with pytest.raises(Exception):  # noqa: B017 (bolt11 raises its own kinds)
            decode_invoice("lnbcrt1garbage")
