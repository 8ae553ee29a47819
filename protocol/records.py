"""Metadata records: what a node tells the coordinator about an exchange, built only from clear header fields.

A record is made from a :class:`~protocol.models.Header` and digests, never from a body or a sealed part, so a
record cannot carry content even by mistake: the function has no access to it. Both ends of an exchange report,
and the coordinator pairs the two sides (see ``node.coordinator.reconcile``).

Events:

- ``sent``: the sender holds the receiver's signed receipt (``receipt_digest`` names it);
- ``received``: the receiver stored the envelope and signed that receipt;
- ``read``: an officer at the receiver opened it;
- ``answered``: the receiver sent a reply to this enquiry (``at`` is the reply's creation time).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from protocol.ids import RANDOM_BYTES, uuid7
from protocol.models import Header, MetadataRecord
from protocol.receipts import sign_record
from protocol.signing import LocalKeys

Event = Literal["sent", "received", "read", "answered"]


def make_record(
    header: Header,
    event: Event,
    me: LocalKeys,
    at: datetime,
    envelope_digest: str,
    random: bytes,
    receipt_digest: str | None = None,
) -> MetadataRecord:
    """A signed record of ``event`` for the message ``header`` describes; ``random`` is 10 fresh bytes."""
    if len(random) != RANDOM_BYTES:
        raise ValueError("a record id needs exactly 10 random bytes")
    record = MetadataRecord(
        record_id=uuid7(at, random),
        event=event,
        reporter=me.participant,
        at=at,
        message_id=header.id,
        thread=header.thread,
        kind=header.kind,
        sender=header.sender,
        recipient=header.recipient,
        area=header.area,
        urgency=header.urgency,
        created_at=header.created_at,
        due_at=header.due_at,
        in_reply_to=header.in_reply_to,
        envelope_digest=envelope_digest,
        receipt_digest=receipt_digest,
        reporter_key=me.signing_kid,
    )
    return sign_record(record, me)
