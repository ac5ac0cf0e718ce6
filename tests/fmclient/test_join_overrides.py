"""Guardians' websocket URLs given by hand for federations that list only iroh endpoints."""

from __future__ import annotations

import pytest

from fmclient.join import JoinError, check_overrides, guardian_urls


def test_overrides_replace_iroh_endpoints_per_peer() -> None:
    listed = {0: "iroh://aa", 1: "wss://g1.example/"}
    overrides = check_overrides({"0": "wss://g0.example/"})
    assert guardian_urls(listed, overrides) == {0: "wss://g0.example/", 1: "wss://g1.example/"}
    with pytest.raises(JoinError, match=r"guardians \[0\] list no websocket"):
        guardian_urls(listed, {})


@pytest.mark.parametrize(
    "bad",
    [["wss://x/"], {"x": "wss://x/"}, {"0": "http://x/"}, {"0": 5}, {"99999": "ws://x/"}],
)
def test_malformed_overrides_say_why(bad: object) -> None:
    with pytest.raises(JoinError, match="api_urls"):
        check_overrides(bad)
