"""Fedimint transactions (fedimint-core-0.13.0/src/transaction.rs).

`Transaction {inputs: Vec<DynInput>, outputs: Vec<DynOutput>, nonce: [u8; 8], signatures:
TransactionSignature}`; a module item is `BigSize(module instance id) ‖ BigSize(len) ‖ body`
and every module's input/output body is its extensible enum's `V0` (variant 0, framed).
txid = SHA-256(enc(inputs) ‖ enc(outputs) ‖ nonce), signatures excluded; one BIP340 signature
per input, in input order, over the txid by the key the input's module names
(`TransactionSignature::NaiveMultisig`, variant 0). `submit_transaction` takes and answers
`SerdeModuleEncoding`s (`to_serde`): the transaction, and `Result<TransactionId,
TransactionError>` (1 ‖ txid, or 0 ‖ the error enum).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from coincurve import PrivateKey

from .encoding import Reader, Writer, encode

TX_ERRORS = {
    0: "the transaction is unbalanced",
    1: "a signature is invalid",
    2: "the signature scheme is not supported",
    3: "the number of signatures is wrong",
    4: "an input is invalid",
    5: "an output is invalid",
}


class TxRejected(Exception):
    """The federation refused the transaction (definitely: nothing was spent)."""

    def __init__(
        self, variant: int, detail: str = "", module: int | None = None, error: int | None = None
    ) -> None:
        super().__init__(f"{TX_ERRORS.get(variant, f'error {variant}')}{detail}")
        self.variant, self.module, self.module_error = variant, module, error


def to_serde(data: bytes) -> list[str]:
    """A `SerdeModuleEncoding<T>` as JSON: a one-element array (the tuple struct), holding the
    hex of the consensus encoding of the `Vec<u8>` of T's bytes (its length, then them)."""
    return [encode(lambda w: w.bytes(data)).hex()]


def from_serde(value: object) -> bytes:
    if not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], str)):
        raise ValueError(f"not a SerdeModuleEncoding: {str(value)[:80]}")
    r = Reader(bytes.fromhex(value[0]), "SerdeModuleEncoding")
    data = r.bytes()
    r.done()
    return data


def v0(body: bytes) -> bytes:
    """A module's input/output/outcome enum, variant V0."""
    return encode(lambda w: w.framed(0, body))


def v0_variant(data: bytes, what: str) -> tuple[int, Reader] | None:
    """A module's input/output read back to its V0 enum: the variant and a reader of exactly
    its body; None for a later version; DecodeError if the bytes are not one."""
    r = Reader(data, what)
    version, body = r.framed()
    r.done()
    if version != 0:
        return None
    variant, inner = body.framed()
    body.done()
    return variant, inner


@dataclass(frozen=True)
class ModuleItem:
    module: int
    body: bytes  # the module's own encoding, V0 framing included

    def put(self, w: Writer) -> None:
        w.framed(self.module, self.body)


@dataclass
class Transaction:
    inputs: list[ModuleItem]
    outputs: list[ModuleItem]
    nonce: bytes = field(default_factory=lambda: os.urandom(8))
    signatures: list[bytes] = field(default_factory=list)

    @property
    def txid(self) -> str:
        return hashlib.sha256(
            encode(
                lambda w: (
                    w.vec(self.inputs, lambda w2, i: i.put(w2))
                    .vec(self.outputs, lambda w2, o: o.put(w2))
                    .raw(self.nonce)
                )
            )
        ).hexdigest()

    def sign(self, keys: list[bytes]) -> Transaction:
        """One BIP340 signature per input, by the secret key that input needs."""
        if len(keys) != len(self.inputs):
            raise ValueError("one key per input")
        msg = bytes.fromhex(self.txid)
        self.signatures = [PrivateKey(k).sign_schnorr(msg, os.urandom(32)) for k in keys]
        return self

    def to_bytes(self) -> bytes:
        sigs = encode(lambda w: w.vec(self.signatures, Writer.raw))
        return encode(
            lambda w: (
                w.vec(self.inputs, lambda w2, i: i.put(w2))
                .vec(self.outputs, lambda w2, o: o.put(w2))
                .raw(self.nonce)
                .framed(0, sigs)
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Transaction:
        r = Reader(data, "transaction")

        def item(r2: Reader) -> ModuleItem:
            module, body = r2.framed()
            return ModuleItem(module, body.raw(body.remaining()))

        inputs, outputs, nonce = r.vec(item), r.vec(item), r.raw(8)
        variant, sigs = r.framed()
        if variant != 0:
            raise ValueError(f"signature scheme {variant} is not NaiveMultisig")
        signatures = sigs.vec(lambda r2: r2.raw(64))
        sigs.done()
        r.done()
        return cls(inputs, outputs, nonce, signatures)


def submission_outcome(answer: object) -> str:
    """The txid of an accepted submission; TxRejected with the federation's reason (for an
    input or output: the module's instance id and its error variant, e.g. mintv2's SpentCoin)."""
    r = Reader(from_serde(answer), "submission outcome")
    if r.u8() == 1:
        return r.raw(32).hex()
    variant, body = r.framed()
    if variant == 1:  # InvalidSignature {tx, hash, sig, key}
        key = [body.str() for _ in range(4)][3]
        raise TxRejected(variant, f" (key {key})")
    if variant in (4, 5):  # Input/Output(DynInputError): module instance id, its error enum
        module, err = body.framed()
        error, _ = err.framed()
        raise TxRejected(variant, f" (module {module}, error {error})", module, error)
    raise TxRejected(variant)
