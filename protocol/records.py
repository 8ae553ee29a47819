"""Metadata records: what a node tells the coordinator about an exchange, built only from clear header fields.

A record is made from a :class:`~protocol.models.Header` and digests, never from a body or a sealed part, so a
record cannot carry content even by mistake: the function has no access to it. Both ends of an exchange report,
and the coordinator pairs the two sides (see ``node.coordinator.store``).

Events, and the evidence each carries:

- ``sent``: the sender holds the receiver's signed receipt, and the record carries that receipt itself, so
  that the coordinator checks the receiver's signature instead of taking the sender's word;
- ``received``: the receiver stored the envelope and signed that receipt (``receipt_digest`` names it; the
  record is signed by the receipt's own author);
- ``read``: an officer at the receiver opened it;
- ``answered``: the receiver replied to this enquiry (``at`` is the reply's creation time); the record names
  the reply (``reply_id``, ``reply_digest``), and the coordinator counts the answer only once the reply's own
  ``sent`` record brings the enquirer's receipt for exactly that envelope;
- ``acknowledged``: an officer at the receiver acknowledged this deconfliction notice (notices only).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from protocol.ids import RANDOM_BYTES, uuid7
from protocol.models import Header, MetadataRecord, Receipt
from protocol.receipts import receipt_digest, sign_record
from protocol.signing import LocalKeys

Event = Literal["sent", "received", "read", "answered", "acknowledged"]


def make_record(
    header: Header,
    event: Event,
    me: LocalKeys,
    at: datetime,
    envelope_digest: str,
    random: bytes,
    receipt: Receipt | None = None,
    reply: tuple[str, str] | None = None,
) -> MetadataRecord:
    """A signed record of ``event`` for the message ``header`` describes; ``random`` is 10 fresh bytes.

    ``receipt`` is the message's signed receipt (``sent`` carries it, ``received`` names its digest);
    ``reply`` is the (id, envelope digest) of the reply an ``answered`` record names.
    """
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
        receipt=receipt if event == "sent" else None,
        receipt_digest=receipt_digest(receipt) if event == "received" and receipt is not None else None,
        reply_id=reply[0] if reply else None,
        reply_digest=reply[1] if reply else None,
        reporter_key=me.signing_kid,
    )
    return sign_record(record, me)
