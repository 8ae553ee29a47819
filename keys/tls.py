"""A participant's TLS certificate for the federation listener, pinned by the roster rather than vouched for by a CA.

Nodes call each other with mutual TLS. A public CA would prove only that someone controls a host name; what a
node must know is *which participant* calls it, and the roster authority already vouches for that. So each node
makes a self-signed certificate at setup, hands it to the authority with its public card, and the signed roster
lists it: a peer accepts exactly the certificates the roster lists for that participant, at the TLS layer.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from cryptography.x509.oid import NameOID

from keys.keyfile import write_secret_bytes
from protocol.errors import KeyFileError

TLS_CERT_FILE = "tls.crt"
TLS_KEY_FILE = "tls.key"
VALIDITY = timedelta(days=3 * 365)
"""Long, because renewing means a roster update; revocation in the roster ends it sooner."""


def make_tls_certificate(
    directory: Path, participant: str, now: datetime, passphrase: bytes | None = None
) -> bytes:
    """Write a new P-256 key (0600, sealed by ``passphrase`` when given) and its self-signed certificate into
    ``directory``; return the certificate (DER) for the public card."""
    if passphrase is not None and not passphrase:
        raise KeyFileError(
            "the passphrase is empty, which would leave the TLS key unprotected: set one, or none"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"ncpx {participant}")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(f"{participant.lower()}.ncpx.invalid")]), False
        )
        .sign(key, hashes.SHA256())
    )
    encryption = BestAvailableEncryption(passphrase) if passphrase else NoEncryption()
    write_secret_bytes(
        directory / TLS_KEY_FILE, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, encryption)
    )
    (directory / TLS_CERT_FILE).write_bytes(certificate.public_bytes(Encoding.PEM))
    return certificate.public_bytes(Encoding.DER)


def read_tls_certificate(directory: Path) -> bytes | None:
    """The certificate (DER) in ``directory``, or None when the participant has none."""
    path = directory / TLS_CERT_FILE
    return load_certificate(path) if path.exists() else None


def load_certificate(path: Path) -> bytes:
    """A PEM certificate file as DER, the form the roster lists."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"{path} is not a readable PEM certificate") from exc


def fingerprint(der: bytes) -> str:
    """SHA-256 of a certificate, how a presented certificate is matched to the roster."""
    return hashlib.sha256(der).hexdigest()
