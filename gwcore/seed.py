"""The gateway's one seed: 12 English BIP-39 words in `<data dir>/gateway-seed` (mode 0600).

Every per-federation secret of the gateway is derived from it and the federation id, exactly as
fedimint's client derives its module secrets from gatewayd's words (fmclient/derive.py), so the
words alone bring a federation's e-cash back (`connect-fed --recover`), and gatewayd's words
given to this gateway find gatewayd's e-cash. A key for encrypted file backups of the data
folder hangs off the same words, on a path of its own.

The router makes the file at first start (or writes the operator's words into it); every other
process only reads it. Never: replace an existing seed (a different one is refused), write it
anywhere but this file, put it in a program's environment, or log a word of it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from embit import bip39

from fmclient.derive import DerivableSecret, bip39_root_secret, check_words
from gwcore.errors import InvalidSeed
from gwcore.files import create_private, private_file

SEED_FILE = "gateway-seed"
SEED_WORDS = 12
# the salt of the file-backup key's own HKDF tree: a different salt than fedimint's client root
# ("Fedimint Client Salt"), so no federation or module secret can ever equal it
FILE_BACKUP_SALT = b"fmgw gateway file backup v1"


def seed_path(data_dir: Path) -> Path:
    """Where the seed of the gateway whose data folder is `data_dir` lives."""
    return Path(data_dir) / SEED_FILE


def _checked(words: str, source: str) -> str:
    try:
        return check_words(words, SEED_WORDS)
    except ValueError as e:
        raise InvalidSeed(f"{source}: {e}") from None


def read_words_file(path: Path) -> str:
    """The words in the operator's file (GATEWAY_ROUTER_SEED_WORDS_FILE); InvalidSeed if it
    cannot be read."""
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise InvalidSeed(f"the seed words file {path}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class GatewaySeed:
    """The 12 words, checked; the secrets hanging off them on demand."""

    words: str = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "words", _checked(self.words, "seed"))

    def __repr__(self) -> str:  # never the words
        return "GatewaySeed(…)"

    @classmethod
    def load(cls, data_dir: Path) -> GatewaySeed:
        """The seed in `data_dir`; InvalidSeed if it is missing or not 12 valid words."""
        path = seed_path(data_dir)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise InvalidSeed(
                f"no gateway seed at {path}: the router makes it at first start"
            ) from None
        private_file(path)  # tighten a seed file someone loosened
        return cls(_checked(text, str(path)))

    @classmethod
    def load_or_create(cls, data_dir: Path, words: str | None = None) -> GatewaySeed:
        """The seed in `data_dir`, made if missing: from `words` (the operator's, e.g.
        gatewayd's) or new random ones. `words` that differ from an existing seed are refused
        (InvalidSeed): a seed is never replaced."""
        given = _checked(words, "the given seed words") if words is not None else None
        path = seed_path(data_dir)
        if not path.exists():
            new = given or bip39.mnemonic_from_bytes(secrets.token_bytes(16))
            create_private(path, new + "\n")  # of several creators, one wins; all read it
        seed = cls.load(data_dir)
        if given is not None and given != seed.words:
            raise InvalidSeed(
                f"the given seed words differ from the gateway's seed at {path}; a seed is never"
                " replaced (move the data folder aside to start from other words)"
            )
        return seed

    def root_secret(self) -> DerivableSecret:
        """fedimint's client root secret of these words (Bip39RootSecretStrategy)."""
        return bip39_root_secret(self.words)

    def file_backup_key(self) -> bytes:
        """32 bytes: the key of encrypted file backups of the data folder. Its own HKDF tree
        (salt FILE_BACKUP_SALT over the BIP-39 seed), never equal to a federation secret."""
        seed = bip39.mnemonic_to_seed(self.words)
        return DerivableSecret.new_root(seed, FILE_BACKUP_SALT).to_chacha20_poly1305_key()
