"""Shapes of the officer API: what officers send and what they get back. The OpenAPI document is built from these."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from protocol.codes import CrimeArea, LabourSector, Urgency
from protocol.models import (
    Content,
    EnquiryBody,
    Evaluation,
    Model,
    NoticeBody,
    NoticeOperation,
    ParticipantId,
    Receipt,
    ReplyBody,
    ShortText,
    Subjects,
    check_notice_names_something,
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


class NewNotice(Content):
    """A deconfliction notice ("we are active on these targets or this operation; contact us before acting") to
    some countries or to ``"all"`` (every active country node of the roster but us); one sealed message each."""

    recipients: Annotated[list[ParticipantId], Field(min_length=1, max_length=50)] | Literal["all"]
    area: CrimeArea = CrimeArea.OTHER
    urgency: Urgency = Urgency.NORMAL
    subject: ShortText
    case_reference: ShortText
    contact: ShortText
    operation: NoticeOperation | None = None

    @model_validator(mode="after")
    def _names_something(self) -> NewNotice:
        check_notice_names_something(self.subjects, self.operation)
        return self

    def body(self) -> NoticeBody:
        """The sealed part."""
        return NoticeBody(
            subject=self.subject,
            case_reference=self.case_reference,
            contact=self.contact,
            operation=self.operation,
            **self.content(),
        )


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
    acknowledged_at: str | None = None
    last_error: str | None = None
    officer: str | None = None
    envelope_digest: str
    purged_at: str | None = None
    """When the body was purged under the node's retention policy (only the metadata is left)."""
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
    case_reference: str | None = None
    """Notices: the sender's case."""
    contact: str | None = None
    """Notices: who to call before acting."""
    operation: NoticeOperation | None = None
    """Notices: the planned operation, if the notice is about one."""
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
    searched: int | None = None
    """With ``q``: how many messages this page opened to search (a search reads a bounded number per page and
    gives ``next`` to search further)."""


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


class HitView(Model):
    """An item this node and a peer both hold: our side of it, and who to call on theirs."""

    peer: str
    kind: str
    """The kind of item (person, phone, vessel, ..., operation)."""
    item: str
    """Our own item as matched (normalised)."""
    our_case: str
    our_contact: str
    peer_case: str
    """The peer's case and contact, once its own session or its claims have told us."""
    peer_contact: str
    found_at: str
    found_by: str


class Hits(Model):
    """Every hit, newest first."""

    items: list[HitView]


class MatchRun(Model):
    """What an officer asks: a matching round with one peer, or with every country node when absent."""

    peer: str | None = None


class MatchOutcome(Model):
    """One session's result."""

    peer: str
    asked: int
    matched: int
    new_hits: int
    error: str | None = None
    """Why the session did not complete, as a sentence (the others still ran)."""


class MatchRuns(Model):
    """Every session of a round."""

    sessions: list[MatchOutcome]


class DraftNotice(Model):
    """A draft notice waiting for an officer: sent with ``POST /v1/notices/drafts/{id}/send``, or discarded."""

    id: str
    recipient: str
    area: str
    urgency: str
    origin: str | None = None
    created_at: str
    notice: NoticeBody


class DraftNotices(Model):
    """Every draft notice not sent yet, oldest first."""

    items: list[DraftNotice]
