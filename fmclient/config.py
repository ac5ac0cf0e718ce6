"""Client configs as guardians serve them (`client_config`, fedimint-core-0.13.0/src/config.rs)
and the federation id they determine.

The federation id is SHA-256 of the consensus encoding of `api_endpoints`, a
`BTreeMap<PeerId, PeerUrl{url, name}>`: count, then per peer in ascending id its id, URL and
name (the URL exactly as the JSON spells it). Each module's `config` is hex of
`BigSize(instance id) ‖ BigSize(len) ‖ the module's ClientConfig`; its instance id must be the
key it is listed under. Module instance ids are read from here, never assumed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from .encoding import DecodeError, Reader, encode


class ConfigError(ValueError):
    """A client config that is malformed or does not belong to the federation asked for."""


@dataclass(frozen=True)
class ModuleConfig:
    instance_id: int
    kind: str
    version: tuple[int, int]
    body: bytes  # the module's ClientConfig, consensus-encoded


@dataclass(frozen=True)
class ClientConfig:
    api_endpoints: dict[int, tuple[str, str]]  # peer id -> (url, name)
    modules: dict[int, ModuleConfig]
    meta: dict[str, str]
    raw: dict

    @property
    def federation_id(self) -> str:
        return federation_id(self.api_endpoints)

    def module_id(self, kind: str) -> int:
        """The instance id of the one module of `kind`; ConfigError if none or several."""
        ids = [i for i, m in self.modules.items() if m.kind == kind]
        if len(ids) != 1:
            raise ConfigError(f"the federation has {len(ids)} modules of kind {kind}, not 1")
        return ids[0]

    @property
    def threshold(self) -> int:
        """Answers needed for agreement: n - floor((n - 1) / 3) (fedimint's `threshold()`)."""
        n = len(self.api_endpoints)
        return n - (n - 1) // 3


def federation_id(api_endpoints: dict[int, tuple[str, str]]) -> str:
    data = encode(
        lambda w: w.map(
            api_endpoints,
            lambda w2, peer: w2.varint(peer),
            lambda w2, peer_url: w2.str(peer_url[0]).str(peer_url[1]),
        )
    )
    return hashlib.sha256(data).hexdigest()


def parse_client_config(doc: Any) -> ClientConfig:
    """The JSON of `client_config` (or a guardian's client.json)."""
    try:
        endpoints = {
            _peer(k): (str(v["url"]), str(v["name"])) for k, v in doc["api_endpoints"].items()
        }
        modules = {}
        for key, m in doc["modules"].items():
            instance = _peer(key)
            r = Reader(bytes.fromhex(m["config"]), f"module {instance} config")
            framed_id, body = r.framed()
            r.done()
            if framed_id != instance:
                raise ConfigError(f"module {instance}'s config is framed as module {framed_id}")
            version = (int(m["version"]["major"]), int(m["version"]["minor"]))
            modules[instance] = ModuleConfig(
                instance, str(m["kind"]), version, body.raw(body.remaining())
            )
        meta = {str(k): str(v) for k, v in (doc.get("meta") or {}).items()}
    except ConfigError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, DecodeError) as exc:
        raise ConfigError(f"malformed client config: {type(exc).__name__}: {exc}") from None
    if not endpoints:
        raise ConfigError("a client config lists at least one guardian")
    return ClientConfig(endpoints, modules, meta, doc)


def _peer(key: Any) -> int:
    n = int(key)
    if not 0 <= n <= 0xFFFF:
        raise ConfigError(f"peer or module id {key} is out of range")
    return n


# the names a Lightning node may give its network, as fmclient names it (MAGIC's values)
NODE_NETWORK = {
    "bitcoin": "mainnet",
    "main": "mainnet",
    "testnet3": "testnet",
    "testnet4": "testnet",
}


def federation_network(config: ClientConfig) -> str | None:
    """The bitcoin network the federation runs on, as its modules' configs say ("mainnet",
    "testnet", "signet", "regtest"), or None when no module this client reads says it."""
    from .lnv1 import Lnv1Config
    from .lnv2 import Lnv2Config
    from .walletv1 import WalletV1Config
    from .walletv2 import WalletConfig

    readers = {"lnv2": Lnv2Config, "ln": Lnv1Config, "walletv2": WalletConfig}
    readers["wallet"] = WalletV1Config
    for module in config.modules.values():
        reader = readers.get(module.kind)
        if reader is not None:
            try:
                return str(reader.from_bytes(module.body).network)
            except ValueError:
                continue
    return None


def same_network(federation: str, node: str) -> bool:
    """Is a node that says `node` (lnd: "mainnet", CLN: "bitcoin", …) on `federation`'s network?"""
    name = node.strip().lower()
    return NODE_NETWORK.get(name, name) == federation
