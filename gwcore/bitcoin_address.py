"""Bitcoin addresses, parsed fully in one place for every room that takes one: the API front,
the actor and the regtest world.

`parse_address` checks everything before anything moves: the encoding's checksum (base58check;
bech32 for witness version 0, bech32m for 1 and above, as BIP 173/350 say), the network (its
bech32 prefix or base58 version byte), the witness version and the program length. Only the
standard types are taken — P2PKH, P2SH, P2WPKH, P2WSH, P2TR — because a payment to a future
witness version is spendable by anyone once that version is defined: money gone. A refused
address raises `AddressError`, whose message names what is wrong in one line.

The checksums are embit's (the BIP reference algorithms); what is ours is the table of networks
and the rules of which programs are standard. Testnet, signet and regtest share their base58
version bytes (as in bitcoind), so a legacy testnet address is a valid regtest address.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from embit import base58
from embit.bech32 import Encoding, bech32_decode, bech32_encode, convertbits


@dataclass(frozen=True)
class Network:
    name: str
    hrp: str
    p2pkh: int
    p2sh: int


NETWORKS: dict[str, Network] = {
    n.name: n
    for n in (
        Network("mainnet", "bc", 0x00, 0x05),
        Network("testnet", "tb", 0x6F, 0xC4),
        Network("signet", "tb", 0x6F, 0xC4),
        Network("regtest", "bcrt", 0x6F, 0xC4),
    )
}
# names the networks go by elsewhere (bitcoind's chain names, fedimint's and rust-bitcoin's)
ALIASES = {
    "main": "mainnet",
    "bitcoin": "mainnet",
    "test": "testnet",
    "testnet3": "testnet",
    "testnet4": "testnet",
}

# the smallest output bitcoind relays for each type (at the default dust relay fee)
DUST_SAT = {"p2pkh": 546, "p2sh": 540, "p2wpkh": 294, "p2wsh": 330, "p2tr": 330}
# bitcoind's names for the script types (getrawtransaction's scriptPubKey.type)
SCRIPT_TYPE = {
    "p2pkh": "pubkeyhash",
    "p2sh": "scripthash",
    "p2wpkh": "witness_v0_keyhash",
    "p2wsh": "witness_v0_scripthash",
    "p2tr": "witness_v1_taproot",
}
MAX_LENGTH = 90  # the longest bech32 address; base58 addresses are at most 35 characters


class AddressError(ValueError):
    """An address that cannot be paid; the message says why, in one line."""


@dataclass(frozen=True)
class Address:
    """A parsed address: `text` is its canonical spelling (bech32 in lower case)."""

    text: str
    network: str  # the network asked for, or the first that matches when none was asked
    kind: str  # p2pkh | p2sh | p2wpkh | p2wsh | p2tr
    script: bytes  # the scriptPubKey paid

    @property
    def script_type(self) -> str:
        return SCRIPT_TYPE[self.kind]

    @property
    def dust_sat(self) -> int:
        return DUST_SAT[self.kind]

    def __str__(self) -> str:
        return self.text


def network_named(name: str) -> Network:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in NETWORKS:
        raise AddressError(f"unknown network {name!r}")
    return NETWORKS[key]


def parse_address(text: object, network: str | None = "regtest") -> Address:
    """The address `text` on `network` (None: any network); AddressError if it is not one."""
    if not isinstance(text, str):
        raise AddressError("an address is a string")
    if not text:
        raise AddressError("the address is empty")
    if any(c.isspace() for c in text):
        raise AddressError("the address contains whitespace")
    if len(text) > MAX_LENGTH:
        raise AddressError(f"too long for an address ({len(text)} characters)")
    want = network_named(network) if network is not None else None
    hrp = text[: text.rfind("1")].lower() if "1" in text else ""
    if hrp in {n.hrp for n in NETWORKS.values()}:
        return _segwit(text, want)
    try:
        return _base58(text, want)
    except AddressError:
        if text.lower().startswith("ln"):
            raise AddressError("a Lightning invoice, not a Bitcoin address") from None
        if hrp and bech32_decode(text)[0] is not None:
            raise AddressError(f"unknown address prefix {hrp!r}") from None
        raise


def address_from_script(script: bytes, network: str = "regtest") -> str | None:
    """The address that pays `script` on `network`, or None for a non-standard script."""
    net, kind = network_named(network), _script_kind(script)
    if kind == "p2pkh":
        return base58.encode_check(bytes([net.p2pkh]) + script[3:23])
    if kind == "p2sh":
        return base58.encode_check(bytes([net.p2sh]) + script[2:22])
    if kind is not None:
        return _encode_segwit(net.hrp, 0 if script[0] == 0 else script[0] - 0x50, script[2:])
    return None


def script_asm(script: bytes) -> str:
    """bitcoind's `asm` of a standard output script."""
    kind = _script_kind(script)
    if kind == "p2pkh":
        return f"OP_DUP OP_HASH160 {script[3:23].hex()} OP_EQUALVERIFY OP_CHECKSIG"
    if kind == "p2sh":
        return f"OP_HASH160 {script[2:22].hex()} OP_EQUAL"
    if len(script) >= 4 and (script[0] == 0 or 0x51 <= script[0] <= 0x60):
        return f"{0 if script[0] == 0 else script[0] - 0x50} {script[2:].hex()}"
    return script.hex()


def script_type(script: bytes) -> str:
    """bitcoind's name for the type of an output script."""
    kind = _script_kind(script)
    if kind is not None:
        return SCRIPT_TYPE[kind]
    if script[:1] == b"\x6a":
        return "nulldata"
    if len(script) >= 4 and (script[0] == 0 or 0x51 <= script[0] <= 0x60):
        return "witness_unknown"
    return "nonstandard"


# --- the encodings ------------------------------------------------------------------------------
def _segwit(text: str, want: Network | None) -> Address:
    if text.lower() != text and text.upper() != text:
        raise AddressError("mixed upper and lower case in a bech32 address")
    encoding, hrp, data = bech32_decode(text)
    if encoding is None:
        raise AddressError("bad bech32 checksum or character: the address is mistyped")
    nets = [n for n in NETWORKS.values() if n.hrp == hrp]
    net = _on_network(nets, want, f"a {nets[0].name} address")
    if not data:
        raise AddressError("no witness program in the address")
    version = data[0]
    program = convertbits(data[1:], 5, 8, False)
    if version > 16 or program is None:
        raise AddressError("not a valid segwit address (bad witness version or padding)")
    kind = _kind_of(version, bytes(program), encoding)
    script = bytes([0 if version == 0 else 0x50 + version, len(program)]) + bytes(program)
    return Address(text.lower(), net.name, kind, script)


def _kind_of(version: int, program: bytes, encoding: int) -> str:
    if version == 0 and encoding != Encoding.BECH32:
        raise AddressError("witness version 0 is bech32, not bech32m: the address is mistyped")
    if version > 0 and encoding != Encoding.BECH32M:
        raise AddressError(f"witness version {version} is bech32m, not bech32")
    if not 2 <= len(program) <= 40:
        raise AddressError(f"a witness program is 2 to 40 bytes, not {len(program)}")
    if version == 0:
        if len(program) not in (20, 32):
            raise AddressError(f"a version 0 witness program is 20 or 32 bytes, not {len(program)}")
        return "p2wpkh" if len(program) == 20 else "p2wsh"
    if version == 1 and len(program) == 32:
        return "p2tr"
    raise AddressError(
        f"witness version {version} with a {len(program)}-byte program is not a standard "
        "address type (it would be spendable by anyone)"
    )


def _encode_segwit(hrp: str, version: int, program: bytes) -> str:
    encoding = Encoding.BECH32 if version == 0 else Encoding.BECH32M
    return bech32_encode(encoding, hrp, [version, *convertbits(program, 8, 5)])


def _base58(text: str, want: Network | None) -> Address:
    try:
        raw = base58.decode_check(text)
    except ValueError as exc:
        if "Checksum" in str(exc):
            raise AddressError("bad base58 checksum: the address is mistyped") from None
        raise AddressError("not an address: neither base58 nor bech32") from None
    except IndexError:
        raise AddressError("not an address: too short") from None
    if len(raw) != 21:
        raise AddressError(f"a base58 address holds 21 bytes, this one {len(raw)}")
    version, payload = raw[0], raw[1:]
    for kind in ("p2pkh", "p2sh"):
        nets = [n for n in NETWORKS.values() if getattr(n, kind) == version]
        if nets:
            net = _on_network(nets, want, f"a {nets[0].name} address")
            script = (
                b"\x76\xa9\x14" + payload + b"\x88\xac"
                if kind == "p2pkh"
                else b"\xa9\x14" + payload + b"\x87"
            )
            return Address(text, net.name, kind, script)
    raise AddressError(f"unknown base58 address version {version}")


def _on_network(nets: list[Network], want: Network | None, what: str) -> Network:
    if want is None:
        return nets[0]
    if want.name in {n.name for n in nets}:
        return want
    raise AddressError(f"{what}, not a {want.name} one: wrong network")


def _script_kind(script: bytes) -> str | None:
    if len(script) == 25 and script[:3] == b"\x76\xa9\x14":
        return "p2pkh"
    if len(script) == 23 and script[:2] == b"\xa9\x14":
        return "p2sh"
    if len(script) == 22 and script[:2] == b"\x00\x14":
        return "p2wpkh"
    if len(script) == 34 and script[:2] == b"\x00\x20":
        return "p2wsh"
    if len(script) == 34 and script[:2] == b"\x51\x20":
        return "p2tr"
    return None


# --- making addresses (the regtest world's wallets) -------------------------------------------
def hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


def p2pkh(pubkey: bytes, network: str = "regtest") -> str:
    return base58.encode_check(bytes([network_named(network).p2pkh]) + hash160(pubkey))


def p2sh_p2wpkh(pubkey: bytes, network: str = "regtest") -> str:
    redeem = b"\x00\x14" + hash160(pubkey)
    return base58.encode_check(bytes([network_named(network).p2sh]) + hash160(redeem))


def p2wpkh(pubkey: bytes, network: str = "regtest") -> str:
    return _encode_segwit(network_named(network).hrp, 0, hash160(pubkey))


def p2wsh(witness_script: bytes, network: str = "regtest") -> str:
    return _encode_segwit(network_named(network).hrp, 0, hashlib.sha256(witness_script).digest())


def p2tr(output_key_xonly: bytes, network: str = "regtest") -> str:
    """The address of a taproot output key (already tweaked: see BIP 86 for a key-only one)."""
    if len(output_key_xonly) != 32:
        raise AddressError("a taproot output key is 32 bytes")
    return _encode_segwit(network_named(network).hrp, 1, output_key_xonly)
