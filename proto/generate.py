"""Regenerate the Python code of every schema in proto/ into the `gwproto` package.

Schemas are compiled under the virtual path ``gwproto/`` (``protoc -I gwproto=proto``), so the
generated modules import each other as ``from gwproto import x_pb2`` and resolve once installed.
The output is committed; ``tests/test_proto_generated.py`` regenerates into a temporary folder
and fails on any difference, so an edited schema without ``make proto`` cannot land.

Usage: python proto/generate.py [--out DIR]   (DIR defaults to proto/, i.e. proto/gwproto/)
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
PACKAGE = "gwproto"


def schemas(proto_dir: Path = PROTO_DIR) -> list[Path]:
    """Every .proto file of the project, in a stable order."""
    return sorted(proto_dir.glob("*.proto"))


def generate(out_dir: Path, proto_dir: Path = PROTO_DIR) -> list[Path]:
    """Compile every schema into ``out_dir/gwproto``; return the files written."""
    from grpc_tools import protoc  # dev-time dependency only

    include = str(resources.files("grpc_tools") / "_proto")
    pkg_dir = out_dir / PACKAGE
    pkg_dir.mkdir(parents=True, exist_ok=True)
    for schema in schemas(proto_dir):
        args = [
            "protoc",
            f"-I{PACKAGE}={proto_dir}",
            f"-I{include}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
        ]
        if "\nservice " in schema.read_text():
            args.append(f"--grpc_python_out={out_dir}")
        args.append(f"{PACKAGE}/{schema.name}")
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {schema.name}")
    return sorted(p for p in pkg_dir.iterdir() if p.name.endswith((".py", ".pyi")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROTO_DIR)
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
