"""Invoices as a federation would make them: payee key outside the network, one route hint
through the gateway node's virtual channel (a short channel id no real channel has)."""

from __future__ import annotations

import hashlib
import os
import time

from bolt11 import Bolt11, MilliSatoshi, encode
from bolt11.models.features import Feature, Features, FeatureState
from bolt11.models.routehint import Route, RouteHint
from bolt11.models.tags import TagChar, Tags


def federation_invoice(
    gateway_pubkey: str, amount_msat: int, preimage: bytes, scid: int = 1
) -> str:
    tags = Tags()
    tags.add(TagChar.payment_hash, hashlib.sha256(preimage).hexdigest())
    tags.add(TagChar.payment_secret, os.urandom(32).hex())
    tags.add(TagChar.description, "federation receive")
    tags.add(TagChar.min_final_cltv_expiry, 18)
    tags.add(
        TagChar.features,
        Features.from_feature_list(
            {
                Feature.var_onion_optin: FeatureState.required,
                Feature.payment_secret: FeatureState.required,
            }
        ),
    )
    tags.add(TagChar.route_hint, RouteHint([Route(gateway_pubkey, f"0x0x{scid}", 0, 0, 40)]))
    invoice = Bolt11("bcrt", int(time.time()), tags, MilliSatoshi(amount_msat))
    return encode(invoice, os.urandom(32).hex())
