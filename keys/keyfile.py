"""Private key files: written 0600 and atomically, optionally sealed under a passphrase.

A passphrase-protected file is encrypted with XSalsa20-Poly1305 (libsodium SecretBox) under a key derived by
Argon2id, so that a copied key file is useless without the passphrase. A file readable by group or others is
refused on load, as ssh does: a key that others could have read is no longer a secret.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from protocol.encoding import b64d, b64e
from protocol.errors import KeyFileError, Malformed

_FORMAT = "ncpx-keyfile-1"


def write_private(path: Path, payload: dict[str, Any], passphrase: bytes | None) -> None:
    """Write ``payload`` (JSON) to ``path`` with mode 0600, encrypted when a passphrase is given."""
    if passphrase is not None and not passphrase:
        raise KeyFileError(
            "the passphrase is empty, which would leave the key unprotected: set a passphrase, or configure none"
        )
    plain = json.dumps(payload).encode("utf-8")
    if passphrase:
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        ops, mem = nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_MODERATE
        key = nacl.pwhash.argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, ops, mem)
        box = nacl.secret.SecretBox(key).encrypt(plain)
        document: dict[str, Any] = {
            "format": _FORMAT,
            "kdf": {"name": "argon2id", "salt": b64e(salt), "opslimit": ops, "memlimit": mem},
            "box": b64e(bytes(box)),
        }
    else:
        document = {"format": _FORMAT, "plain": payload}
    write_secret_bytes(path, json.dumps(document, indent=2).encode("utf-8") + b"\n")


def write_secret_bytes(path: Path, data: bytes) -> None:
    """Create or replace ``path`` atomically with mode 0600 from the first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def read_private(path: Path, passphrase: bytes | None) -> dict[str, Any]:
    """Load a key file written by :func:`write_private`."""
    try:
        info = path.stat()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}") from exc
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise KeyFileError(f"key file {path} is readable by others; run: chmod 600 {path}")
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"key file {path} is not an ncpx key file") from exc
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise KeyFileError(f"key file {path} is not an ncpx key file")
    if "plain" in document:
        payload = document["plain"]
    else:
        if not passphrase:
            raise KeyFileError(f"key file {path} is protected by a passphrase")
        try:
            kdf = document["kdf"]
            key = nacl.pwhash.argon2id.kdf(
                nacl.secret.SecretBox.KEY_SIZE,
                passphrase,
                b64d(kdf["salt"]),
                int(kdf["opslimit"]),
                int(kdf["memlimit"]),
            )
            payload = json.loads(nacl.secret.SecretBox(key).decrypt(b64d(document["box"])))
        except nacl.exceptions.CryptoError as exc:
            raise KeyFileError(f"wrong passphrase for key file {path}") from exc
        except (KeyError, TypeError, ValueError, Malformed) as exc:
            raise KeyFileError(f"key file {path} is damaged") from exc
    if not isinstance(payload, dict):
        raise KeyFileError(f"key file {path} is damaged")
    return payload
