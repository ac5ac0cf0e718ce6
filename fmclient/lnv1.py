"""LNv1, fedimint's "ln" module (fedimint-ln-common-0.13.0): its client config and contracts
(encodings, ids, JSON both ways as the guardians answer them). The module's inputs, outputs,
outcomes and the guardians' answers are `fmclient.lnv1_tx`; the gateway's own messages
(registration, `/pay_invoice`) are `fmclient.lnv1_gateway`; `Lnv1Error` and the checks of JSON
values they all share are `fmclient.lnv1_checks`.

    OutgoingContract {hash, gateway_key, timelock: u32 (block count), user_key, cancelled}
        id = SHA-256(hash ‖ gateway_key ‖ BigSize(timelock) ‖ user_key): `cancelled` left out
        cancellation message = SHA-256(BigSize(30) ‖ "outgoing contract cancellation" ‖ id)
    IncomingContractOffer {amount, hash, encrypted_preimage, expiry_time: Option<u64>}
    IncomingContract {hash, encrypted_preimage, decrypted_preimage, gateway_key}; id = hash
        decrypted_preimage = Pending | Some(PreimageKey: 33 bytes) | Invalid
        encrypted_preimage: threshold_crypto Ciphertext, encoded as Vec<u8> of U(48) ‖ W(96) ‖ V
        (its JSON: [[U], [V], [W]] as byte lists)
    FundedContract = Incoming({contract, out_point}) | Outgoing(OutgoingContract)
    ContractAccount {amount, contract: FundedContract}

The preimage a funded incoming contract decrypts to is the payer's 33-byte PreimageKey; the
Lightning preimage is its SHA-256 (the guardians answer that one). Checked against vectors from
the real crates (tests/fmclient/data/lnv1_vectors.json).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from coincurve import PrivateKey

from .encoding import Reader, Writer, encode
from .lnv1_checks import Lnv1Error, byte_list, hex_bytes, obj, pubkey, uint, verify_bip340
from .walletv2 import MAGIC

CANCELLATION_TAG = b"outgoing contract cancellation"
NETWORK_BY_NAME = {
    name: magic for magic, name in MAGIC.items() if magic != bytes.fromhex("1c163f28")
}


# -- the client config


@dataclass(frozen=True)
class Lnv1Config:
    threshold_pub_key: bytes  # threshold_crypto G1, 48 bytes
    contract_input_fee_msat: int
    contract_output_fee_msat: int
    network: str

    @classmethod
    def from_bytes(cls, body: bytes) -> Lnv1Config:
        r = Reader(body, "ln config")
        tpk, fee_in, fee_out = r.raw(48), r.varint(), r.varint()
        magic = r.varint(0xFFFFFFFF).to_bytes(4, "little")  # the legacy network wrapper
        r.done()
        if magic not in MAGIC:
            raise Lnv1Error(f"unknown bitcoin network magic {magic.hex()}")
        return cls(tpk, fee_in, fee_out, MAGIC[magic])

    def to_bytes(self) -> bytes:
        magic = int.from_bytes(NETWORK_BY_NAME[self.network], "little")
        w = Writer().raw(self.threshold_pub_key)
        return (
            w.varint(self.contract_input_fee_msat)
            .varint(self.contract_output_fee_msat)
            .varint(magic)
            .getvalue()
        )


# -- contracts


@dataclass(frozen=True)
class OutgoingContract:
    hash: bytes
    gateway_key: bytes
    timelock: int
    user_key: bytes
    cancelled: bool = False

    def put(self, w: Writer) -> None:
        w.raw(self.hash).raw(self.gateway_key).varint(self.timelock).raw(self.user_key)
        w.bool(self.cancelled)

    @classmethod
    def get(cls, r: Reader) -> OutgoingContract:
        return cls(r.raw(32), r.raw(33), r.varint(0xFFFFFFFF), r.raw(33), r.bool())

    @property
    def contract_id(self) -> bytes:
        w = Writer().raw(self.hash).raw(self.gateway_key).varint(self.timelock).raw(self.user_key)
        return hashlib.sha256(w.getvalue()).digest()

    @property
    def cancellation_message(self) -> bytes:
        return hashlib.sha256(
            Writer().bytes(CANCELLATION_TAG).raw(self.contract_id).getvalue()
        ).digest()

    def cancel_signature(self, gateway_secret: bytes) -> bytes:
        """The gateway's signature on the cancellation: the user may refund at once."""
        return PrivateKey(gateway_secret).sign_schnorr(self.cancellation_message)

    def verify_cancel_signature(self, signature: bytes) -> bool:
        return verify_bip340(self.gateway_key, self.cancellation_message, signature)

    def json(self) -> dict:
        return {
            "hash": self.hash.hex(),
            "gateway_key": self.gateway_key.hex(),
            "timelock": self.timelock,
            "user_key": self.user_key.hex(),
            "cancelled": self.cancelled,
        }

    @classmethod
    def from_json(cls, value: object) -> OutgoingContract:
        d = obj(
            value, "outgoing contract", ("hash", "gateway_key", "timelock", "user_key", "cancelled")
        )
        if not isinstance(d["cancelled"], bool):
            raise Lnv1Error("cancelled is true or false")
        return cls(
            hex_bytes(d["hash"], 32, "hash"),
            pubkey(d["gateway_key"], "gateway_key"),
            uint(d["timelock"], "timelock", 0xFFFFFFFF),
            pubkey(d["user_key"], "user_key"),
            d["cancelled"],
        )


@dataclass(frozen=True)
class EncryptedPreimage:
    """A threshold_crypto ciphertext: U (G1, 48 bytes), W (G2, 96 bytes), V (the payload)."""

    data: bytes  # U ‖ W ‖ V, as its consensus encoding carries it

    def put(self, w: Writer) -> None:
        w.bytes(self.data)

    @classmethod
    def get(cls, r: Reader) -> EncryptedPreimage:
        data = r.bytes()
        if len(data) < 48 + 96:
            raise r.fail("a ciphertext is at least 144 bytes")
        return cls(data)

    def json(self) -> list:
        return [list(self.data[:48]), list(self.data[144:]), list(self.data[48:144])]

    @classmethod
    def from_json(cls, value: object) -> EncryptedPreimage:
        ok = isinstance(value, list) and len(value) == 3
        parts = [byte_list(p, "encrypted_preimage") for p in value] if ok else []  # type: ignore[union-attr]
        if not ok or len(parts[0]) != 48 or len(parts[2]) != 96:
            raise Lnv1Error("encrypted_preimage is [[48 bytes], [bytes], [96 bytes]]")
        return cls(parts[0] + parts[2] + parts[1])


PENDING, INVALID = "pending", "invalid"  # a DecryptedPreimage is one of these or a 33-byte key


def _put_decrypted(w: Writer, state: str | bytes) -> None:
    if isinstance(state, bytes):
        w.framed(1, state)
    else:
        w.framed({PENDING: 0, INVALID: 2}[state], b"")


def get_decrypted(r: Reader) -> str | bytes:
    """A DecryptedPreimage read (an ln output outcome carries one too: `fmclient.lnv1_tx`)."""
    variant, body = r.framed()
    if variant == 1:
        key = body.raw(33)
    elif variant in (0, 2):
        key = None
    else:
        raise Lnv1Error(f"unknown decrypted preimage variant {variant}")
    body.done()
    return key if key is not None else (PENDING if variant == 0 else INVALID)


def _decrypted_json(state: str | bytes) -> Any:
    return {"Some": list(state)} if isinstance(state, bytes) else state.capitalize()


def _decrypted_from_json(value: object) -> str | bytes:
    if value in ("Pending", "Invalid"):
        return str(value).lower()
    if isinstance(value, dict) and set(value) == {"Some"}:
        key = byte_list(value["Some"], "decrypted_preimage")
        if len(key) == 33:
            return key
    raise Lnv1Error('decrypted_preimage is "Pending", "Invalid" or {"Some": [33 bytes]}')


@dataclass(frozen=True)
class IncomingContractOffer:
    amount_msat: int
    hash: bytes
    encrypted_preimage: EncryptedPreimage
    expiry_time: int | None

    def put(self, w: Writer) -> None:
        w.varint(self.amount_msat).raw(self.hash)
        self.encrypted_preimage.put(w)
        w.option(self.expiry_time, Writer.varint)

    @classmethod
    def get(cls, r: Reader) -> IncomingContractOffer:
        return cls(r.varint(), r.raw(32), EncryptedPreimage.get(r), r.option(Reader.varint))

    def json(self) -> dict:
        return {
            "amount": self.amount_msat,
            "hash": self.hash.hex(),
            "encrypted_preimage": self.encrypted_preimage.json(),
            "expiry_time": self.expiry_time,
        }

    @classmethod
    def from_json(cls, value: object) -> IncomingContractOffer:
        d = obj(value, "offer", ("amount", "hash", "encrypted_preimage"))
        expiry = d.get("expiry_time")
        return cls(
            uint(d["amount"], "amount"),
            hex_bytes(d["hash"], 32, "hash"),
            EncryptedPreimage.from_json(d["encrypted_preimage"]),
            None if expiry is None else uint(expiry, "expiry_time"),
        )


@dataclass(frozen=True)
class IncomingContract:
    hash: bytes
    encrypted_preimage: EncryptedPreimage
    decrypted_preimage: str | bytes  # PENDING | INVALID | the 33-byte preimage key
    gateway_key: bytes

    @property
    def contract_id(self) -> bytes:
        return self.hash

    @classmethod
    def funding(cls, offer: IncomingContractOffer, gateway_key: bytes) -> IncomingContract:
        """The contract a gateway funds to buy the offer's preimage."""
        return cls(offer.hash, offer.encrypted_preimage, PENDING, gateway_key)

    def put(self, w: Writer) -> None:
        w.raw(self.hash)
        self.encrypted_preimage.put(w)
        _put_decrypted(w, self.decrypted_preimage)
        w.raw(self.gateway_key)

    @classmethod
    def get(cls, r: Reader) -> IncomingContract:
        return cls(r.raw(32), EncryptedPreimage.get(r), get_decrypted(r), r.raw(33))

    def json(self) -> dict:
        return {
            "hash": self.hash.hex(),
            "encrypted_preimage": self.encrypted_preimage.json(),
            "decrypted_preimage": _decrypted_json(self.decrypted_preimage),
            "gateway_key": self.gateway_key.hex(),
        }

    @classmethod
    def from_json(cls, value: object) -> IncomingContract:
        d = obj(
            value,
            "incoming contract",
            ("hash", "encrypted_preimage", "decrypted_preimage", "gateway_key"),
        )
        return cls(
            hex_bytes(d["hash"], 32, "hash"),
            EncryptedPreimage.from_json(d["encrypted_preimage"]),
            _decrypted_from_json(d["decrypted_preimage"]),
            pubkey(d["gateway_key"], "gateway_key"),
        )


Contract = OutgoingContract | IncomingContract


@dataclass(frozen=True)
class ContractAccount:
    """A funded contract as the guardians keep it; `out_point` (txid hex, index) is the
    funding output of an incoming contract, None for an outgoing one."""

    amount_msat: int
    contract: Contract
    out_point: tuple[str, int] | None = None

    @property
    def contract_id(self) -> bytes:
        return self.contract.contract_id

    def put(self, w: Writer) -> None:
        def body(w2: Writer) -> None:
            self.contract.put(w2)
            if self.out_point is not None:
                w2.raw(bytes.fromhex(self.out_point[0])).varint(self.out_point[1])

        w.varint(self.amount_msat).framed(isinstance(self.contract, OutgoingContract), encode(body))

    @classmethod
    def get(cls, r: Reader) -> ContractAccount:
        amount = r.varint()
        variant, body = r.framed()
        if variant == 0:
            c: Contract = IncomingContract.get(body)
            out_point: tuple[str, int] | None = (body.raw(32).hex(), body.varint())
        elif variant == 1:
            c, out_point = OutgoingContract.get(body), None
        else:
            raise Lnv1Error(f"unknown funded contract variant {variant}")
        body.done()
        return cls(amount, c, out_point)

    def json(self) -> dict:
        if isinstance(self.contract, OutgoingContract):
            return {"amount": self.amount_msat, "contract": {"Outgoing": self.contract.json()}}
        txid, idx = self.out_point or ("", 0)
        funded = {"contract": self.contract.json(), "out_point": {"txid": txid, "out_idx": idx}}
        return {"amount": self.amount_msat, "contract": {"Incoming": funded}}

    @classmethod
    def from_json(cls, value: object) -> ContractAccount:
        d = obj(value, "contract account", ("amount", "contract"))
        amount, c = uint(d["amount"], "amount"), d["contract"]
        if isinstance(c, dict) and set(c) == {"Outgoing"}:
            return cls(amount, OutgoingContract.from_json(c["Outgoing"]))
        if isinstance(c, dict) and set(c) == {"Incoming"}:
            f = obj(c["Incoming"], "funded incoming contract", ("contract", "out_point"))
            p = obj(f["out_point"], "out_point", ("txid", "out_idx"))
            out_point = (hex_bytes(p["txid"], 32, "txid").hex(), uint(p["out_idx"], "out_idx"))
            return cls(amount, IncomingContract.from_json(f["contract"]), out_point)
        raise Lnv1Error('contract is {"Outgoing": …} or {"Incoming": …}')


def contract_bytes(contract: Contract) -> bytes:
    """`Contract::Incoming | Contract::Outgoing`, framed."""
    return encode(lambda w: w.framed(isinstance(contract, OutgoingContract), encode(contract.put)))
