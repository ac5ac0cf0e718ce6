"""What an LNv1 gateway says to a federation and hears from its users
(fedimint-ln-common-0.13.0 lib.rs, route_hints.rs; fedimint-ln-client-0.13.0 pay.rs; gatewayd's
fedimint-gw-client-0.13.0 lib.rs):

    LightningGateway {mint_channel_id (our scid for the federation), gateway_redeem_key,
        node_pub_key, lightning_alias, api (URL), route_hints: Vec<Vec<RouteHintHop>>,
        fees {base_msat, proportional_millionths} (u32 each), gateway_id, supports_private_payments}
    LightningGatewayAnnouncement {info, vetted, ttl {secs, nanos}, auth? {nonce, signature}}
    registration message = SHA-256("register-gateway" ‖ threshold_pub_key (48) ‖ BigSize(nonce)
        ‖ enc(info)), signed BIP340 by the gateway_id key; gatewayd's nonce is unix millis
    PayInvoicePayload (`POST /pay_invoice`) {federation_id, contract_id, payment_data:
        {"invoice": bolt11} | {"pruned_invoice": {...}}, preimage_auth}  (PaymentData is
        `rename_all = "snake_case"`; the CamelCase spelling is accepted too)

LNv1's fee is not LNv2's: base + amount / (1_000_000 // ppm), the divisor truncated (3000 ppm
on 1,000,000 msat is 3003 msat), as `FeeToAmount for RoutingFees` computes it; users lock that
much in their contracts and gatewayd checks it.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from coincurve import PrivateKey

from .encoding import Reader, Writer, encode
from .lnv1_checks import Lnv1Error, hex_bytes, obj, pubkey, uint, verify_bip340

REGISTRATION_TAG = b"register-gateway"
MAX_U32 = 0xFFFFFFFF
MAX_U64 = (1 << 64) - 1


def lnv1_fee_msat(base_msat: int, ppm: int, amount_msat: int) -> int:
    """`FeeToAmount for RoutingFees` (ln-common config.rs): the LNv1 gateway fee."""
    if ppm == 0:
        margin = 0
    else:
        divisor = 1_000_000 // ppm
        margin = MAX_U64 if divisor == 0 else amount_msat // divisor
    return min(base_msat + margin, MAX_U64)


def normalize_url(url: str) -> str:
    """The URL as fedimint's SafeUrl (the `url` crate) writes it back: scheme and host in lower
    case, no default port, "/" for an empty path. The registration signature covers this
    text, and guardians re-encode the URL they parsed, so it must already be in this form."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Lnv1Error(f"the gateway API URL {url!r} is not an http(s) URL")
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    port = "" if parts.port in (None, default) else f":{parts.port}"
    return urlunsplit((parts.scheme, host + port, parts.path or "/", parts.query, parts.fragment))


@dataclass(frozen=True)
class RouteHintHop:
    src_node_id: bytes
    short_channel_id: int
    base_msat: int = 0
    proportional_millionths: int = 0
    cltv_expiry_delta: int = 144
    htlc_minimum_msat: int | None = None
    htlc_maximum_msat: int | None = None

    def put(self, w: Writer) -> None:
        w.raw(self.src_node_id).varint(self.short_channel_id)
        w.varint(self.base_msat).varint(self.proportional_millionths).varint(self.cltv_expiry_delta)
        w.option(self.htlc_minimum_msat, Writer.varint).option(
            self.htlc_maximum_msat, Writer.varint
        )

    @classmethod
    def get(cls, r: Reader) -> RouteHintHop:
        return cls(
            r.raw(33), r.varint(), r.varint(MAX_U32), r.varint(MAX_U32), r.varint(0xFFFF),
            r.option(Reader.varint), r.option(Reader.varint),
        )  # fmt: skip

    def json(self) -> dict:
        return {
            "src_node_id": self.src_node_id.hex(),
            "short_channel_id": self.short_channel_id,
            "base_msat": self.base_msat,
            "proportional_millionths": self.proportional_millionths,
            "cltv_expiry_delta": self.cltv_expiry_delta,
            "htlc_minimum_msat": self.htlc_minimum_msat,
            "htlc_maximum_msat": self.htlc_maximum_msat,
        }

    @classmethod
    def from_json(cls, value: object) -> RouteHintHop:
        d = obj(value, "route hint hop", ("src_node_id", "short_channel_id", "cltv_expiry_delta"))
        lo, hi = d.get("htlc_minimum_msat"), d.get("htlc_maximum_msat")
        return cls(
            pubkey(d["src_node_id"], "src_node_id"),
            uint(d["short_channel_id"], "short_channel_id"),
            uint(d.get("base_msat", 0), "base_msat", MAX_U32),
            uint(d.get("proportional_millionths", 0), "proportional_millionths", MAX_U32),
            uint(d["cltv_expiry_delta"], "cltv_expiry_delta", 0xFFFF),
            None if lo is None else uint(lo, "htlc_minimum_msat"),
            None if hi is None else uint(hi, "htlc_maximum_msat"),
        )


RouteHint = tuple[RouteHintHop, ...]


def _put_hints(w: Writer, hints: tuple[RouteHint, ...]) -> None:
    w.vec(hints, lambda w2, hint: w2.vec(hint, lambda w3, hop: hop.put(w3)))


def _get_hints(r: Reader) -> tuple[RouteHint, ...]:
    return tuple(tuple(r.vec(RouteHintHop.get)) for _ in range(r.length()))


def _hints_from_json(value: object) -> tuple[RouteHint, ...]:
    if not isinstance(value, list) or not all(isinstance(h, list) for h in value):
        raise Lnv1Error("route_hints is a list of lists of hops")
    return tuple(tuple(RouteHintHop.from_json(hop) for hop in hint) for hint in value)


@dataclass(frozen=True)
class LightningGateway:
    mint_channel_id: int  # the scid users put in their invoices' route hint to reach us
    gateway_redeem_key: bytes
    node_pub_key: bytes
    lightning_alias: str
    api: str
    route_hints: tuple[RouteHint, ...]
    base_msat: int
    proportional_millionths: int
    gateway_id: bytes
    supports_private_payments: bool = False

    def put(self, w: Writer) -> None:
        w.varint(self.mint_channel_id).raw(self.gateway_redeem_key).raw(self.node_pub_key)
        w.str(self.lightning_alias).str(self.api)
        _put_hints(w, self.route_hints)
        w.varint(self.base_msat).varint(self.proportional_millionths)
        w.raw(self.gateway_id).bool(self.supports_private_payments)

    def to_bytes(self) -> bytes:
        return encode(self.put)

    @classmethod
    def get(cls, r: Reader) -> LightningGateway:
        return cls(
            r.varint(), r.raw(33), r.raw(33), r.str(), r.str(), _get_hints(r),
            r.varint(MAX_U32), r.varint(MAX_U32), r.raw(33), r.bool(),
        )  # fmt: skip

    @property
    def fees(self) -> dict[str, int]:
        return {
            "base_msat": self.base_msat,
            "proportional_millionths": self.proportional_millionths,
        }

    def json(self) -> dict:
        return {
            "mint_channel_id": self.mint_channel_id,
            "gateway_redeem_key": self.gateway_redeem_key.hex(),
            "node_pub_key": self.node_pub_key.hex(),
            "lightning_alias": self.lightning_alias,
            "api": self.api,
            "route_hints": [[hop.json() for hop in hint] for hint in self.route_hints],
            "fees": self.fees,
            "gateway_id": self.gateway_id.hex(),
            "supports_private_payments": self.supports_private_payments,
        }

    @classmethod
    def from_json(cls, value: object) -> LightningGateway:
        keys = ("mint_channel_id", "gateway_redeem_key", "node_pub_key", "lightning_alias", "api")
        d = obj(
            value,
            "gateway",
            (*keys, "route_hints", "fees", "gateway_id", "supports_private_payments"),
        )
        fees = obj(d["fees"], "fees", ("base_msat", "proportional_millionths"))
        if not (isinstance(d["lightning_alias"], str) and isinstance(d["api"], str)):
            raise Lnv1Error("lightning_alias and api are strings")
        if not isinstance(d["supports_private_payments"], bool):
            raise Lnv1Error("supports_private_payments is true or false")
        return cls(
            uint(d["mint_channel_id"], "mint_channel_id"),
            pubkey(d["gateway_redeem_key"], "gateway_redeem_key"),
            pubkey(d["node_pub_key"], "node_pub_key"),
            d["lightning_alias"],
            d["api"],
            _hints_from_json(d["route_hints"]),
            uint(fees["base_msat"], "base_msat", MAX_U32),
            uint(fees["proportional_millionths"], "proportional_millionths", MAX_U32),
            pubkey(d["gateway_id"], "gateway_id"),
            d["supports_private_payments"],
        )


def registration_message(threshold_pub_key: bytes, nonce: int, info: LightningGateway) -> bytes:
    """`create_gateway_registration_message`: what the gateway_id key signs."""
    w = Writer().raw(REGISTRATION_TAG).raw(threshold_pub_key).varint(nonce)
    info.put(w)
    return hashlib.sha256(w.getvalue()).digest()


@dataclass(frozen=True)
class Announcement:
    """A registration as sent (`register_gateway`) and as listed (`list_gateways`)."""

    info: LightningGateway
    ttl_secs: int
    vetted: bool = False
    nonce: int | None = None
    signature: bytes | None = None
    ttl_nanos: int = field(default=0, compare=False)

    @classmethod
    def signed(
        cls,
        info: LightningGateway,
        ttl_secs: int,
        gateway_id_secret: bytes,
        threshold_pub_key: bytes,
        nonce: int | None = None,
    ) -> Announcement:
        """Our registration, signed; the nonce is unix milliseconds unless given."""
        nonce = int(time.time() * 1000) if nonce is None else nonce
        message = registration_message(threshold_pub_key, nonce, info)
        return cls(
            info, ttl_secs, False, nonce, PrivateKey(gateway_id_secret).sign_schnorr(message)
        )

    def verify(self, threshold_pub_key: bytes) -> bool:
        """Guardians' rule: an unsigned announcement passes; a signed one must verify."""
        if self.nonce is None or self.signature is None:
            return self.nonce is None and self.signature is None
        message = registration_message(threshold_pub_key, self.nonce, self.info)
        return verify_bip340(self.info.gateway_id, message, self.signature)

    def json(self) -> dict:
        out: dict = {
            "info": self.info.json(),
            "vetted": self.vetted,
            "ttl": {"secs": self.ttl_secs, "nanos": self.ttl_nanos},
        }
        if self.nonce is not None and self.signature is not None:
            out["auth"] = {"nonce": self.nonce, "signature": self.signature.hex()}
        return out

    @classmethod
    def from_json(cls, value: object) -> Announcement:
        d = obj(value, "gateway announcement", ("info", "vetted", "ttl"))
        ttl = obj(d["ttl"], "ttl", ("secs", "nanos"))
        auth = d.get("auth")
        nonce = signature = None
        if auth is not None:
            a = obj(auth, "auth", ("nonce", "signature"))
            nonce, signature = uint(a["nonce"], "nonce"), hex_bytes(a["signature"], 64, "signature")
        if not isinstance(d["vetted"], bool):
            raise Lnv1Error("vetted is true or false")
        return cls(
            LightningGateway.from_json(d["info"]),
            uint(ttl["secs"], "ttl.secs"),
            d["vetted"],
            nonce,
            signature,
            uint(ttl["nanos"], "ttl.nanos", 999_999_999),
        )


def parse_gateways(answer: object) -> list[Announcement]:
    """`list_gateways` of one guardian."""
    if not isinstance(answer, list):
        raise Lnv1Error("list_gateways answers a list")
    return [Announcement.from_json(a) for a in answer]


# -- POST /pay_invoice


@dataclass(frozen=True)
class PrunedInvoice:
    amount_msat: int
    destination: bytes
    destination_features: bytes
    payment_hash: bytes
    payment_secret: bytes
    route_hints: tuple[RouteHint, ...]
    min_final_cltv_delta: int
    expiry_timestamp: int

    def put(self, w: Writer) -> None:
        w.varint(self.amount_msat).raw(self.destination).bytes(self.destination_features)
        w.raw(self.payment_hash).raw(self.payment_secret)
        _put_hints(w, self.route_hints)
        w.varint(self.min_final_cltv_delta).varint(self.expiry_timestamp)

    def json(self) -> dict:
        return {
            "amount": self.amount_msat,
            "destination": self.destination.hex(),
            "destination_features": self.destination_features.hex(),
            "payment_hash": self.payment_hash.hex(),
            "payment_secret": list(self.payment_secret),
            "route_hints": [[hop.json() for hop in hint] for hint in self.route_hints],
            "min_final_cltv_delta": self.min_final_cltv_delta,
            "expiry_timestamp": self.expiry_timestamp,
        }

    @classmethod
    def from_json(cls, value: object) -> PrunedInvoice:
        keys = ("amount", "destination", "payment_hash", "payment_secret", "route_hints")
        d = obj(value, "pruned_invoice", (*keys, "min_final_cltv_delta", "expiry_timestamp"))
        secret = d["payment_secret"]
        ok = isinstance(secret, list) and len(secret) == 32
        if not ok or not all(isinstance(b, int) and 0 <= b <= 255 for b in secret):
            raise Lnv1Error("payment_secret is 32 bytes")
        return cls(
            uint(d["amount"], "amount"),
            pubkey(d["destination"], "destination"),
            hex_bytes(d.get("destination_features", ""), 0, "destination_features"),
            hex_bytes(d["payment_hash"], 32, "payment_hash"),
            bytes(secret),
            _hints_from_json(d["route_hints"]),
            uint(d["min_final_cltv_delta"], "min_final_cltv_delta"),
            uint(d["expiry_timestamp"], "expiry_timestamp"),
        )


@dataclass(frozen=True)
class PayInvoicePayload:
    federation_id: str
    contract_id: bytes
    invoice: str | None  # the whole BOLT11, or None when pruned
    pruned: PrunedInvoice | None
    preimage_auth: bytes

    def json(self) -> dict:
        data = (
            {"invoice": self.invoice}
            if self.pruned is None
            else {"pruned_invoice": self.pruned.json()}
        )
        return {
            "federation_id": self.federation_id,
            "contract_id": self.contract_id.hex(),
            "payment_data": data,
            "preimage_auth": self.preimage_auth.hex(),
        }

    @classmethod
    def from_json(cls, value: object) -> PayInvoicePayload:
        d = obj(
            value,
            "pay_invoice body",
            ("federation_id", "contract_id", "payment_data", "preimage_auth"),
        )
        data = d["payment_data"]
        if not (isinstance(data, dict) and len(data) == 1):
            raise Lnv1Error('payment_data is {"invoice": bolt11} or {"pruned_invoice": {…}}')
        ((kind, inner),) = data.items()
        invoice, pruned = None, None
        if kind in ("invoice", "Invoice") and isinstance(inner, str) and inner:
            invoice = inner
        elif kind in ("pruned_invoice", "PrunedInvoice"):
            pruned = PrunedInvoice.from_json(inner)
        else:
            raise Lnv1Error('payment_data is {"invoice": bolt11} or {"pruned_invoice": {…}}')
        return cls(
            hex_bytes(d["federation_id"], 32, "federation_id").hex(),
            hex_bytes(d["contract_id"], 32, "contract_id"),
            invoice,
            pruned,
            hex_bytes(d["preimage_auth"], 32, "preimage_auth"),
        )
