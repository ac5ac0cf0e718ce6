"""The committed generated code must be exactly what `make proto` produces from proto/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PKG = REPO / "proto" / "gwproto"


def _generated(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if "_pb2" in p.name}


def test_committed_code_matches_schemas(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "proto" / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh = _generated(tmp_path / "gwproto")
    committed = _generated(PKG)
    assert fresh, "protoc generated nothing"
    assert sorted(fresh) == sorted(committed), "generated files differ: run `make proto`"
    for name, data in fresh.items():
        assert data == committed[name], f"{name} is stale: run `make proto` and commit"


def test_every_schema_is_compiled() -> None:
    for schema in (REPO / "proto").glob("*.proto"):
        assert (PKG / f"{schema.stem}_pb2.py").exists(), schema.name


def test_generated_imports_resolve_as_a_package() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import gwproto.bus_pb2 as m; print(m.Envelope.DESCRIPTOR.full_name)",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert out.stdout.strip() == "fmgw.bus.v1.Envelope"
