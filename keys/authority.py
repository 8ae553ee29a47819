"""The roster authority's offline signing key, kept in its own 0600 file."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from keys.keyfile import read_private, write_private
from keys.roster import authority_public_text
from protocol.encoding import b64d, b64e
from protocol.errors import KeyFileError, Malformed


def generate_authority(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """Create the authority key at ``path`` (refusing to overwrite one) and its public line beside it."""
    if path.exists():
        raise KeyFileError(f"{path} exists; refusing to overwrite an authority key")
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    write_private(path, {"authority": b64e(raw)}, passphrase)
    path.with_suffix(".pub").write_text(authority_public_text(key.public_key()) + "\n")
    return key


def load_authority(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """Read the authority key written by :func:`generate_authority`."""
    payload = read_private(path, passphrase)
    try:
        return Ed25519PrivateKey.from_private_bytes(b64d(payload["authority"]))
    except (KeyError, TypeError, ValueError, Malformed) as exc:
        raise KeyFileError(f"{path} is not an authority key file") from exc
