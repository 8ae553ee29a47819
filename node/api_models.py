"""Shapes of the officer API: what officers send and what they get back. The OpenAPI document is built from these."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from protocol.codes import CrimeArea, LabourSector, Urgency
from protocol.models import (
    Content,
    EnquiryBody,
    Evaluation,
    Model,
    ParticipantId,
    Receipt,
    ReplyBody,
    ShortText,
    Subjects,
)
from protocol.outcome import Figures


class NewEnquiry(Content):
    """An enquiry to one or more countries; becomes one sealed message per recipient in one thread."""

    recipients: Annotated[list[ParticipantId], Field(min_length=1, max_length=50)]
    area: CrimeArea
    urgency: Urgency = Urgency.NORMAL
    subject: ShortText
    sector: LabourSector | None = None

    def body(self) -> EnquiryBody:
        """The sealed part."""
        return EnquiryBody(subject=self.subject, sector=self.sector, **self.content())


class NewReply(Content):
    """The answer to a received enquiry."""

    def body(self) -> ReplyBody:
        """The sealed part."""
        return ReplyBody(**self.content())


class CreatedMessage(Model):
    """One message created by a request."""

    id: str
    recipient: str
    state: str
    due_at: str | None = None


class Created(Model):
    """Answer to a new enquiry or reply."""

    thread: str
    messages: list[CreatedMessage]


class MessageSummary(Model):
    """A message as listed (header fields and state; never content)."""

    id: str
    thread: str
    folder: str
    kind: str
    sender: str
    recipient: str
    peer: str
    area: str
    urgency: str
    created_at: str
    due_at: str | None = None
    in_reply_to: str | None = None
    state: str
    overdue: bool
    queued_at: str
    sent_at: str | None = None
    delivered_at: str | None = None
    read_at: str | None = None
    answered_at: str | None = None
    last_error: str | None = None
    officer: str | None = None
    envelope_digest: str
    subject: str | None = None
    """An enquiry's subject, in listings asked for with ``subject=true`` (it is sealed: each costs a decryption)."""


class AttachmentInfo(Model):
    """An attachment as listed; the bytes come from the attachment URL."""

    index: int
    name: str
    media_type: str
    size: int
    url: str


class MessageDetail(MessageSummary):
    """A message with its opened content and delivery proof."""

    subject: str | None = None
    sector: str | None = None
    handling: str
    handling_note: str | None = None
    tlp: str
    evaluation: Evaluation | None = None
    text: str
    subjects: Subjects
    attachments: list[AttachmentInfo]
    receipt: Receipt | None = None


class ThreadEntry(MessageSummary):
    """A message of a thread as listed next to the one opened: header fields, state and proof of delivery,
    never content (each opened body costs a decryption; a thread can be long)."""

    receipt: Receipt | None = None


class Thread(Model):
    """The message asked for, opened, with every message of its thread listed, oldest first."""

    message: MessageDetail
    thread: list[ThreadEntry]


class Page(Model):
    """One page of a listing; pass ``next`` as ``cursor`` for the following page."""

    items: list[MessageSummary]
    next: str | None = None


class PeerView(Model):
    """A roster member as this node sees it."""

    id: str
    name: str
    role: str
    url: str
    status: str
    backlog: int
    reachable: bool | None = None
    failures: int = 0
    last_error: str | None = None
    last_success_at: str | None = None
    last_seen_at: str | None = None
    unreachable_since: str | None = None
    """When the current run of failed attempts began: messages to this peer have waited since then."""
    next_attempt_in_s: float | None = None


class Peers(Model):
    """The roster view."""

    me: str
    roster_version: int
    peers: list[PeerView]


class NewOutcome(Model):
    """This country's figures for a Period of Action; highlights are sealed so that only the coordinator reads them."""

    period: str
    figures: Figures
    highlights: Annotated[str, Field(max_length=20_000)] | None = None


class OutcomeQueued(Model):
    """The signed return, queued for the coordinator."""

    period: str
    participant: str
    submitted_at: str
    figures: Figures
    highlights_sealed: bool
