"""Fetch Mintgate's vendored static files again from npm and check them against SOURCES.md.

    python deploy/vendor_assets.py           # check: fetch, compare, change nothing
    python deploy/vendor_assets.py --write   # and write the files into services/api/static/vendor

Needs `npm` (only here, for maintainers: users and CI never run it). To move to a new version,
change the table in SOURCES.md (package, file name and, after --write, the new digest).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parent.parent / "services" / "api" / "static" / "vendor"


def manifest() -> list[dict[str, str]]:
    """The rows of SOURCES.md's table: file, package, path, sha256 ("-" for licences)."""
    rows = []
    for line in (VENDOR / "SOURCES.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and not set(cells[0]) <= {"-"} and cells[0] != "file":
            rows.append(dict(zip(("file", "package", "path", "sha256"), cells, strict=True)))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for row in manifest():
            out = subprocess.run(
                ["npm", "pack", "--silent", row["package"]],
                cwd=tmp,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()[-1]
            with tarfile.open(Path(tmp) / out) as tar:
                member = tar.extractfile("package/" + row["path"])
                assert member is not None, row
                data = member.read()
            digest = hashlib.sha256(data).hexdigest()
            same = (VENDOR / row["file"]).exists() and (VENDOR / row["file"]).read_bytes() == data
            if row["sha256"] not in ("-", digest):
                print(f"{row['file']}: npm gives {digest}, SOURCES.md says {row['sha256']}")
                bad += 1
            print(f"{row['file']}: {'same' if same else 'differs'} ({row['package']})")
            if args.write:
                (VENDOR / row["file"]).write_bytes(data)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
