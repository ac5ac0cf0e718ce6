"""How Mintgate writes values for people: times, expiries, short channel ids, process states,
federation names, amounts (sat with the msat remainder: gwcore.values.amount_text), and reads
whole numbers and amounts in sat typed into forms. Pure functions (Jinja filters and checks)."""

from __future__ import annotations

import time


def names(federations: list[dict]) -> dict[str, str]:
    """{federation id: its name} for the payment log (the id's start when it has no name)."""
    return {f["federation_id"]: f.get("name") or f["federation_id"][:12] for f in federations}


def sat_to_msat(text: str) -> int | None:
    """An amount in sat as a person types it, to the msat ("20" -> 20000, "0.5" and "0.500" ->
    500, "1,234.567" -> 1234567); None for anything else (more than 3 decimals, a sign, …)."""
    whole_part, _, frac = text.replace(",", "").strip().partition(".")
    if not whole(whole_part or "0") or (frac and not (whole(frac) and len(frac) <= 3)):
        return None
    return int(whole_part or "0") * 1000 + int(frac.ljust(3, "0") or "0")


def whole(text: str) -> bool:
    """A whole number as a person types it: ASCII digits, at most 18 of them."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def ts(t: float | None) -> str:
    """A Unix time as "2026-11-25 10:41:07 UTC" ("-" when unknown)."""
    if not t:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(t)))


HEALTH = {
    "RUNNING": "running",
    "STARTING": "restarting",
    "BACKOFF": "restarting",
    "STOPPING": "stopping",
    "STOPPED": "stopped",
    "EXITED": "crashed",
    "FATAL": "crashed",
}


def health(state: str) -> str:
    """A supervisor process state as the operator reads it: running, restarting, crashed, …"""
    return HEALTH.get(state, state.lower())


def scid(scid: int) -> str:
    """A short channel id as block x transaction x output."""
    return f"{scid >> 40}x{(scid >> 16) & 0xFFFFFF}x{scid & 0xFFFF}"


def until(t: float | None, now: float) -> str:
    """How far `t` is from `now`, for expiries: "in 9 min", "expired 2 min ago"."""
    if not t:
        return "-"
    minutes = round((float(t) - now) / 60)
    return f"in {minutes} min" if minutes >= 0 else f"expired {-minutes} min ago"
