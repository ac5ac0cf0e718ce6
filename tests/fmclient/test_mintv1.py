"""mint v1 against vectors printed by the real fedimint-mint-common/-client 0.13.0
(data/mintv1_vectors.json): the note message hash, outputs, inputs, outcomes, errors, fees, the
layout fedimint-cli gives change, `OOBNotes` in its three forms; the client config of real v1
federations of 1 and 4 guardians (captured); and the dialect `MintWallet` speaks. (Real
federations and fedimint-cli: tests/fedimint/test_mintv1.py.)"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import pytest

from fmclient import base32, mintv1, mintv2, tbs
from fmclient.config import ConfigError, ModuleConfig, parse_client_config
from fmclient.ecash import EcashError, Note, note_valid, parse_for
from fmclient.ecash_dialects import DIALECTS, dialect_for, read_ecash
from fmclient.encoding import DecodeError, encode
from fmclient.tx import ModuleItem, TxRejected, submission_outcome, to_serde

DATA = Path(__file__).parent / "data"
V = json.loads((DATA / "mintv1_vectors.json").read_text())
REAL = {
    n: json.loads((DATA / f"fedimintd_v1_{n}_guardian{'s' if n > 1 else ''}.json").read_text())
    for n in (1, 4)
}
CONFIG = mintv1.MintConfig.from_bytes(bytes.fromhex(V["config"]["encoding"]))


@pytest.mark.parametrize("vector", V["messages"], ids=lambda v: v["nonce"][:8])
def test_a_nonces_message_is_the_sha3_hash_to_g1(vector: dict) -> None:
    point = tbs.message_v1(bytes.fromhex(vector["nonce"]))
    assert tbs.to_bytes(point).hex() == vector["message"]
    assert (
        tbs.to_bytes(tbs.message_sha256(bytes.fromhex(vector["nonce"]))).hex() != vector["message"]
    )


def test_the_vector_config_both_ways() -> None:
    assert sorted(CONFIG.tbs_pks) == [1 << k for k in range(11)]
    assert sorted(CONFIG.peer_tbs_pks) == [0, 1, 2, 3]
    assert (CONFIG.fee_base_msat, CONFIG.fee_ppm, CONFIG.max_notes_per_denomination) == (
        100,
        1000,
        3,
    )
    assert CONFIG.to_bytes().hex() == V["config"]["encoding"]
    assert CONFIG.tbs_pks[1024].hex() == V["config"]["json"]["tbs_pks"]["1024"]
    assert CONFIG.client_denominations == range(9, 11)  # 512 msat up: 4 x 100, a power of two


@pytest.mark.parametrize("n", [1, 4])
def test_a_real_v1_federations_config(n: int) -> None:
    cfg = parse_client_config(REAL[n]["client_config"])
    assert sorted(m.kind for m in cfg.modules.values()) == ["ln", "lnv2", "meta", "mint", "wallet"]
    body = cfg.modules[cfg.module_id("mint")].body
    mint = mintv1.MintConfig.from_bytes(body)
    assert mint.to_bytes() == body
    assert sorted(mint.tbs_pks) == [1 << k for k in range(57)]  # 1 msat .. 2^56 (< 1e6 BTC)
    assert sorted(mint.peer_tbs_pks) == list(range(n))
    assert all(sorted(t) == sorted(mint.tbs_pks) for t in mint.peer_tbs_pks.values())
    assert (mint.fee_base_msat, mint.fee_ppm, mint.max_notes_per_denomination) == (100, 0, 3)
    dialect = dialect_for(cfg)
    assert (dialect.kind, dialect.module, dialect.spent_coin) == ("mint", 3, 0)
    assert dialect.denominations == range(9, 57) and dialect.fee(9) == dialect.fee(56) == 100
    dialect.aggregate_key(56), dialect.share_key(0, n - 1)  # valid G2 points


@pytest.mark.parametrize("vector", V["notes"], ids=lambda v: v["nonce"][:8])
def test_outputs_inputs_outcomes_and_a_note_signed_by_four(vector: dict) -> None:
    amount, blinded = vector["amount_msat"], bytes.fromhex(vector["blinded_message"])
    nonce, sig = bytes.fromhex(vector["nonce"]), bytes.fromhex(vector["signature"])
    out = mintv1.MintOutput(amount, blinded)
    assert out.to_bytes().hex() == vector["output"]
    assert mintv1.MintOutput.from_bytes(out.to_bytes()) == out
    assert encode(ModuleItem(3, out.to_bytes()).put).hex() == vector["dyn_output"]
    inp = mintv1.MintInput(amount, nonce, sig)
    assert inp.to_bytes().hex() == vector["input"]
    assert mintv1.MintInput.from_bytes(inp.to_bytes()) == inp
    shares = [bytes.fromhex(s) for s in vector["shares"]]
    assert mintv1.outcome_share(bytes.fromhex(vector["dyn_outcome"]), 3) == shares[1]
    with pytest.raises(DecodeError, match="not 4"):
        mintv1.outcome_share(bytes.fromhex(vector["dyn_outcome"]), 4)
    # the wallet's dialect builds the same items and reads the shares, checks, combines
    dialect = mintv1.Dialect(3, CONFIG.to_bytes())
    note = Note(amount.bit_length() - 1, bytes.fromhex(vector["secret"]), sig)
    assert note.nonce == nonce and note_valid(dialect, note)
    assert dialect.output(note.denomination, tbs.g1(blinded)) == out.to_bytes()
    assert dialect.input(note) == inp.to_bytes()
    answer = [to_serde(bytes.fromhex(vector["dyn_outcome"]))]
    assert [tbs.to_bytes(p) for p in dialect.decode_shares(answer, 1) or []] == [shares[1]]
    assert dialect.decode_shares(answer, 2) is None and dialect.decode_shares([None], 1) is None
    points = {p: tbs.g1(s) for p, s in enumerate(shares)}
    assert all(
        tbs.verify_share(tbs.g1(blinded), points[p], dialect.share_key(note.denomination, p))
        for p in range(4)
    )
    r = tbs.scalar_from_le(bytes.fromhex(vector["blinding_key"]))
    assert tbs.blind(dialect.message(nonce), r) == tbs.g1(blinded)
    combined = tbs.combine({p: points[p] for p in (0, 1, 3)})
    assert tbs.to_bytes(tbs.unblind(combined, r)) == sig
    assert not note_valid(dialect, Note(note.denomination ^ 1, note.secret, sig))


def test_a_spent_note_is_named_by_the_submission() -> None:
    assert V["errors"]["input_spent_coin"] == "0000"
    spent = bytes.fromhex(V["errors"]["input_spent_coin"])
    answer = encode(lambda w: w.u8(0).framed(4, encode(lambda w2: w2.framed(3, spent))))
    with pytest.raises(TxRejected) as err:
        submission_outcome(to_serde(answer))
    assert (err.value.module, err.value.module_error) == (3, mintv1.SPENT_COIN)
    assert V["errors"]["input_invalid_amount_tier"][:2] == f"{mintv1.INVALID_AMOUNT_TIER:02x}"
    assert V["errors"]["input_invalid_signature"][:2] == f"{mintv1.INVALID_SIGNATURE:02x}"


def _config(base: int, ppm: int) -> mintv1.MintConfig:
    return mintv1.MintConfig({1 << k: b"" for k in range(57)}, base, ppm, {}, 3)


FEE_PARAMS = {"zero": (0, 0), "base": (100, 0), "ppm1000": (100, 1000)}


@pytest.mark.parametrize("case", V["fees"], ids=lambda c: c["name"])
def test_fees(case: dict) -> None:
    cfg = _config(*FEE_PARAMS[case["name"]])
    assert (
        encode(lambda w: w.varint(cfg.fee_base_msat).varint(cfg.fee_ppm)).hex() == case["encoding"]
    )
    assert {a: cfg.fee_msat(int(a)) for a in case["fee"]} == case["fee"]
    assert cfg.min_economical_msat == case["min_economical_msat"]
    unit = cfg.min_economical_msat
    assert {a: -(-int(a) // unit) * unit for a in case["round_up"]} == case["round_up"]


@pytest.mark.parametrize("case", V["bad_fees"], ids=lambda c: c["encoding"])
def test_only_the_crates_fees_decode(case: dict) -> None:
    body = encode(lambda w: w.varint(0)) + bytes.fromhex(case["encoding"]) + b"\x00\x03"
    if case["decodes"]:
        mintv1.MintConfig.from_bytes(body)
    else:
        with pytest.raises(DecodeError, match="fees must be"):
            mintv1.MintConfig.from_bytes(body)


def test_the_change_fedimint_cli_makes() -> None:
    held = {t: n for t, n in V["held"]}
    for case in V["layouts"]:
        cfg = _config(*FEE_PARAMS[case["fees"]])
        got = mintv1.represent_amount(
            case["amount_msat"], held if case["held"] else {}, cfg, case["sets"]
        )
        assert got == {t: n for t, n in case["counts"]}, case


@pytest.mark.parametrize("name", ["oob_plain", "oob_invite"])
def test_oob_notes_in_every_form(name: str) -> None:
    vector = V[name]
    for form in ("display", "base32", "standard_base64"):
        oob = mintv1.parse_oob_notes(vector[form])
        assert oob.to_bytes().hex() == vector["encoding"], form
        assert str(oob) == vector["display"] and oob.amount_msat == vector["total_msat"]
    text = vector["display"]
    spaced = f"  {text[:20]}\n {text[20:50]}\t{text[50:]} "
    assert mintv1.parse_oob_notes(spaced) == oob
    assert mintv1.parse_oob_notes(vector["base32"].upper()) == oob
    assert oob.federation_prefix == vector["federation_id_prefix"] == V["federation_id"][:8]
    got = mintv1.Dialect.parse(text)
    assert got.federation == (
        V["federation_id"] if name == "oob_invite" else V["federation_id"][:8]
    )
    assert [n.amount_msat for n in got.notes] == [2, 64, 1024, 1024]
    assert [n.nonce.hex() for n in got.notes[2:]] == [
        V["notes"][0]["nonce"],
        V["notes"][1]["nonce"],
    ]
    assert got.key == mintv1.Dialect.parse(vector["base32"]).key  # the notes, not the wrapping
    if name == "oob_invite":
        assert oob.invite_peers == ((0, "ws://127.0.0.1:18174/"),) and oob.api_secret == "s3cret"
        assert oob.invite_federation_id == V["federation_id"]
    # our own spend: the prefix and the notes, as the crate's OOBNotes::new
    dialect = mintv1.Dialect(3, CONFIG.to_bytes())
    assert (
        dialect.format(V["federation_id"], sorted(got.notes, key=lambda n: -n.denomination))
        == V["oob_plain"]["display"]
    )


def _oob(parts: list[tuple[int, bytes]]) -> str:
    data = encode(lambda w: w.vec(parts, lambda w2, p: w2.framed(*p)))
    return base64.urlsafe_b64encode(data).decode()


NOTE = encode(
    lambda w: w.map(
        {2: 1},
        lambda w2, k: w2.varint(k),
        lambda w2, _: w2.varint(1).raw(b"\x01" * 48 + b"\x07" * 32),
    )
)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (None, "a string"),
        ("", "neither"),
        ("not e-cash!", "neither"),
        ("AgEEftPStgD9", "not mint v1"),  # cut short
        (_oob([(1, b"abcd")]), "no e-cash notes"),
        (_oob([(0, NOTE)]), "no federation id"),
        (_oob([(1, b"abcd"), (0, NOTE), (0, NOTE)]), "twice"),
        (
            _oob([(1, b"abcd"), (0, NOTE), (2, encode(lambda w: w.varint(0)) + b"\x11" * 32)]),
            "differ",
        ),
        (_oob([(2, encode(lambda w: w.varint(0)) + b"\x11" * 32), (0, NOTE)]), "no guardian"),
        (_oob([(1, b"abcd"), (0, NOTE.replace(b"\x07" * 32, b"\x00" * 32))]), "not mint v1"),
        (_oob([(1, b"abcd"), (0, encode(lambda w: w.varint(0)))]), "no notes"),
        (V["oob_plain"]["display"].rstrip("="), "neither"),  # the padding is required
    ],
)
def test_bad_oob_notes_say_why(text: object, why: str) -> None:
    with pytest.raises(EcashError, match=why):
        mintv1.Dialect.parse(text)


def test_unknown_parts_are_kept_and_a_note_of_three_msat_is_refused() -> None:
    text = _oob([(1, b"abcd"), (0, NOTE), (9, b"later")])
    oob = mintv1.parse_oob_notes(text)
    assert oob.unknown == ((9, b"later"),) and str(oob) == text
    three = NOTE.replace(b"\x01\x02", b"\x01\x03", 1)
    with pytest.raises(EcashError, match="power of two"):
        mintv1.Dialect.parse(_oob([(1, b"abcd"), (0, three)]))


def test_each_version_refuses_the_others_ecash_and_says_so() -> None:
    v1 = dialect_for(parse_client_config(REAL[1]["client_config"]))
    v2 = dialect_for(
        parse_client_config(
            json.loads((DATA / "fedimintd_4_guardians.json").read_text())["client_config"]
        )
    )
    assert v2.kind == "mintv2" and v2.spent_coin == 1
    v2_text = str(mintv2.ECash("ab" * 32, (mintv2.SpendableNote(10, b"\x01" * 32, b"\x02" * 48),)))
    with pytest.raises(
        EcashError, match="this is mintv2 e-cash; this federation's e-cash module is mint"
    ):
        parse_for(v1, DIALECTS, v2_text)
    for text in (V["oob_plain"]["display"], V["oob_invite"]["base32"]):
        with pytest.raises(
            EcashError, match="this is mint e-cash; this federation's e-cash module is mintv2"
        ):
            parse_for(v2, DIALECTS, text)
    with pytest.raises(EcashError, match="no e-cash notes"):
        parse_for(v1, DIALECTS, "fedimint" + base32.encode(b"\x00"))


def test_the_dialect_is_chosen_by_kind_mint_v1_first() -> None:
    v1 = parse_client_config(REAL[1]["client_config"])
    v2 = parse_client_config(
        json.loads((DATA / "fedimintd_4_guardians.json").read_text())["client_config"]
    )
    both = dataclasses.replace(
        v1,
        modules={
            **v1.modules,
            9: dataclasses.replace(v2.modules[v2.module_id("mintv2")], instance_id=9),
        },
    )
    assert (dialect_for(both).kind, dialect_for(both).module) == ("mint", 3)  # as gatewayd
    assert dialect_for(v2).kind == "mintv2"
    neither = dataclasses.replace(v1, modules={0: ModuleConfig(0, "ln", (2, 0), b"")})
    with pytest.raises(ConfigError, match=r"no e-cash module \(mint, mintv2\)"):
        dialect_for(neither)


def test_any_versions_ecash_is_read_without_a_federation() -> None:
    kind, got = read_ecash(V["oob_invite"]["standard_base64"])
    assert (kind, got.federation, got.amount_msat) == ("mint", V["federation_id"], 2114)
    v2_text = str(mintv2.ECash("ab" * 32, (mintv2.SpendableNote(10, b"\x01" * 32, b"\x02" * 48),)))
    assert read_ecash(v2_text)[0] == "mintv2" and read_ecash(v2_text)[1].federation == "ab" * 32
    with pytest.raises(EcashError, match=r"not e-cash \(mint: .*; mintv2: "):
        read_ecash("lnbcrt1")
