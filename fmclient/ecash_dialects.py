"""The e-cash module versions this client speaks, each by its dialect (fmclient.ecash.Dialect:
fmclient.mintv1.Dialect, fmclient.mintv2.Dialect): the one a federation's client config has,
chosen by kind (a federation with both is served with mint v1, as gatewayd does), and any
version's e-cash string read without a federation (the API finds the notes' federation so)."""

from __future__ import annotations

from . import mintv1, mintv2
from .config import ClientConfig, ConfigError
from .ecash import Dialect, EcashError, Received

# the e-cash module versions, in the order of preference when a federation has several
DIALECTS: tuple[type[Dialect], ...] = (mintv1.Dialect, mintv2.Dialect)


def dialect_for(config: ClientConfig) -> Dialect:
    """The federation's e-cash module, spoken by its version's dialect."""
    for cls in DIALECTS:
        if any(m.kind == cls.kind for m in config.modules.values()):
            module = config.module_id(cls.kind)
            return cls(module, config.modules[module].body)
    kinds = ", ".join(c.kind for c in DIALECTS)
    raise ConfigError(f"the federation has no e-cash module ({kinds})")


def read_ecash(text: object) -> tuple[str, Received]:
    """Any version's e-cash string, read without a federation: its module kind and what it
    says (`federation`: the issuer's id, or only its first 8 hex digits for mint v1 notes
    carrying no invite). EcashError when no version reads it."""
    why = []
    for cls in DIALECTS:
        try:
            return cls.kind, cls.parse(text)
        except EcashError as exc:
            why.append(f"{cls.kind}: {exc}")
    raise EcashError(f"not e-cash ({'; '.join(why)})")
