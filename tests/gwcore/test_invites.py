"""gwcore.invites, the product's one invite reader: a real fedimintd's `fed11…` invites (the
crates' vector, `fedimint…`), the guardians' ws URLs given by hand, and bad input (the
development federation's `fed1…` codes of earlier gateways too) refused with a one-line
reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmclient import base32
from fmclient.invite import InviteCode
from gwcore.errors import InvalidInput
from gwcore.invites import MAX_INVITE_CHARS, parse_api_urls, parse_invite

REAL = json.loads(
    (Path(__file__).parents[1] / "fmclient" / "data" / "fedimintd_4_guardians.json").read_text()
)
G0 = REAL["invite_codes"]["g0"]  # what a fedimintd 0.13 guardian hands out
FED = "ab" * 32


def test_a_real_fedimint_invite() -> None:
    invite = parse_invite(G0)
    assert len(invite.federation_id) == 64 and invite.api_urls == {}
    ((peer, url),) = invite.guardians.items()
    assert peer == 0 and url.startswith("ws://") and invite.api_url == url
    # as a QR code gives it (upper case), with blanks around it, and in fedimint's base32 form
    assert parse_invite(f"  {G0.upper()}\n") == invite
    raw = InviteCode(invite.federation_id, invite.guardians).to_bytes()
    other = "fedimint" + base32.encode(raw)
    assert parse_invite(other) == invite


def test_every_guardian_in_order_and_ws_urls_given_by_hand() -> None:
    code = str(InviteCode(FED, {2: "wss://c.example/", 0: "iroh://" + "ef" * 32}))
    # an iroh-only guardian needs its ws URL: refused with what to do
    with pytest.raises(
        InvalidInput, match=r"guardians \[0\] .*iroh only.*api_urls.*Guardian API URLs"
    ):
        parse_invite(code)
    invite = parse_invite(code, {"0": "ws://127.0.0.1:8174"})
    assert invite.guardians == {2: "wss://c.example/", 0: "ws://127.0.0.1:8174"}
    assert invite.api_urls == {0: "ws://127.0.0.1:8174"} and invite.api_url == "wss://c.example/"
    # given for a guardian that lists ws too: it wins
    assert parse_invite(code, {"0": "ws://a/", "2": "ws://b/"}).guardians == {
        2: "ws://b/",
        0: "ws://a/",
    }


def _typo(code: str) -> str:
    return code[:-3] + ("q" if code[-3] != "q" else "p") + code[-2:]


@pytest.mark.parametrize(
    ("text", "api_urls", "why"),
    [
        (None, None, "invite_code is required"),
        ("   ", None, "invite_code is required"),
        (42, None, "invite_code is required"),
        ("hello", None, "invalid invite code: no bech32 separator"),
        ("lnbcrt1pjq8w3app5", None, "invalid invite code: not a Fedimint invite code"),
        (_typo(G0), None, "invalid invite code: the checksum does not match"),
        (G0[:10] + G0[10:].upper(), None, "invalid invite code: mixed upper and lower case"),
        ("fed11" + "q" * 40, None, "invalid invite code"),
        ("fedimintzzzz", None, "invalid invite code"),
        ("fed1notaninvite", None, "invalid invite code"),
        # an invite of the development federation earlier gateways carried
        ("fed1qqsqzqgqqsqsqvqd8jmd96pnt", None, "invalid invite code"),
        ("fed11" + "q" * MAX_INVITE_CHARS, None, "invalid invite code: longer than"),
        (str(InviteCode(FED, {0: "ws://a/"})), "0=ws://a/", "api_urls is an object"),
        (str(InviteCode(FED, {0: "ws://a/"})), {"x": "ws://a/"}, "'x' is not a peer id"),
        (str(InviteCode(FED, {0: "ws://a/"})), {"0": "http://a/"}, "must be ws:// or wss://"),
    ],
)
def test_bad_input_says_why_in_one_line(text: object, api_urls: object, why: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_invite(text, api_urls)
    message = caught.value.message
    assert why in message and "\n" not in message and len(message) < 300, message
    assert "invalid invite code: invalid invite code" not in message


def test_guardian_urls_as_the_dashboard_field_gives_them() -> None:
    assert parse_api_urls("") == {}
    assert parse_api_urls(" 0=ws://a:1/\r\n 3=wss://b/ ") == {"0": "ws://a:1/", "3": "wss://b/"}
    for bad, why in [
        ("ws://a/", "is not PEER=URL"),
        ("0=", "is not PEER=URL"),
        ("x=ws://a/", "is not PEER=URL"),
        ("0=ws://a/ 0=ws://b/", "peer 0 is given twice"),
    ]:
        with pytest.raises(InvalidInput, match=why):
            parse_api_urls(bad)
