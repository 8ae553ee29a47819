"""The structures ncpx exchanges, as pydantic models that parse untrusted JSON and dump canonical JSON.

Two groups: what travels in clear (:class:`Header`, :class:`Receipt`, :class:`MetadataRecord`) and what is
only ever sealed (:class:`EnquiryBody`, :class:`ReplyBody`, :class:`NoticeBody` with their subjects and
attachments). Every model
forbids unknown fields: a field a peer invents is refused, never silently dropped before a signature check.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

from protocol.codes import (
    CrimeArea,
    Handling,
    InformationAccuracy,
    Kind,
    LabourSector,
    SourceReliability,
    Tlp,
    TravelDocumentType,
    Urgency,
    normalise_country,
    normalise_participant,
)
from protocol.encoding import b64d, b64e, canonical, format_time, parse_time
from protocol.ids import check_uuid
from protocol.normalise import imo_check_digit_matches

PROTOCOL_VERSION: Literal[2] = 2


def _time_in(value: Any) -> datetime:
    if isinstance(value, datetime):
        return parse_time(format_time(value))
    return parse_time(value)


def _bytes_in(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return b64d(value)


UtcTime = Annotated[
    datetime,
    BeforeValidator(_time_in),
    PlainSerializer(format_time, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A UTC instant with millisecond precision, RFC 3339 on the wire."""

B64Bytes = Annotated[
    bytes,
    BeforeValidator(_bytes_in),
    PlainSerializer(b64e, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "contentEncoding": "base64url"}),
]
"""Bytes as unpadded base64url text."""

ParticipantId = Annotated[
    str,
    AfterValidator(normalise_participant),
    WithJsonSchema({"type": "string", "pattern": "^([A-Z]{2}|XI-[A-Z0-9]{2,32})$"}),
]
CountryCode = Annotated[
    str, AfterValidator(normalise_country), WithJsonSchema({"type": "string", "pattern": "^[A-Z]{2}$"})
]
MessageId = Annotated[str, AfterValidator(check_uuid), WithJsonSchema({"type": "string", "format": "uuid"})]
KeyId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
Text = Annotated[str, Field(max_length=20_000)]
ShortText = Annotated[str, Field(min_length=1, max_length=300)]


class Model(BaseModel):
    """Base of every ncpx model: immutable, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def wire(self) -> dict[str, Any]:
        """The JSON-compatible dict that gets canonicalised and signed (``None`` fields omitted)."""
        return self.model_dump(mode="json", exclude_none=True)

    def unsigned_bytes(self) -> bytes:
        """What a signature over this model covers: its canonical form without its own ``sig`` field."""
        data = self.wire()
        data.pop("sig", None)
        return canonical(data)


class Header(Model):
    """What every envelope shows in clear: metadata by design, visible to the coordinator."""

    v: Literal[2] = PROTOCOL_VERSION
    id: MessageId
    """UUIDv7, unique per sender."""
    kind: Kind
    thread: MessageId
    """Shared by every message of one exchange (an enquiry sent to several countries, and its replies)."""
    sender: ParticipantId
    recipient: ParticipantId
    created_at: UtcTime
    in_reply_to: MessageId | None = None
    area: CrimeArea
    urgency: Urgency
    due_at: UtcTime | None = None
    """When an answer is due (requests only); follows from urgency and created_at."""
    sender_key: KeyId
    """Key id of the sender's signing key."""
    recipient_key: KeyId
    """Key id of the recipient's encryption key the body is sealed to."""


# -- sealed content --


class TravelDocument(Model):
    """A passport, identity card, visa or other document."""

    number: Annotated[str, Field(min_length=1, max_length=40)]
    type: TravelDocumentType = TravelDocumentType.PASSPORT
    issuing_country: CountryCode | None = None
    expires_on: date | None = None


class Person(Model):
    """A person of interest."""

    family_name: ShortText
    given_names: Annotated[str, Field(max_length=300)] | None = None
    date_of_birth: date | None = None
    nationality: CountryCode | None = None
    aliases: Annotated[list[ShortText], Field(max_length=50)] = []
    travel_documents: Annotated[list[TravelDocument], Field(max_length=20)] = []


class Phone(Model):
    """A phone number, E.164 (``+`` then up to 15 digits)."""

    number: Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$")]
    note: Annotated[str, Field(max_length=300)] | None = None


_IMO = re.compile(r"^(?:IMO ?)?([0-9]{7})$", re.IGNORECASE)


def check_imo(value: str) -> str:
    """The seven digits of an IMO ship number, written as officers write it (``IMO 9074729``) or bare;
    the last digit is a check digit over the other six, so a mistyped number is refused."""
    match = _IMO.match(value.strip())
    if match is None:
        raise ValueError("an IMO number is 7 digits, with or without the prefix IMO, e.g. IMO 9074729")
    if not imo_check_digit_matches(match.group(1)):
        raise ValueError(
            "the check digit (the last of the 7 digits) does not match the other six; check the number"
        )
    return match.group(1)


ImoNumber = Annotated[
    str,
    AfterValidator(check_imo),
    WithJsonSchema({"type": "string", "pattern": "^([Ii][Mm][Oo] ?)?[0-9]{7}$"}),
]
"""Stored as the bare seven digits, whichever way it was written."""


class Vessel(Model):
    """A vessel, with its IMO number when it has one (the check digit is verified)."""

    name: ShortText
    imo: ImoNumber | None = None
    flag: CountryCode | None = None


class BankAccount(Model):
    """A bank account: IBAN or national account number."""

    account: Annotated[str, Field(min_length=4, max_length=40)]
    bank: Annotated[str, Field(max_length=300)] | None = None
    country: CountryCode | None = None
    holder: Annotated[str, Field(max_length=300)] | None = None


class Address(Model):
    """A postal or street address."""

    lines: Annotated[list[ShortText], Field(min_length=1, max_length=6)]
    city: Annotated[str, Field(max_length=200)] | None = None
    country: CountryCode | None = None


class Subjects(Model):
    """Structured subjects of interest, so that the receiving side can search its own systems."""

    persons: Annotated[list[Person], Field(max_length=200)] = []
    phones: Annotated[list[Phone], Field(max_length=200)] = []
    travel_documents: Annotated[list[TravelDocument], Field(max_length=200)] = []
    vessels: Annotated[list[Vessel], Field(max_length=200)] = []
    bank_accounts: Annotated[list[BankAccount], Field(max_length=200)] = []
    addresses: Annotated[list[Address], Field(max_length=200)] = []


class Evaluation(Model):
    """4x4 source and information evaluation."""

    source: SourceReliability
    information: InformationAccuracy


def check_file_name(name: str) -> str:
    """A file name that is safe to show and to save anywhere: no path, no hidden or special name, and no
    control or format characters (a right-to-left override, U+202E, can make an ``.exe`` read as a ``.jpg``)."""
    if not 1 <= len(name) <= 200 or name.startswith(".") or "/" in name or "\\" in name:
        raise ValueError("attachment names are 1 to 200 characters, with no path and no leading dot")
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in name):
        raise ValueError("attachment names hold no control or formatting characters")
    return name


FileName = Annotated[str, AfterValidator(check_file_name)]


class Attachment(Model):
    """A file travelling inside the sealed body."""

    name: FileName
    media_type: Annotated[str, Field(pattern=r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$", max_length=127)]
    data: B64Bytes


class Content(Model):
    """Fields shared by enquiries, replies and notices (and by the officer API's requests that become them)."""

    handling: Handling = Handling.H0
    handling_note: Annotated[str, Field(max_length=2_000)] | None = None
    """Free-text restrictions; required with H3."""
    tlp: Tlp = Tlp.AMBER
    evaluation: Evaluation | None = None
    text: Text
    subjects: Subjects = Subjects()
    attachments: Annotated[list[Attachment], Field(max_length=50)] = []

    @model_validator(mode="after")
    def _h3_needs_note(self) -> Content:
        if self.handling is Handling.H3 and not (self.handling_note or "").strip():
            raise ValueError("handling code H3 requires a handling note that states the restrictions")
        return self

    def content(self) -> dict[str, Any]:
        """The shared fields, to build a body of either kind from."""
        return {name: getattr(self, name) for name in Content.model_fields}

    def attachment_bytes(self) -> int:
        """Total attachment size, checked against the node's configured limit."""
        return sum(len(a.data) for a in self.attachments)


class EnquiryBody(Content):
    """The sealed content of an enquiry (a request for information)."""

    kind: Literal["enquiry"] = "enquiry"
    subject: ShortText
    sector: LabourSector | None = None


class ReplyBody(Content):
    """The sealed content of an answer to an enquiry."""

    kind: Literal["reply"] = "reply"


class NoticeOperation(Model):
    """The planned operation a notice is about, as officers describe it to each other (matching of operations
    is done privately elsewhere: this is what the other side reads once a notice is sent)."""

    reference: Annotated[str, Field(max_length=100)] | None = None
    """The sender's own reference for the operation."""
    what: Annotated[str, Field(max_length=100)] | None = None
    """Raid, arrest, surveillance, undercover, boarding, or the officer's own word."""
    place: ShortText
    window: ShortText
    """When, as the officer writes it (local times with their zone, or an RFC 3339 interval)."""


class NoticeBody(Content):
    """The sealed content of a deconfliction notice: "we are active on these targets or this operation; contact
    us before acting". Targets are :attr:`subjects`, so the recipient searches its own systems as for an enquiry.

    A notice asks nothing and has no deadline: its recipient acknowledges it, it is never answered.
    """

    kind: Literal["notice"] = "notice"
    subject: ShortText
    case_reference: ShortText
    """The sender's case the activity belongs to."""
    contact: ShortText
    """Who to call before acting (name, unit, phone or e-mail)."""
    operation: NoticeOperation | None = None

    @model_validator(mode="after")
    def _names_something(self) -> NoticeBody:
        check_notice_names_something(self.subjects, self.operation)
        return self


def check_notice_names_something(subjects: Subjects, operation: NoticeOperation | None) -> None:
    """A notice says what the sender is active on: at least one target, or an operation."""
    if operation is None and not any(getattr(subjects, name) for name in Subjects.model_fields):
        raise ValueError("a notice names at least one target (subjects) or an operation")


SealedBody = EnquiryBody | ReplyBody | NoticeBody
"""Any body a message can seal."""
Body = Annotated[SealedBody, Field(discriminator="kind")]


# -- in clear, signed --


class Receipt(Model):
    """The receiver's signed word that it stored an envelope: the sender's proof of delivery."""

    v: Literal[2] = PROTOCOL_VERSION
    message_id: MessageId
    sender: ParticipantId
    receiver: ParticipantId
    envelope_digest: str
    """base64url SHA-256 of the canonical envelope as stored."""
    received_at: UtcTime
    receiver_key: KeyId
    sig: B64Bytes = b""


class Refusal(Model):
    """The receiver's signed word that it refused an envelope for good, and why.

    Signed like a receipt, so that nobody on the path can make a sender drop a message: a sender ends a
    message only on a refusal that verifies under the receiver's roster key and names exactly what it sent.
    """

    v: Literal[2] = PROTOCOL_VERSION
    message_id: MessageId | None = None
    """The id the envelope claimed, when it could be read."""
    sender: ParticipantId
    receiver: ParticipantId
    envelope_digest: str
    """base64url SHA-256 of the canonical form of the refused item, as it arrived."""
    code: Annotated[str, Field(pattern=r"^[a-z_]{1,64}$")]
    refused_at: UtcTime
    receiver_key: KeyId
    sig: B64Bytes = b""


class MetadataRecord(Model):
    """What a node tells the coordinator about one event of an exchange: header fields and digests only."""

    v: Literal[2] = PROTOCOL_VERSION
    record_id: MessageId
    event: Literal["sent", "received", "read", "answered", "acknowledged"]
    reporter: ParticipantId
    at: UtcTime
    message_id: MessageId
    thread: MessageId
    kind: Kind
    sender: ParticipantId
    recipient: ParticipantId
    area: CrimeArea
    urgency: Urgency
    created_at: UtcTime
    due_at: UtcTime | None = None
    in_reply_to: MessageId | None = None
    envelope_digest: str
    receipt: Receipt | None = None
    """``sent`` only: the receiver's signed receipt itself, so the coordinator need not take the sender's word."""
    receipt_digest: str | None = None
    """``received`` only: the digest of the receipt the reporter (the receiver) signed and returned."""
    reply_id: MessageId | None = None
    """``answered`` only: the reply's message id; the reply's own ``sent`` record carries its receipt."""
    reply_digest: str | None = None
    """``answered`` only: the reply's envelope digest."""
    reporter_key: KeyId
    sig: B64Bytes = b""

    @model_validator(mode="after")
    def _evidence_fits_event(self) -> MetadataRecord:
        if self.receipt is not None and self.event != "sent":
            raise ValueError("a receipt travels in sent records only")
        if self.receipt_digest is not None and self.event != "received":
            raise ValueError("a receipt digest travels in received records only")
        if (self.reply_id is not None or self.reply_digest is not None) and self.event != "answered":
            raise ValueError("only answered records name a reply")
        if self.event == "answered" and (self.reply_id is None or self.reply_digest is None):
            raise ValueError("an answered record names the reply and its envelope digest")
        return self
