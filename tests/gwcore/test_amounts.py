"""Amounts as people see them: sat, with the msat remainder where there is one."""

from __future__ import annotations

import pytest

from gwcore.values import amount_text
from services.api.formatting import sat_to_msat


@pytest.mark.parametrize(
    ("msat", "shown"),
    [
        (0, "0 sat"),
        (1, "0.001 sat"),
        (1_000, "1 sat"),
        (1_234_567, "1,234.567 sat"),
        (2_000_000_000, "2,000,000 sat"),
        (-1_500, "-1.500 sat"),
    ],
)
def test_sat_with_the_msat_remainder(msat: int, shown: str) -> None:
    assert amount_text(msat) == shown


@pytest.mark.parametrize(
    ("typed", "msat"),
    [
        ("20", 20_000),
        ("0.5", 500),
        ("0.500", 500),
        ("1,234.567", 1_234_567),
        (".001", 1),
        ("0.0001", None),
        ("-1", None),
        ("1e3", None),
        ("", 0),
        ("x", None),
    ],
)
def test_dashboard_reads_sat_to_the_msat(typed: str, msat: int | None) -> None:
    assert sat_to_msat(typed) == msat
