"""Amounts as people see them: sat, with the msat remainder where there is one."""

from __future__ import annotations

import pytest

from gwcore.values import amount_text


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
