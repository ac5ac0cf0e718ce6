"""The gateway's seed file: made once, 0600, 12 checked BIP-39 words, never replaced."""

from __future__ import annotations

import os
import stat

import pytest

from gwcore.errors import InvalidSeed
from gwcore.seed import SEED_FILE, GatewaySeed

ABANDON = "abandon " * 11 + "about"  # BIP-39's all-zero entropy: a valid checksum
ZOO = "zoo " * 11 + "wrong"


def test_created_once_private_and_read_back(tmp_path):
    made = GatewaySeed.load_or_create(tmp_path)
    path = tmp_path / SEED_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(made.words.split()) == 12
    assert path.read_text() == made.words + "\n"
    assert GatewaySeed.load(tmp_path).words == made.words
    assert GatewaySeed.load_or_create(tmp_path).words == made.words  # not made again
    assert GatewaySeed.load_or_create(tmp_path, made.words.upper()).words == made.words
    assert made.words not in repr(made)


def test_given_words_are_written_normalized(tmp_path):
    seed = GatewaySeed.load_or_create(tmp_path, "  " + ABANDON.upper().replace(" ", "\n\t") + "\n")
    assert seed.words == ABANDON
    assert (tmp_path / SEED_FILE).read_text() == ABANDON + "\n"


def test_different_words_are_refused_and_nothing_changes(tmp_path):
    GatewaySeed.load_or_create(tmp_path, ABANDON)
    with pytest.raises(InvalidSeed, match="differ"):
        GatewaySeed.load_or_create(tmp_path, ZOO)
    assert (tmp_path / SEED_FILE).read_text() == ABANDON + "\n"


@pytest.mark.parametrize(
    ("words", "why"),
    [
        ("abandon " * 11 + "abandon", "checksum"),
        ("abandon " * 10 + "about", "12 BIP-39 words, got 11"),
        ("abandon " * 11 + "bitcoins", "1 of the words are not in the English"),
        ("abandon " * 23 + "art", "got 24"),  # a valid 24-word seed is not gatewayd's 12
    ],
)
def test_bad_words_are_refused_before_anything_is_written(tmp_path, words, why):
    with pytest.raises(InvalidSeed, match=why) as e:
        GatewaySeed.load_or_create(tmp_path, words)
    assert "abandon" not in str(e.value)
    assert not (tmp_path / SEED_FILE).exists()


def test_load_says_what_is_missing_or_broken(tmp_path):
    with pytest.raises(InvalidSeed, match="no gateway seed at"):
        GatewaySeed.load(tmp_path)
    (tmp_path / SEED_FILE).write_text("abandon " * 12)
    with pytest.raises(InvalidSeed, match="checksum"):
        GatewaySeed.load(tmp_path)


def test_a_loosened_seed_file_is_tightened_on_load(tmp_path):
    GatewaySeed.load_or_create(tmp_path, ABANDON)
    os.chmod(tmp_path / SEED_FILE, 0o644)
    GatewaySeed.load(tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path / SEED_FILE).st_mode) == 0o600


def test_file_backup_key_is_fixed_by_the_words_and_apart_from_federation_secrets():
    key = GatewaySeed(ABANDON).file_backup_key()
    assert len(key) == 32
    assert key == GatewaySeed(ABANDON.upper()).file_backup_key()
    assert key != GatewaySeed(ZOO).file_backup_key()
    root = GatewaySeed(ABANDON).root_secret()
    assert key not in {
        root.to_chacha20_poly1305_key(),
        root.child_key(0).to_chacha20_poly1305_key(),
        root.to_random_bytes(32),
    }
