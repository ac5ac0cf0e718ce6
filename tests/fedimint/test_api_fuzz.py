"""OpenAPI-driven fuzzing (schemathesis) of the real HTTP front: gunicorn, the router, the actor
of a connected real fedimintd 0.13 federation (mintv2, walletv2, lnv2), the extension, on their
own tree. Every operation of
/openapi.json gets generated bodies (half of them aimed at the connected federation, so they
reach its actor rather than stopping at "no such federation"), with the password and without.
Whatever comes in: no 500, every error is `{error, code}` from the error table, every 200 is
what the document says the route answers, and the gateway is still whole afterwards.

Leaving is not aimed at the real federation (it would end the run's subject), nor a peg-in
address (a key search of seconds, its body the federation id alone: test_gateway_fedimint.py)."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis.checks import response_schema_conformance

from gwcore import constants as C
from gwcore.errors import ERROR_TABLE
from peers.harness.fedimintd import Federation
from tests.e2e.conftest import World, bus, ensure_lightning, tree  # noqa: F401 - tree: the fixture
from tests.fuzzing import examples

# leaving would end the run's subject; a peg-in address is a seconds-long key search whose body
# is the federation id alone (aimed, each example would be one more search and nothing new)
NOT_AIMED = {C.PATH_LEAVE_FED, C.PATH_ADDRESS}
KNOWN_CODES = {*ERROR_TABLE, "http_error", "method_not_allowed"}
# bodies random runs found wrong answers to, sent (as hypothesis examples) on every run from then on
REGRESSIONS: dict[str, list[dict]] = {
    C.PATH_PAYMENT_SUMMARY: [{"end": 0}],  # answered 200 with start -86400, outside its schema
}


@pytest.mark.fuzz
def test_fuzzing_the_real_front_finds_no_server_error(
    tree: dict,  # noqa: F811
    federation1: Federation,
) -> None:
    world = World(tree["regtest"])
    ensure_lightning(world)
    invite = {"invite_code": federation1.invite_code}
    bus(tree, C.GATEWAY_SERVICE, C.METHOD_CONNECT_FED, invite, timeout=180)
    fed = federation1.federation_id
    schema = schemathesis.openapi.from_url(tree["api_url"] + "/openapi.json")
    auth = {"Authorization": f"Bearer {tree['password']}"}
    seen: dict[int, int] = {}
    bad: list[str] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 20

    for op in operations:
        _fuzz(op, fed, auth, seen, bad)
    print("statuses seen:", dict(sorted(seen.items())))
    assert not bad, bad[:10]
    assert sum(seen.values()) >= 100 and any(s < 300 for s in seen)  # it got through, too
    # and the gateway is still whole: it answers, and its federation is running
    info = httpx.post(tree["api_url"] + C.PATH_INFO, headers=auth, timeout=30).json()
    assert {f["federation_id"]: f["state"] for f in info["federations"]}[fed] == "running"
    assert httpx.get(tree["api_url"] + C.PATH_HEALTH_LIVE, timeout=5).status_code == 200


def _fuzz(op, fed: str, auth: dict, seen: dict[int, int], bad: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Up to 12 generated requests to one operation; what they got is counted in `seen`,
    every answer outside the rules is added to `bad`."""

    @given(
        case=op.as_strategy(),
        aim=st.booleans(),
        with_password=st.sampled_from([True] * 4 + [False]),
    )
    @settings(
        max_examples=examples(12),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case, aim: bool, with_password: bool) -> None:  # type: ignore[no-untyped-def]
        body = case.body
        if aim and isinstance(body, dict) and "federation_id" in body and op.path not in NOT_AIMED:
            body["federation_id"] = fed
        # the password, or none at all (made-up ones would only meet the guessing throttle)
        case.headers = {
            k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"
        }
        r = case.call(headers=auth if with_password else {}, timeout=60)
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        if r.status_code in (500, 501):
            bad.append(f"{op.label}: {r.status_code} {r.text[:300]}")
        elif r.status_code == 200:  # the answer is what the OpenAPI document says it is
            try:
                case.validate_response(r, checks=[response_schema_conformance])
            except Exception as exc:  # schemathesis raises its failure group
                bad.append(f"{op.label}: 200 not as documented: {str(exc)[:400]}")
        elif r.status_code >= 400 and "json" in r.headers.get("content-type", ""):
            err = r.json()
            if set(err) != {"error", "code"} or err["code"] not in KNOWN_CODES:
                bad.append(f"{op.label}: {r.status_code} {err}")

    for body in REGRESSIONS.get(op.path, []):
        case = op.Case(body=dict(body), media_type="application/json")
        run = example(case=case, aim=False, with_password=True)(run)
    run()
