"""Transactions: encoding both ways, the txid over inputs, outputs and nonce only, one BIP340
signature per input over the txid, SerdeModuleEncoding framing, and submission outcomes.
(Accepted by a real federation: tests/fedimint/shared/test_wallet.py.)"""

from __future__ import annotations

import hashlib

import pytest
from coincurve import PrivateKey, PublicKeyXOnly

from fmclient.encoding import encode
from fmclient.tx import (
    ModuleItem,
    Transaction,
    TxRejected,
    from_serde,
    submission_outcome,
    to_serde,
    v0,
)


def test_encoding_txid_and_signatures() -> None:
    keys = [PrivateKey().secret, PrivateKey().secret]
    tx = Transaction(
        [ModuleItem(2, v0(b"\x01\x02")), ModuleItem(2, v0(b"\x03"))],
        [ModuleItem(0, v0(b"\xff" * 3))],
        nonce=b"\x00" * 7 + b"\x01",
    ).sign(keys)
    body = "02" + "02" + "04" + "0002" + "0102" + "02" + "03" + "0001" + "03"
    outs = "01" + "00" + "05" + "0003" + "ffffff"
    assert tx.txid == hashlib.sha256(bytes.fromhex(body + outs) + tx.nonce).hexdigest()
    assert tx.to_bytes().hex().startswith(body + outs + "0000000000000001" + "00" + "81" + "02")
    back = Transaction.from_bytes(tx.to_bytes())
    assert back.txid == tx.txid and back.signatures == tx.signatures
    for key, sig in zip(keys, tx.signatures, strict=True):
        xonly = PublicKeyXOnly(PrivateKey(key).public_key.format()[1:])
        assert xonly.verify(sig, bytes.fromhex(tx.txid))
    signed_again = Transaction(tx.inputs, tx.outputs, tx.nonce).sign(keys)
    assert signed_again.txid == tx.txid  # signatures are not part of the id
    with pytest.raises(ValueError):
        tx.sign(keys[:1])


def test_serde_module_encoding_and_outcomes() -> None:
    assert to_serde(b"\xab\xcd") == ["02abcd"] and from_serde(["02abcd"]) == b"\xab\xcd"
    with pytest.raises(ValueError):
        from_serde("02abcd")
    txid = "11" * 32
    assert submission_outcome(to_serde(bytes.fromhex("01" + txid))) == txid
    # Input(DynInputError{module 2, MintInputError::SpentCoin})
    spent = encode(
        lambda w: w.u8(0).framed(
            4, encode(lambda b: b.framed(2, encode(lambda c: c.framed(1, b""))))
        )
    )
    with pytest.raises(TxRejected) as err:
        submission_outcome(to_serde(spent))
    assert (err.value.variant, err.value.module, err.value.module_error) == (4, 2, 1)
    unbalanced = encode(lambda w: w.u8(0).framed(0, b"\x01\x02\x03"))
    with pytest.raises(TxRejected, match="unbalanced"):
        submission_outcome(to_serde(unbalanced))
