"""A queued envelope whose recipient's keys changed after it was sealed: send it, seal it again, or end it.

Checked before every attempt, against the roster in force at that moment:

- the recipient left the roster or was revoked: the message ends ``undeliverable (revoked_key)``, never pushed
  to a URL the roster no longer vouches for;
- it is sealed to the recipient's current key: it goes as it is;
- it is sealed to an older key (rotated, retired or revoked) and was never handed to the peer: it is sealed
  again to the current key. Same id, thread, times and body bytes, so the receiver, which keys messages by
  (sender, id), stores it once; the old bytes cannot be there, since nothing ever left with them;
- it may have reached the peer already (an earlier request got past the connection) and its key is revoked:
  sealing it again would be refused as ``replayed`` if the peer stored the first copy, and resending the first
  copy would push bytes sealed to a revoked key, so it ends ``undeliverable (revoked_key)``;
- it may have reached the peer and its key was only superseded: it goes as it is; the peer keeps its older keys,
  and answers a copy it already holds with its original receipt (exactly once either way).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from protocol.compose import Outgoing
from protocol.envelope import EPHEMERAL_BYTES, Envelope, open_body_bytes, plaintext_of, signed_envelope
from protocol.errors import CannotOpen
from protocol.sealing import encrypt_to


class KeyAction(StrEnum):
    """What becomes of one queued envelope before an attempt."""

    SEND = "send"
    RESEAL = "reseal"
    WITHDRAW = "withdraw"


@dataclass(frozen=True)
class RecipientKeys:
    """What the roster in force says about the recipient of queued envelopes."""

    withdrawn: bool
    """The recipient left the roster or was revoked."""
    current: str | None
    """The key id to seal to now (None: no key of the recipient is valid now)."""
    revoked: frozenset[str]
    """Ids of the recipient's encryption keys that were revoked."""


def key_action(keys: RecipientKeys, sealed_to: str | None, handed: bool) -> KeyAction:
    """What to do with an envelope sealed to ``sealed_to``; ``handed``: an earlier request with it got past
    the connection, so the peer may hold it."""
    if keys.withdrawn:
        return KeyAction.WITHDRAW
    if sealed_to == keys.current:
        return KeyAction.SEND
    if keys.current is not None and not handed:
        return KeyAction.RESEAL
    return KeyAction.WITHDRAW if sealed_to in keys.revoked else KeyAction.SEND


def reseal(
    envelope: Envelope,
    own_copy: bytes,
    own_keys: Sequence[X25519PrivateKey],
    signer: Ed25519PrivateKey,
    to: tuple[str, X25519PublicKey],
    own_key: X25519PublicKey,
    random: Callable[[int], bytes],
) -> Outgoing:
    """``envelope`` sealed again to ``to`` (key id, key), from the sender's own copy of its body.

    ``signer`` is the private key the header names (``sender_key``): the header keeps its key and creation
    time, so the signature stays valid at that time whatever key the sender uses today. The own copy must open
    with one of ``own_keys`` and carry ``envelope``'s header and the sender's inner signature (a copy that does
    not is :class:`CannotOpen`, :class:`~protocol.errors.TamperedHeader` or
    :class:`~protocol.errors.BadSignature`). The new own copy is sealed to ``own_key``.
    """
    body: bytes | None = None
    for key in own_keys:
        try:
            body = open_body_bytes(envelope.header, own_copy, key, signer.public_key())
            break
        except CannotOpen:
            continue
    if body is None:
        raise CannotOpen("no key held opens the sender's own copy of this message")
    header = envelope.header.model_copy(update={"recipient_key": to[0]})
    plaintext = plaintext_of(header, body, signer)
    resealed = signed_envelope(header, plaintext, signer, to[1], random(EPHEMERAL_BYTES))
    return Outgoing(resealed, encrypt_to(plaintext, own_key, random(EPHEMERAL_BYTES)))
