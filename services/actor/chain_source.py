"""The operator's view of the bitcoin chain, for the modules that need one (wallet v1: its
deposits are found and proven from the chain, not listed by the federation), as gatewayd's
`--bitcoind-url` / `--esplora-url`: the bitcoind JSON-RPC (no wallet or transaction index
needed) or an Esplora HTTP API. The RPC password is read from a file (or bitcoind's `.cookie`,
`user:password`), so it never sits in a supervisord program's environment.
"""

from __future__ import annotations

from pathlib import Path

from fmclient.chain import BitcoindChain, ChainSource, EsploraChain


class ChainSettingsError(ValueError):
    """The chain source's settings are incomplete or unreadable: one line saying which."""


def chain_source(
    bitcoind_url: str = "",
    bitcoind_username: str = "",
    bitcoind_password_file: str = "",
    esplora_url: str = "",
) -> ChainSource | None:
    """The configured chain source (bitcoind first), or None when none is configured."""
    if bitcoind_url:
        if not bitcoind_password_file:
            raise ChainSettingsError("bitcoind_url needs bitcoind_password_file (or a .cookie)")
        try:
            secret = Path(bitcoind_password_file).read_text().strip()
        except OSError as exc:
            raise ChainSettingsError(f"bitcoind_password_file: {exc.strerror}") from None
        user, password = bitcoind_username, secret
        if not user:  # a cookie file: "user:password"
            user, sep, password = secret.partition(":")
            if not sep:
                raise ChainSettingsError(
                    "bitcoind_username is empty and the password file is no .cookie (user:password)"
                )
        return BitcoindChain(bitcoind_url, user, password)
    if esplora_url:
        return EsploraChain(esplora_url)
    return None
