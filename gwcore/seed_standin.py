"""A stand-in for gwcore/seed.py (another branch adds it): the same surface the data backups use
(`GatewaySeed(words)`, `GatewaySeed.load(data_dir)`, `file_backup_key()`, the 12 words in
`<data dir>/gateway-seed`). Deleted when gwcore/seed.py lands on main."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from embit import bip39

from gwcore.errors import InvalidInput
from gwcore.files import write_private

SEED_FILE = "gateway-seed"


class InvalidSeed(InvalidInput):
    """Not 12 valid BIP-39 words."""


@dataclass(frozen=True)
class GatewaySeed:
    words: str = field(repr=False)

    def __post_init__(self) -> None:
        words = " ".join(self.words.split())
        if len(words.split()) != 12 or not bip39.mnemonic_is_valid(words):
            raise InvalidSeed("seed: not 12 valid BIP-39 words")
        object.__setattr__(self, "words", words)

    @classmethod
    def load(cls, data_dir: Path) -> GatewaySeed:
        path = Path(data_dir) / SEED_FILE
        if not path.exists():  # the stand-in makes it; the real router makes it at first start
            write_private(path, bip39.mnemonic_from_bytes(secrets.token_bytes(16)) + "\n")
        return cls(path.read_text())

    def file_backup_key(self) -> bytes:
        seed = bip39.mnemonic_to_seed(self.words)
        salt = hashlib.sha256(b"fmgw gateway file backup v1").digest()
        return HKDF(SHA256(), 32, salt, b"file backup").derive(seed)
