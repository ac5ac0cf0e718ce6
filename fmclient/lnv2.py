"""LNv2, fedimint 0.13's default Lightning module: its client config, contracts, inputs and
outputs, and the JSON the gateway API carries (fedimint-lnv2-common-0.13.0).

    OutgoingContract {payment_image, amount: Amount (msat), expiration: u64 (block count),
                      claim_pk, refund_pk, ephemeral_pk: PublicKey}
    IncomingContract {commitment: Commitment {payment_image, amount, expiration_or_fee
                      (JSON "expiration": unix time), claim_pk, refund_pk, ephemeral_pk},
                      ciphertext: tpe::CipherText}
    PaymentImage = Hash(sha256) | Point(PublicKey)        (enums framed: variant ‖ len ‖ body)
    LightningOutputV0 = Outgoing(OutgoingContract) | Incoming(IncomingContract)
    LightningInputV0 = Outgoing(OutPoint, Claim(preimage) | Refund | Cancel(forfeit signature))
                     | Incoming(OutPoint, AggregateDecryptionKey)
    LightningInvoice = Bolt11(invoice string)

A contract's id is the SHA-256 of its encoding; the forfeit message of an outgoing contract is
its id (BIP340 by the claim key); a payer's `auth` is BIP340 by the refund key over the SHA-256
of the LightningInvoice's encoding. Checked against vectors from the real crates
(tests/fmclient/data/lnv2_vectors.json).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from coincurve import PrivateKey, PublicKeyXOnly

from . import tpe
from .encoding import DecodeError, Reader, Writer, encode
from .tbs import G1Point, g1, to_bytes
from .tx import v0, v0_variant
from .walletv2 import MAGIC


class Lnv2Error(ValueError):
    """A contract, input or body that is not valid LNv2; one line saying why."""


# -- the client config


@dataclass(frozen=True)
class Lnv2Config:
    tpe_agg_pk: G1Point
    tpe_pks: dict[int, G1Point]
    fee_base_msat: int
    fee_ppm: int
    network: str

    @classmethod
    def from_bytes(cls, body: bytes) -> Lnv2Config:
        r = Reader(body, "lnv2 config")
        agg = g1(r.raw(48))
        pks = r.map(lambda r2: r2.varint(0xFFFF), lambda r2: g1(r2.raw(48)))
        base, ppm, magic = r.varint(), r.varint(), r.raw(4)
        r.done()
        if magic not in MAGIC:
            raise Lnv2Error(f"unknown bitcoin network magic {magic.hex()}")
        return cls(agg, pks, base, ppm, MAGIC[magic])

    def fee_msat(self, amount_msat: int) -> int:
        """The module's fee on an input or output: 1 sat base (0 when the federation turned
        base fees off) + ppm."""
        return self.fee_base_msat + amount_msat * self.fee_ppm // 1_000_000


# -- contracts


@dataclass(frozen=True)
class PaymentImage:
    kind: str  # "Hash" | "Point"
    value: bytes  # 32-byte SHA-256 | 33-byte public key

    def put(self, w: Writer) -> None:
        w.framed(0 if self.kind == "Hash" else 1, self.value)

    @classmethod
    def get(cls, r: Reader) -> PaymentImage:
        variant, body = r.framed()
        if variant == 0:
            image = cls("Hash", body.raw(32))
        elif variant == 1:
            image = cls("Point", body.raw(33))
        else:
            raise Lnv2Error(f"unknown payment image variant {variant}")
        body.done()
        return image

    def json(self) -> dict:
        return {self.kind: self.value.hex()}

    @classmethod
    def from_json(cls, value: object) -> PaymentImage:
        if not isinstance(value, dict) or len(value) != 1:
            raise Lnv2Error("payment_image is {Hash: hex} or {Point: hex}")
        ((kind, text),) = value.items()
        size = {"Hash": 32, "Point": 33}.get(kind)
        data = _hex(text, size or 0, "payment_image")
        if size is None:
            raise Lnv2Error(f"unknown payment image {kind!r}")
        return cls(kind, data)

    def verify_preimage(self, preimage: bytes) -> bool:
        if self.kind == "Hash":
            return hashlib.sha256(preimage).digest() == self.value
        try:
            return PrivateKey(preimage).public_key.format(compressed=True) == self.value
        except ValueError:
            return False


@dataclass(frozen=True)
class OutgoingContract:
    payment_image: PaymentImage
    amount_msat: int
    expiration: int  # the federation's block count
    claim_pk: bytes
    refund_pk: bytes
    ephemeral_pk: bytes

    def to_bytes(self) -> bytes:
        return encode(
            lambda w: (
                self.payment_image.put(w),
                w.varint(self.amount_msat).varint(self.expiration),
                w.raw(self.claim_pk).raw(self.refund_pk).raw(self.ephemeral_pk),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> OutgoingContract:
        r = Reader(data, "outgoing contract")
        image = PaymentImage.get(r)
        out = cls(image, r.varint(), r.varint(), r.raw(33), r.raw(33), r.raw(33))
        r.done()
        return out

    @property
    def contract_id(self) -> bytes:
        return hashlib.sha256(self.to_bytes()).digest()

    def json(self) -> dict:
        return {
            "payment_image": self.payment_image.json(),
            "amount": self.amount_msat,
            "expiration": self.expiration,
            "claim_pk": self.claim_pk.hex(),
            "refund_pk": self.refund_pk.hex(),
            "ephemeral_pk": self.ephemeral_pk.hex(),
        }

    @classmethod
    def from_json(cls, value: object) -> OutgoingContract:
        d = _object(value, "contract", OUTGOING_FIELDS)
        return cls(
            PaymentImage.from_json(d["payment_image"]),
            _u64(d["amount"], "amount"),
            _u64(d["expiration"], "expiration"),
            *(_key(d[k], k) for k in ("claim_pk", "refund_pk", "ephemeral_pk")),
        )

    def forfeit_signature(self, claim_secret: bytes) -> bytes:
        """What the gateway answers when it cannot pay: the payer cancels with it at once."""
        return PrivateKey(claim_secret).sign_schnorr(self.contract_id)

    def verify_forfeit(self, signature: bytes) -> bool:
        return _verify_bip340(self.claim_pk, self.contract_id, signature)

    def verify_invoice_auth(self, invoice_hash: bytes, signature: bytes) -> bool:
        return _verify_bip340(self.refund_pk, invoice_hash, signature)


OUTGOING_FIELDS = ("payment_image", "amount", "expiration", "claim_pk", "refund_pk", "ephemeral_pk")


@dataclass(frozen=True)
class Commitment:
    payment_image: PaymentImage
    amount_msat: int
    expiration: int  # unix time (or u64::MAX - fee for LNURL receives)
    claim_pk: bytes
    refund_pk: bytes
    ephemeral_pk: bytes

    def to_bytes(self) -> bytes:
        return OutgoingContract(*self.__dict__.values()).to_bytes()  # the same layout

    @property
    def hash(self) -> bytes:
        return hashlib.sha256(self.to_bytes()).digest()


@dataclass(frozen=True)
class IncomingContract:
    commitment: Commitment
    ciphertext: tpe.CipherText

    def to_bytes(self) -> bytes:
        return self.commitment.to_bytes() + self.ciphertext.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> IncomingContract:
        cut = len(data) - tpe.CipherText.SIZE
        c = OutgoingContract.from_bytes(data[:cut])
        return cls(Commitment(*c.__dict__.values()), tpe.CipherText.from_bytes(data[cut:]))

    @property
    def contract_id(self) -> bytes:
        return hashlib.sha256(self.to_bytes()).digest()

    def verify(self) -> bool:
        """The ciphertext is bound to this commitment (a pairing check)."""
        return tpe.verify_ciphertext(self.ciphertext, self.commitment.hash)

    def decrypt(self, aggregate_dk: G1Point) -> bytes | None:
        """The preimage, or None when the key does not open it to the payment image."""
        preimage = tpe.decrypt_preimage(self.ciphertext, aggregate_dk)
        return preimage if self.commitment.payment_image.verify_preimage(preimage) else None

    def json(self) -> dict:
        c = self.commitment
        return {
            "commitment": {
                "payment_image": c.payment_image.json(),
                "amount": c.amount_msat,
                "expiration": c.expiration,
                "claim_pk": c.claim_pk.hex(),
                "refund_pk": c.refund_pk.hex(),
                "ephemeral_pk": c.ephemeral_pk.hex(),
            },
            "ciphertext": {
                "encrypted_preimage": list(self.ciphertext.encrypted_preimage),
                "pk": self.ciphertext.pk_bytes.hex(),
                "signature": self.ciphertext.signature_bytes.hex(),
            },
        }

    @classmethod
    def from_json(cls, value: object) -> IncomingContract:
        d = _object(value, "contract", ("commitment", "ciphertext"))
        c = OutgoingContract.from_json(d["commitment"])
        ct = _object(d["ciphertext"], "ciphertext", ("encrypted_preimage", "pk", "signature"))
        enc = ct["encrypted_preimage"]
        if not (isinstance(enc, list) and len(enc) == 32 and all(_byte(b) for b in enc)):
            raise Lnv2Error("ciphertext.encrypted_preimage is 32 numbers 0..255")
        try:
            ciphertext = tpe.CipherText(
                bytes(enc), _hex(ct["pk"], 48, "pk"), _hex(ct["signature"], 96, "signature")
            )
        except tpe.TbsError as exc:
            raise Lnv2Error(f"ciphertext: {exc}") from None
        return cls(Commitment(*c.__dict__.values()), ciphertext)


# -- invoices, inputs, outputs


def invoice_encoding(bolt11: str) -> bytes:
    """`LightningInvoice::Bolt11(invoice)`: variant 0, framed, the invoice as a string."""
    return encode(lambda w: w.framed(0, encode(lambda w2: w2.str(bolt11))))


def invoice_hash(bolt11: str) -> bytes:
    """What a payer's `auth` signs."""
    return hashlib.sha256(invoice_encoding(bolt11)).digest()


def outpoint_bytes(txid: str, out_idx: int) -> bytes:
    return encode(lambda w: w.raw(bytes.fromhex(txid)).varint(out_idx))


def outgoing_output(contract: OutgoingContract) -> bytes:
    return v0(encode(lambda w: w.framed(0, contract.to_bytes())))


def outgoing_contract_in(output: bytes) -> OutgoingContract | None:
    """The contract an lnv2 output funds, if it is an outgoing one (None for an incoming one or
    a variant this code does not know); DecodeError if the bytes are no lnv2 output."""
    found = v0_variant(output, "lnv2 output")
    if found is None or found[0] != 0:
        return None
    return OutgoingContract.from_bytes(found[1].raw(found[1].remaining()))


def incoming_contract_in(output: bytes) -> IncomingContract | None:
    """The contract an lnv2 output funds, if it is an incoming one; DecodeError if the bytes
    are no lnv2 output (or its contract is malformed)."""
    found = v0_variant(output, "lnv2 output")
    if found is None or found[0] != 1:
        return None
    try:
        return IncomingContract.from_bytes(found[1].raw(found[1].remaining()))
    except ValueError as exc:
        raise DecodeError(f"incoming contract: {exc}") from None


def incoming_spend_in(spend: bytes) -> tuple[str, int, bytes] | None:
    """(txid, out_idx, aggregate decryption key) of an lnv2 input that spends an incoming
    contract (`LightningInputV0::Incoming(OutPoint, AggregateDecryptionKey)`), else None."""
    found = v0_variant(spend, "lnv2 input")
    if found is None or found[0] != 1:
        return None
    fields = found[1]
    txid, out_idx, key = fields.raw(32).hex(), fields.varint(), fields.raw(48)
    fields.done()
    return txid, out_idx, key


def incoming_output(contract: IncomingContract) -> bytes:
    return v0(encode(lambda w: w.framed(1, contract.to_bytes())))


def claim_input(txid: str, out_idx: int, preimage: bytes) -> bytes:
    """Spend an outgoing contract with its preimage (signed by the claim key)."""
    return _outgoing_input(txid, out_idx, encode(lambda w: w.framed(0, bytes(preimage))))


def refund_input(txid: str, out_idx: int) -> bytes:
    """Spend an expired outgoing contract (signed by the refund key)."""
    return _outgoing_input(txid, out_idx, encode(lambda w: w.framed(1, b"")))


def cancel_input(txid: str, out_idx: int, forfeit: bytes) -> bytes:
    """Spend an outgoing contract the gateway forfeited (signed by the refund key)."""
    return _outgoing_input(txid, out_idx, encode(lambda w: w.framed(2, bytes(forfeit))))


def incoming_input(txid: str, out_idx: int, aggregate_dk: G1Point) -> bytes:
    """Spend a funded incoming contract with the aggregate decryption key (signed by the
    claim key when it decrypts to the preimage, by the refund key when it does not)."""
    body = outpoint_bytes(txid, out_idx) + to_bytes(aggregate_dk)
    return v0(encode(lambda w: w.framed(1, body)))


def _outgoing_input(txid: str, out_idx: int, witness: bytes) -> bytes:
    return v0(encode(lambda w: w.framed(0, outpoint_bytes(txid, out_idx) + witness)))


# -- checks


def _verify_bip340(pubkey: bytes, message: bytes, signature: bytes) -> bool:
    try:
        return PublicKeyXOnly(pubkey[1:]).verify(bytes(signature), message)
    except (ValueError, TypeError):
        return False


def _object(value: object, what: str, fields: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise Lnv2Error(f"{what} is an object")
    missing = [f for f in fields if f not in value]
    if missing:
        raise Lnv2Error(f"{what} lacks {', '.join(missing)}")
    return value


def _hex(value: object, size: int, what: str) -> bytes:
    try:
        data = bytes.fromhex(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise Lnv2Error(f"{what} is hex") from None
    if size and len(data) != size:
        raise Lnv2Error(f"{what} is {size} bytes")
    return data


def _key(value: object, what: str) -> bytes:
    data = _hex(value, 33, what)
    try:
        PublicKeyXOnly(data[1:])
        if data[0] not in (2, 3):
            raise ValueError
    except ValueError:
        raise Lnv2Error(f"{what} is not a compressed secp256k1 key") from None
    return data


def _u64(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
        raise Lnv2Error(f"{what} is a u64")
    return value


def _byte(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255
