"""Turning what an officer wrote into envelopes: one sealed message per recipient, sharing a thread.

Pure: the caller passes the time and a source of random bytes, so the same inputs give the same bytes.
Each envelope comes with a *local copy* of its body, sealed to the sender's own encryption key, so that the
sending node can show its officers what they sent without ever storing an opened body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from protocol.codes import CrimeArea, Kind, Urgency, due_at
from protocol.envelope import EPHEMERAL_BYTES, Envelope, envelope_from, inner_plaintext
from protocol.errors import Malformed
from protocol.ids import RANDOM_BYTES, uuid7
from protocol.lifecycle import WITH_DEADLINE
from protocol.models import EnquiryBody, Header, NoticeBody, ReplyBody, SealedBody
from protocol.sealing import encrypt_to
from protocol.signing import KeyDirectory, LocalKeys

Random = Callable[[int], bytes]
"""Source of random bytes: ``os.urandom`` in a node, a fixed sequence in tests."""


@dataclass(frozen=True)
class Outgoing:
    """One envelope ready for the outbox, and the sender's own sealed copy of its body."""

    envelope: Envelope
    local_sealed: bytes


def _outgoing(
    header: Header,
    body: SealedBody,
    me: LocalKeys,
    directory: KeyDirectory,
    own_key: X25519PublicKey,
    random: Random,
) -> Outgoing:
    _, to = directory.encryption_key(header.recipient, header.created_at)
    plaintext = inner_plaintext(header, body, me.signing)  # signed once, sealed twice
    envelope = envelope_from(header, plaintext, me, to, random(EPHEMERAL_BYTES))
    return Outgoing(envelope, encrypt_to(plaintext, own_key, random(EPHEMERAL_BYTES)))


def compose_enquiry(
    body: EnquiryBody,
    recipients: list[str],
    area: CrimeArea,
    urgency: Urgency,
    me: LocalKeys,
    directory: KeyDirectory,
    own_key: X25519PublicKey,
    now: datetime,
    random: Random,
) -> list[Outgoing]:
    """One envelope per recipient, all in one new thread, each due by its urgency's deadline."""
    return _new_thread(Kind.ENQUIRY, body, recipients, area, urgency, me, directory, own_key, now, random)


def compose_notice(
    body: NoticeBody,
    recipients: list[str],
    area: CrimeArea,
    urgency: Urgency,
    me: LocalKeys,
    directory: KeyDirectory,
    own_key: X25519PublicKey,
    now: datetime,
    random: Random,
) -> list[Outgoing]:
    """A deconfliction notice: one envelope per recipient in one new thread, with no deadline (it is
    acknowledged, never answered)."""
    return _new_thread(Kind.NOTICE, body, recipients, area, urgency, me, directory, own_key, now, random)


def _new_thread(
    kind: Kind,
    body: EnquiryBody | NoticeBody,
    recipients: list[str],
    area: CrimeArea,
    urgency: Urgency,
    me: LocalKeys,
    directory: KeyDirectory,
    own_key: X25519PublicKey,
    now: datetime,
    random: Random,
) -> list[Outgoing]:
    unique = list(dict.fromkeys(recipients))
    if not unique:
        raise Malformed("a message needs at least one recipient")
    if me.participant in unique:
        raise Malformed("a message cannot be addressed to its own sender")
    ids = [uuid7(now, random(RANDOM_BYTES)) for _ in unique]
    # The thread id is an id of its own: were it one recipient's message id, every other recipient would learn
    # that id and could claim it first at a peer that is down (ids are unique per receiving node).
    thread = uuid7(now, random(RANDOM_BYTES))
    result = []
    for message_id, recipient in zip(ids, unique, strict=True):
        kid, _ = directory.encryption_key(recipient, now)
        header = Header(
            id=message_id,
            kind=kind,
            thread=thread,
            sender=me.participant,
            recipient=recipient,
            created_at=now,
            area=area,
            urgency=urgency,
            due_at=due_at(urgency, now) if kind in WITH_DEADLINE else None,
            sender_key=me.signing_kid,
            recipient_key=kid,
        )
        result.append(_outgoing(header, body, me, directory, own_key, random))
    return result


def compose_reply(
    body: ReplyBody,
    request: Header,
    me: LocalKeys,
    directory: KeyDirectory,
    own_key: X25519PublicKey,
    now: datetime,
    random: Random,
) -> Outgoing:
    """The answer to ``request`` (a message we received), back to its sender, in the same thread."""
    if request.recipient != me.participant:
        raise Malformed("only a message addressed to us can be answered")
    kid, _ = directory.encryption_key(request.sender, now)
    header = Header(
        id=uuid7(now, random(RANDOM_BYTES)),
        kind=Kind.REPLY,
        thread=request.thread,
        sender=me.participant,
        recipient=request.sender,
        created_at=now,
        in_reply_to=request.id,
        area=request.area,
        urgency=request.urgency,
        sender_key=me.signing_kid,
        recipient_key=kid,
    )
    return _outgoing(header, body, me, directory, own_key, random)
