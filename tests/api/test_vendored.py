"""The vendored htmx and Pico CSS are the npm files SOURCES.md names, byte for byte."""

from __future__ import annotations

import hashlib

from deploy.vendor_assets import VENDOR, manifest


def test_vendored_files_match_their_recorded_digests() -> None:
    rows = manifest()
    assert {r["file"] for r in rows} == {p.name for p in VENDOR.iterdir() if p.name != "SOURCES.md"}
    for row in rows:
        assert (VENDOR / row["file"]).exists(), row["file"]
        if row["sha256"] != "-":
            digest = hashlib.sha256((VENDOR / row["file"]).read_bytes()).hexdigest()
            assert digest == row["sha256"], row["file"]
