"""BOLT11 invoices as the actor reads them: each exact string decoded once.

One payment reads its invoice at several steps (an LNv2 send: its checks, its payment, the swap
decision and the route hint it looks for; an LNv1 send likewise), and a decode costs some 4-7 ms
of CPU here (bit strings, and the public key recovered from the signature). `decode_invoice`
keeps the last `DECODED_CACHE_SIZE` decodings by their exact text. Callers only read what it
returns and must never change it. A string that does not decode raises each time (failures are
not kept); nothing in a decoding depends on the time it is made.
"""

from __future__ import annotations

import functools

from bolt11 import Bolt11
from bolt11 import decode as bolt11_decode

DECODED_CACHE_SIZE = 256


@functools.lru_cache(maxsize=DECODED_CACHE_SIZE)
def decode_invoice(text: str) -> Bolt11:
    """bolt11's `decode` of `text`, the same object for the same text."""
    return bolt11_decode(text)
