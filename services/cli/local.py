"""The `gateway-cli` commands that need no gateway and no password: they make, on this machine,
what a gateway's settings ask for (the API password's bcrypt hash; the TLS folder of an extension
reached over TCP)."""

from __future__ import annotations

import sys
from pathlib import Path

import bcrypt
import click

from gwcore.constants import MAX_PASSWORD_BYTES

from . import extension_certs
from .client import ApiError
from .context import fail
from .output import out


@click.command("create-password-hash")
@click.argument("password", required=False)
def create_password_hash(password: str | None) -> None:
    """A bcrypt hash for GATEWAY_API_PASSWORD_HASH (asks for the password, twice, when it is
    not given; from a pipe, reads one line)."""
    if password:
        click.echo(
            "warning: a password on the command line is visible to other users; run without it"
            " to be asked",
            err=True,
        )
    elif sys.stdin.isatty():
        password = click.prompt("new gateway password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        fail(ApiError("invalid", "invalid_input", "the password must not be empty"))
    if len(password.encode()) > MAX_PASSWORD_BYTES:  # bcrypt would refuse it (or cut it short)
        fail(
            ApiError(
                "invalid",
                "invalid_input",
                f"the password is {len(password.encode())} bytes long (UTF-8): bcrypt reads at most"
                f" {MAX_PASSWORD_BYTES}; choose a shorter one",
            )
        )
    out({"password_hash": bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()})


@click.command("make-extension-certs")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
def make_extension_certs(folder: Path) -> None:
    """The TLS folder for a Lightning extension reached over TCP (mutual TLS): a CA of its own,
    the extension's certificate and the gateway's, keys 0600. Give the folder to the gateway
    (GATEWAY_LNRPC_TLS_DIR) and ca.crt + extension.* to the extension (the CLN plugin's
    fm-gateway-tls-dir). Never overwrites."""
    try:
        out(extension_certs.make_extension_certs(folder))
    except extension_certs.CertFolderError as exc:
        fail(ApiError("invalid", "invalid_input", str(exc)))


COMMANDS = (create_password_hash, make_extension_certs)
