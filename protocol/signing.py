"""Signatures with domain separation, key ids, and the directory interface the roster implements.

Every signature ncpx makes is over ``b"ncpx/v1/<purpose>\\0" + payload``: a signature made for one purpose (a
receipt, say) can never be replayed as another (an envelope).

Keys are held as ``cryptography`` objects (key files, the roster and the X25519 side all use them), but signing
and verifying run through libsodium (PyNaCl): the same standard Ed25519, so the bytes are identical (the published
vectors prove it), at about half the CPU of OpenSSL's verification, the costliest primitive per message.
libsodium is also the stricter verifier: it refuses non-canonical and small-order points that OpenSSL accepts,
which no honest signer produces.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import nacl.bindings
import nacl.exceptions
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from protocol.encoding import b64e, sha256
from protocol.errors import BadSignature, Malformed


def raw_public(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: Ed25519PublicKey | X25519PublicKey) -> str:
    """A short, stable id for a public key: base64url of the first 15 bytes of its SHA-256 (20 characters)."""
    return b64e(sha256(raw_public(key))[:15])


def ed25519_public(raw: bytes) -> Ed25519PublicKey:
    """Parse 32 raw bytes as an Ed25519 public key."""
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise Malformed("invalid Ed25519 public key") from exc


def x25519_public(raw: bytes) -> X25519PublicKey:
    """Parse 32 raw bytes as an X25519 public key."""
    try:
        return X25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise Malformed("invalid X25519 public key") from exc


SIGNATURE_BYTES = nacl.bindings.crypto_sign_BYTES


def _tagged(purpose: str, payload: bytes) -> bytes:
    return b"ncpx/v1/" + purpose.encode("ascii") + b"\0" + payload


def sign(key: Ed25519PrivateKey, purpose: str, payload: bytes) -> bytes:
    """Ed25519 signature over ``payload`` for ``purpose``."""
    secret = key.private_bytes_raw() + raw_public(key.public_key())  # libsodium's form: seed, then public key
    return nacl.bindings.crypto_sign(_tagged(purpose, payload), secret)[:SIGNATURE_BYTES]


def verify(key: Ed25519PublicKey, purpose: str, payload: bytes, signature: bytes) -> None:
    """Check a signature made by :func:`sign`; raises :class:`BadSignature`."""
    # libsodium reads the first 64 bytes of signature + message as the signature: any other length would move
    # bytes between the two, so that a signature over a longer message could pass for one over ``payload``.
    if len(signature) != SIGNATURE_BYTES:
        raise BadSignature
    try:
        nacl.bindings.crypto_sign_open(signature + _tagged(purpose, payload), raw_public(key))
    except nacl.exceptions.BadSignatureError as exc:
        raise BadSignature from exc


class KeyDirectory(Protocol):
    """Who holds which public key, as of a moment: implemented by the verified roster (``keys.Roster``)."""

    def signing_key(self, participant: str, kid: str, at: datetime) -> Ed25519PublicKey:
        """The signing key ``kid`` of ``participant`` if it was valid at ``at`` and is not revoked now.

        Raises UnknownSender, UnknownKey, RevokedKey or ExpiredKey.
        """
        ...

    def encryption_key(self, participant: str, at: datetime) -> tuple[str, X25519PublicKey]:
        """The encryption key to seal to for ``participant`` at ``at``: the newest valid one.

        Raises UnknownSender or NoUsableKey.
        """
        ...


class OpeningKeys(Protocol):
    """What opening an envelope needs of our identity: who we are and our private encryption keys.

    No signing key: a process that only checks and opens envelopes (a node's checking pool) never holds one.
    """

    @property
    def participant(self) -> str:
        """Our participant id."""
        ...

    def decryption_key(self, kid: str) -> X25519PrivateKey | None:
        """The private encryption key for ``kid`` if we still hold it (old keys stay during an overlap)."""
        ...


class LocalKeys(OpeningKeys, Protocol):
    """The private half of one participant's identity, as the protocol core needs it."""

    @property
    def signing(self) -> Ed25519PrivateKey:
        """The signing key in use."""
        ...

    @property
    def signing_kid(self) -> str:
        """Key id of :attr:`signing`."""
        ...
