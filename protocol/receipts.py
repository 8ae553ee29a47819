"""Signed receipts (proof of delivery), signed refusals, and signed metadata records (what the coordinator tallies).

Both are clear-text structures signed by their author over their canonical form without the ``sig`` field.
"""

from __future__ import annotations

from datetime import datetime

from protocol.encoding import canonical, digest_text
from protocol.envelope import Envelope
from protocol.errors import Malformed, NotForUs
from protocol.models import MetadataRecord, Receipt, Refusal
from protocol.signing import KeyDirectory, LocalKeys, sign, verify


def _unsigned(model: Receipt | Refusal | MetadataRecord) -> bytes:
    data = model.wire()
    data.pop("sig", None)
    return canonical(data)


def make_receipt(
    envelope: Envelope, me: LocalKeys, received_at: datetime, envelope_digest: str | None = None
) -> Receipt:
    """The receipt ``me`` returns for an envelope it has durably stored (pass its digest if already known)."""
    unsigned = Receipt(
        message_id=envelope.header.id,
        sender=envelope.header.sender,
        receiver=me.participant,
        envelope_digest=envelope_digest or envelope.digest(),
        received_at=received_at,
        receiver_key=me.signing_kid,
    )
    return unsigned.model_copy(update={"sig": sign(me.signing, "receipt", _unsigned(unsigned))})


def verify_receipt(
    receipt: Receipt, envelope: Envelope, directory: KeyDirectory, envelope_digest: str | None = None
) -> None:
    """Check that ``receipt`` is the addressed recipient's signed acknowledgement of exactly ``envelope``."""
    header = envelope.header
    if receipt.receiver != header.recipient or receipt.sender != header.sender:
        raise NotForUs("receipt names other parties than the envelope")
    if receipt.message_id != header.id or receipt.envelope_digest != (envelope_digest or envelope.digest()):
        raise Malformed("receipt is for another envelope")
    key = directory.signing_key(receipt.receiver, receipt.receiver_key, receipt.received_at)
    verify(key, "receipt", _unsigned(receipt), receipt.sig)


def make_refusal(
    sender: str,
    message_id: str | None,
    envelope_digest: str,
    code: str,
    me: LocalKeys,
    refused_at: datetime,
) -> Refusal:
    """The refusal ``me`` returns for an item of ``sender``'s batch that it will never accept."""
    unsigned = Refusal(
        message_id=message_id,
        sender=sender,
        receiver=me.participant,
        envelope_digest=envelope_digest,
        code=code,
        refused_at=refused_at,
        receiver_key=me.signing_kid,
    )
    return unsigned.model_copy(update={"sig": sign(me.signing, "refusal", _unsigned(unsigned))})


def verify_refusal(
    refusal: Refusal,
    sender: str,
    receiver: str,
    message_id: str,
    envelope_digest: str,
    directory: KeyDirectory,
) -> None:
    """Check that ``refusal`` is ``receiver``'s signed refusal of exactly the envelope ``sender`` sent."""
    if refusal.receiver != receiver or refusal.sender != sender:
        raise NotForUs("refusal names other parties than the envelope")
    if refusal.message_id != message_id or refusal.envelope_digest != envelope_digest:
        raise Malformed("refusal is for another envelope")
    key = directory.signing_key(refusal.receiver, refusal.receiver_key, refusal.refused_at)
    verify(key, "refusal", _unsigned(refusal), refusal.sig)


def receipt_digest(receipt: Receipt) -> str:
    """Digest of a signed receipt, as metadata records name it."""
    return digest_text(canonical(receipt.wire()))


def sign_record(record: MetadataRecord, me: LocalKeys) -> MetadataRecord:
    """``record`` signed by its reporter."""
    if record.reporter != me.participant or record.reporter_key != me.signing_kid:
        raise ValueError("record names another reporter or key than the one signing it")
    return record.model_copy(update={"sig": sign(me.signing, "record", _unsigned(record))})


def verify_record(record: MetadataRecord, directory: KeyDirectory) -> None:
    """Check a metadata record's signature, and that its reporter is a party to the exchange it describes."""
    if record.reporter not in (record.sender, record.recipient):
        raise NotForUs("a record may only be made by a party to the exchange")
    key = directory.signing_key(record.reporter, record.reporter_key, record.at)
    verify(key, "record", _unsigned(record), record.sig)
