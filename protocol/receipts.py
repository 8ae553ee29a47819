"""Signed receipts (proof of delivery), signed refusals, and signed metadata records (what the coordinator tallies).

Both are clear-text structures signed by their author over their canonical form without the ``sig`` field.
"""

from __future__ import annotations

from datetime import datetime

from protocol.encoding import canonical, digest_text
from protocol.envelope import Envelope
from protocol.errors import BadSignature, Malformed, NotForUs, Unproven
from protocol.models import MetadataRecord, Receipt, Refusal
from protocol.signing import KeyDirectory, LocalKeys, sign, verify


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
    return sign_receipt(unsigned, me)


def sign_receipt(receipt: Receipt, me: LocalKeys) -> Receipt:
    """``receipt`` signed by its receiver (for a receipt built from fields, as the coordinator benchmark does)."""
    if receipt.receiver != me.participant or receipt.receiver_key != me.signing_kid:
        raise ValueError("receipt names another receiver or key than the one signing it")
    return receipt.model_copy(update={"sig": sign(me.signing, "receipt", receipt.unsigned_bytes())})


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
    verify(key, "receipt", receipt.unsigned_bytes(), receipt.sig)


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
    return unsigned.model_copy(update={"sig": sign(me.signing, "refusal", unsigned.unsigned_bytes())})


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
    verify(key, "refusal", refusal.unsigned_bytes(), refusal.sig)


def receipt_digest(receipt: Receipt) -> str:
    """Digest of a signed receipt, as metadata records name it."""
    return digest_text(canonical(receipt.wire()))


def sign_record(record: MetadataRecord, me: LocalKeys) -> MetadataRecord:
    """``record`` signed by its reporter."""
    if record.reporter != me.participant or record.reporter_key != me.signing_kid:
        raise ValueError("record names another reporter or key than the one signing it")
    return record.model_copy(update={"sig": sign(me.signing, "record", record.unsigned_bytes())})


def verify_record(record: MetadataRecord, directory: KeyDirectory) -> None:
    """Check a metadata record's signature, and that its reporter is a party to the exchange it describes."""
    if record.reporter not in (record.sender, record.recipient):
        raise NotForUs("a record may only be made by a party to the exchange")
    key = directory.signing_key(record.reporter, record.reporter_key, record.at)
    verify(key, "record", record.unsigned_bytes(), record.sig)


def verify_delivery_evidence(record: MetadataRecord, directory: KeyDirectory) -> Receipt:
    """The receipt a ``sent`` record carries, checked to prove exactly the delivery the record claims.

    Without this, a sender could claim exchanges that never happened; with it, a counted delivery always rests
    on the receiver's own signature over the same message id, parties and envelope digest.
    """
    receipt = record.receipt
    if receipt is None:
        raise Unproven("a sent record must carry the receiver's signed receipt; send the receipt with it")
    claimed = (record.message_id, record.sender, record.recipient, record.envelope_digest)
    if (receipt.message_id, receipt.sender, receipt.receiver, receipt.envelope_digest) != claimed:
        raise Unproven("the receipt names another message, pair or envelope than the record; send its own")
    key = directory.signing_key(receipt.receiver, receipt.receiver_key, receipt.received_at)
    try:
        verify(key, "receipt", receipt.unsigned_bytes(), receipt.sig)
    except BadSignature as exc:
        raise Unproven(
            "the receipt is not signed by the receiver's key; send the receipt it returned"
        ) from exc
    return receipt
