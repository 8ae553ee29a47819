"""Anonymous public-key encryption of a byte string to one X25519 key (the ECIES used for every sealed part).

    e, E   = X25519 pair from 32 caller-supplied random bytes
    k      = HKDF-SHA256(ikm = X25519(e, R), info = "ncpx/v1/seal" || E || R, 32 bytes)
    sealed = E || ChaCha20-Poly1305(k, nonce = 0^12, plaintext)

A fresh ephemeral key per seal makes the all-zero nonce safe. Authenticity is not this layer's job: callers sign
what they seal.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol.errors import CannotOpen
from protocol.signing import raw_public

EPHEMERAL_BYTES = 32
"""Random bytes :func:`encrypt_to` consumes."""
_NONCE = bytes(12)
_TAG = 16


def _derive(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"ncpx/v1/seal" + ephemeral_public + recipient_public,
    )
    return hkdf.derive(shared)


def encrypt_to(plaintext: bytes, to: X25519PublicKey, ephemeral: bytes) -> bytes:
    """Seal ``plaintext`` so that only the holder of ``to``'s private key can read it."""
    if len(ephemeral) != EPHEMERAL_BYTES:
        raise ValueError("sealing needs exactly 32 random bytes")
    eph = X25519PrivateKey.from_private_bytes(ephemeral)
    eph_public = raw_public(eph.public_key())
    key = _derive(eph.exchange(to), eph_public, raw_public(to))
    return eph_public + ChaCha20Poly1305(key).encrypt(_NONCE, plaintext, None)


def decrypt_with(sealed: bytes, key: X25519PrivateKey) -> bytes:
    """Inverse of :func:`encrypt_to`; :class:`CannotOpen` when ``key`` is not the one it was sealed to."""
    if len(sealed) < EPHEMERAL_BYTES + _TAG:
        raise CannotOpen
    eph_public = sealed[:EPHEMERAL_BYTES]
    try:
        shared = key.exchange(X25519PublicKey.from_public_bytes(eph_public))
        cipher = ChaCha20Poly1305(_derive(shared, eph_public, raw_public(key.public_key())))
        return cipher.decrypt(_NONCE, sealed[EPHEMERAL_BYTES:], None)
    except (InvalidTag, ValueError) as exc:
        raise CannotOpen from exc
