"""Transactions, notes and invite codes of the development federation: the wire formats.

A transaction is `{"inputs": [...], "outputs": [...], "signatures": [...]}`. Its id is the
SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of `{"inputs", "outputs"}`: the
signatures (one per input, Schnorr over the id, "" for inputs that need none) are not part of it.
Amounts are integer msat.

Inputs (`kind`):
  note              {amount, nonce, signature}         signed by the note's spend key (nonce = x-only key)
  outgoing_claim    {contract_id, preimage}            signed by the contract's gateway key
  outgoing_refund   {contract_id}                      signed by the contract's user key
  incoming_claim    {contract_id}                      signed by the key whose x-only key is the preimage
  incoming_refund   {contract_id}                      signed by the contract's gateway key (invalid preimage)
  pegin             {txid, vout}                       signed by the key the deposit address was made for
Outputs (`kind`):
  note              {amount, blinded}                  outcome: {blind_signature, dleq_e, dleq_s}
  outgoing_contract {amount, payment_hash, gateway_key, user_key, timelock, invoice}  outcome: {contract_id}
  cancel_outgoing   {contract_id, gateway_signature}   amount 0: lets the user refund at once
  offer             {amount, payment_hash, encrypted_preimage, expiry}               amount 0
  incoming_contract {amount, payment_hash, gateway_key}                              outcome: {contract_id, preimage | invalid}
  pegout            {amount_sat, fee_sat, address}     amount = (amount_sat + fee_sat) * 1000; outcome: {txid}
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from embit.bech32 import CHARSET, Encoding, bech32_encode, bech32_verify_checksum, convertbits

MAX_DENOMINATION_EXP = 40  # notes of 2^0 .. 2^40 msat (~11 BTC)
DENOMINATIONS = [1 << i for i in range(MAX_DENOMINATION_EXP + 1)]
INVITE_HRP = "fed"


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def txid(tx: dict) -> str:
    return hashlib.sha256(canonical({"inputs": tx["inputs"], "outputs": tx["outputs"]})).hexdigest()


def cancel_message(contract_id: str) -> bytes:
    """What a gateway signs to cancel an outgoing contract."""
    return hashlib.sha256(b"fmgw-cancel-outgoing:" + bytes.fromhex(contract_id)).digest()


def registration_message(registration: dict) -> bytes:
    return hashlib.sha256(b"fmgw-register-gateway:" + canonical(registration)).digest()


def removal_message(federation_id: str, gateway_key: str) -> bytes:
    return hashlib.sha256(f"fmgw-remove-gateway:{federation_id}:{gateway_key}".encode()).digest()


def backup_message(user_key: str, data_hex: str) -> bytes:
    return hashlib.sha256(f"fmgw-backup:{user_key}:".encode() + bytes.fromhex(data_hex)).digest()


def contract_id(txid_hex: str, out_index: int) -> str:
    return hashlib.sha256(bytes.fromhex(txid_hex) + out_index.to_bytes(4, "big")).hexdigest()


def decompose(amount_msat: int) -> list[int]:
    """Power-of-two denominations summing to `amount_msat` (its binary digits)."""
    if amount_msat < 0 or amount_msat >= 2 * DENOMINATIONS[-1]:
        raise ValueError("amount out of range")
    return [d for d in DENOMINATIONS if amount_msat & d]


# --- invite codes -----------------------------------------------------------------------------
def encode_invite(federation_id: str, api_url: str) -> str:
    """`fed1…`: bech32m of (32-byte federation id || UTF-8 API URL)."""
    data = bytes.fromhex(federation_id) + api_url.encode()
    words = convertbits(list(data), 8, 5)
    return bech32_encode(Encoding.BECH32M, INVITE_HRP, words)


def decode_invite(code: str) -> tuple[str, str]:
    """(federation id, API URL); ValueError with a reason if it is not a valid invite code."""
    if not isinstance(code, str) or (code.lower() != code and code.upper() != code):
        raise ValueError("invite code must be a bech32m string")
    code = code.lower()
    pos = code.rfind("1")
    if code[:pos] != INVITE_HRP or pos + 7 > len(code):
        raise ValueError("invite code must start with 'fed1'")
    try:
        words = [CHARSET.index(c) for c in code[pos + 1 :]]
    except ValueError:
        raise ValueError("invite code has characters outside bech32") from None
    if bech32_verify_checksum(INVITE_HRP, words) != Encoding.BECH32M:
        raise ValueError("invite code checksum is wrong")
    raw = convertbits(words[:-6], 5, 8, False)
    if raw is None or len(raw) < 33:
        raise ValueError("invite code is too short")
    data = bytes(raw)
    try:
        url = data[32:].decode()
    except UnicodeDecodeError:
        raise ValueError("invite code URL is not UTF-8") from None
    if not url.startswith(("http://", "https://")):
        raise ValueError("invite code URL must be http(s)")
    return data[:32].hex(), url
