"""How `gateway-cli` prints an answer: JSON on stdout by default, or with `--table` a table for
humans (rich), amounts shown in sat as the dashboard shows them.

Owns only the printing; what is printed is each command's, and errors are `context.fail`'s.
"""

from __future__ import annotations

import json
from typing import Any

import click

from gwcore.values import amount_text

TABLE = {"on": False}


def out(value: Any) -> None:
    """JSON by default; with --table, a table for humans (rich)."""
    if not TABLE["on"]:
        click.echo(json.dumps(value, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    rows = (
        value
        if isinstance(value, list)
        else next((v for v in value.values() if isinstance(v, list)), None)
        if isinstance(value, dict)
        else None
    )
    table = Table(show_lines=False)
    if rows and all(isinstance(r, dict) for r in rows):
        cols = list(dict.fromkeys(k for r in rows for k in r))
        for c in cols:
            table.add_column(c)
        for r in rows:
            table.add_row(
                *(
                    json.dumps(r.get(c))
                    if isinstance(r.get(c), (dict, list))
                    else _cell(c, r.get(c, ""))
                    for c in cols
                )
            )
    else:
        table.add_column("key")
        table.add_column("value")
        for k, v in _flatten(value if isinstance(value, dict) else {"value": value}):
            table.add_row(k, json.dumps(v) if isinstance(v, list) else _cell(k, v))
    Console().print(table)


def _cell(key: str, value: Any) -> str:
    """A table cell: amounts (keys `…_msat`, `…_sat`, or under them) in sat with the msat
    remainder, as the dashboard shows them; anything else as it is."""
    if isinstance(value, int) and not isinstance(value, bool):
        parts = key.split(".")
        if any(p.endswith("_msat") for p in parts):
            return amount_text(value)
        if any(p.endswith("_sat") for p in parts):
            return f"{value:,} sat"
    return str(value)


def _flatten(value: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested objects as dotted keys ("balances_msat.<federation id>"), for the key/value table."""
    out: list[tuple[str, Any]] = []
    for k, v in value.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.extend(_flatten(v, key + "."))
        else:
            out.append((key, v))
    return out
