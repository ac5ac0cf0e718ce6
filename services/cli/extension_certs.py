"""The TLS folder for a Lightning extension reached over TCP (`gateway-cli make-extension-certs`).

Makes a CA of its own (P-256, 10 years), the extension's certificate (issued to
`fmgw-lnrpc-extension`, server use only) and the gateway's (client use only), each signed by
that CA, then forgets the CA's key: nothing else can ever be signed by it, so a certificate it
signed is one of these two. Renewing is making a new folder and giving it to both sides.

Files (`gwcore.constants.LNRPC_TLS_*`), each 0600, in a folder made 0700 when missing:
`ca.crt`, `extension.crt`, `extension.key`, `gateway.crt`, `gateway.key`. The extension needs
`ca.crt` and `extension.*`, the gateway `ca.crt` and `gateway.*`. Never overwrites: an existing
file is an error, and nothing is written.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gwcore.constants import (
    LNRPC_TLS_CA,
    LNRPC_TLS_CLIENT_NAME,
    LNRPC_TLS_EXTENSION_CERT,
    LNRPC_TLS_EXTENSION_KEY,
    LNRPC_TLS_GATEWAY_CERT,
    LNRPC_TLS_GATEWAY_KEY,
    LNRPC_TLS_SERVER_NAME,
)

VALID_DAYS = 3650
FILES = (
    LNRPC_TLS_CA,
    LNRPC_TLS_EXTENSION_CERT,
    LNRPC_TLS_EXTENSION_KEY,
    LNRPC_TLS_GATEWAY_CERT,
    LNRPC_TLS_GATEWAY_KEY,
)


class CertFolderError(ValueError):
    """The folder cannot take the files (the message is one line)."""


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    usage: x509.ObjectIdentifier,
    start: dt.datetime,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_extension_certs(folder: Path, *, now: dt.datetime | None = None) -> dict:
    """Write the five files into `folder` (made 0700 if missing); what was written."""
    folder = Path(folder).expanduser().absolute()
    taken = [name for name in FILES if (folder / name).exists()]
    if taken:
        raise CertFolderError(
            f"{folder} already has {', '.join(taken)}: choose an empty folder (nothing written)"
        )
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(hours=1)  # clocks differ a little
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("fmgw Lightning extension CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ext_key = ec.generate_private_key(ec.SECP256R1())
    gw_key = ec.generate_private_key(ec.SECP256R1())
    ext = _issue(
        LNRPC_TLS_SERVER_NAME, ext_key, ca_key, ca_name, ExtendedKeyUsageOID.SERVER_AUTH, start
    )
    gw = _issue(
        LNRPC_TLS_CLIENT_NAME, gw_key, ca_key, ca_name, ExtendedKeyUsageOID.CLIENT_AUTH, start
    )
    contents = {
        LNRPC_TLS_CA: _pem_cert(ca),
        LNRPC_TLS_EXTENSION_CERT: _pem_cert(ext),
        LNRPC_TLS_EXTENSION_KEY: _pem_key(ext_key),
        LNRPC_TLS_GATEWAY_CERT: _pem_cert(gw),
        LNRPC_TLS_GATEWAY_KEY: _pem_key(gw_key),
    }
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise CertFolderError(f"cannot make {folder}: {exc.strerror}") from None
    for name, data in contents.items():
        try:
            fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise CertFolderError(f"cannot write {folder / name}: {exc.strerror}") from None
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return {
        "folder": str(folder),
        "gateway": [LNRPC_TLS_CA, LNRPC_TLS_GATEWAY_CERT, LNRPC_TLS_GATEWAY_KEY],
        "extension": [LNRPC_TLS_CA, LNRPC_TLS_EXTENSION_CERT, LNRPC_TLS_EXTENSION_KEY],
        "not_after": ca.not_valid_after_utc.isoformat(),
    }
