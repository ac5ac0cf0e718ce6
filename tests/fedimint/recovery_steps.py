"""Steps of a lost data folder and its recovery from the seed, shared by the tests that prove it
on real federations (1 guardian: test_recovery.py; 4: test_gateway_fedimint4.py and
test_four_guardians_v1.py)."""

from __future__ import annotations

from .test_gateway_fedimint import Gateway, _until

WORLD = ("regtest", "federations")  # the development world's parts of the data folder


def lose_data_folder(tree: dict, keep: tuple[str, ...] = ()) -> None:
    """The whole tree stopped, the gateway's data folder (all but the development world's and
    `keep`) and the run folder's actor programs deleted, the tree started again."""
    data = tree["data_dir"]
    gone = [f"data/{p.name}" for p in data.iterdir() if p.name not in (*WORLD, *keep)]
    tree["restart"](wipe=(*gone, "run/conf.d"))


def federation_info(gw: Gateway, federation_id: str) -> dict | None:
    feds = gw.post("/info", {})["federations"]
    return next((f for f in feds if f["federation_id"] == federation_id), None)


def recover(gw: Gateway, invite_code: str, federation_id: str, timeout: float = 300) -> dict:
    """`connect-fed --recover`, until the federation is served again: its info then."""
    gw.post("/connect-fed", {"invite_code": invite_code, "recover": True})

    def served() -> dict | None:
        info = federation_info(gw, federation_id)
        if info is None or info.get("recovering") or info["state"] != "running":
            return None
        return info

    info = _until("the federation recovered", timeout, served)
    assert info["recovery"]["state"] == "done" and info["recovery"]["error"] is None, info
    return info
