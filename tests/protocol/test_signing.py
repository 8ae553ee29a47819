"""Ed25519 through libsodium: the same signatures as any standard implementation, and no looser checks."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from protocol.errors import BadSignature
from protocol.signing import sign, verify

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PAYLOAD = b'{"digest":"abc"}'


@pytest.mark.parametrize("purpose", ["receipt", "outer", "roster"])
def test_signatures_are_byte_for_byte_those_of_openssl(purpose: str) -> None:
    tagged = b"ncpx/v1/" + purpose.encode() + b"\0" + PAYLOAD
    signature = sign(KEY, purpose, PAYLOAD)
    assert signature == KEY.sign(tagged)
    verify(KEY.public_key(), purpose, PAYLOAD, signature)


def test_a_signature_for_another_purpose_or_payload_is_refused() -> None:
    signature = sign(KEY, "receipt", PAYLOAD)
    with pytest.raises(BadSignature):
        verify(KEY.public_key(), "record", PAYLOAD, signature)
    with pytest.raises(BadSignature):
        verify(KEY.public_key(), "receipt", PAYLOAD + b" ", signature)


def test_a_longer_signature_cannot_carry_a_prefix_of_the_message() -> None:
    """Signature and message travel to libsodium as one byte string: a 65-byte "signature" whose last byte the
    key holder signed in front of the tagged payload must not pass for a signature over the payload alone."""
    prefix = b"X"
    smuggled = KEY.sign(prefix + b"ncpx/v1/receipt\0" + PAYLOAD) + prefix
    with pytest.raises(BadSignature):
        verify(KEY.public_key(), "receipt", PAYLOAD, smuggled)
    with pytest.raises(BadSignature):
        verify(KEY.public_key(), "receipt", PAYLOAD, sign(KEY, "receipt", PAYLOAD)[:63])


def test_a_small_order_key_verifies_nothing() -> None:
    """The identity point as a public key, with R the identity and S zero, satisfies the verification equation
    for every message; OpenSSL accepts it, libsodium refuses small-order keys and points."""
    identity_point = bytes([1]) + bytes(31)
    weak = Ed25519PublicKey.from_public_bytes(identity_point)
    with pytest.raises(BadSignature):
        verify(weak, "receipt", PAYLOAD, identity_point + bytes(32))
