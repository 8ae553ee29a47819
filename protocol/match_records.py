"""Matching records: what a node tells the coordinator about a private matching session, and nothing else.

The coordinator counts matching sessions and hits per pair of countries and day. A record says who asked whom,
when the session opened, how many items were asked about (the answerer learns that number anyway), how many
matched and how many of those were new hits, and how the session ended. It never carries a token, an entry or
the size of the answerer's list: the function that makes it is given counts, not items.

Both sides report a session they finished (the asker after the result, the answerer once it has the result),
and a session that failed (a budget exhausted, a malformed message) is reported by each side that saw it fail.
The coordinator takes its figures from the asker's record and shows how many sessions the answerer's own
signed record confirms, so that neither side alone can inflate the other's figures.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from protocol.errors import NotForUs
from protocol.ids import RANDOM_BYTES, uuid7
from protocol.models import PROTOCOL_VERSION, B64Bytes, KeyId, MessageId, Model, ParticipantId, UtcTime
from protocol.signing import KeyDirectory, LocalKeys, sign, verify

Outcome = Literal["done", "failed"]
"""``done``: the session ran to its result; ``failed``: it ended without one (``code`` says why: the answerer
refused it, for a spent budget say, or one side found the other's message malformed)."""


class MatchRecord(Model):
    """One side's signed account of one matching session: parties, time, counts and outcome."""

    v: Literal[2] = PROTOCOL_VERSION
    record_id: MessageId
    reporter: ParticipantId
    reporter_key: KeyId
    at: UtcTime
    """When the session ended at the reporter."""
    session: MessageId
    asker: ParticipantId
    answerer: ParticipantId
    opened_at: UtcTime
    """When the reporter opened (asker) or accepted (answerer) the session: the asker's is the day counted."""
    items: int = Field(ge=0, le=10_000_000)
    """Items the asker asked about (the size of its offer)."""
    matched: int = Field(ge=0, le=10_000_000)
    """Items both sides hold, as the reporter learned them (the answerer: those the asker's claims name)."""
    new_hits: int = Field(ge=0, le=10_000_000)
    """Of those, the ones the reporter had not known before: a hit found again on the next round is not new."""
    outcome: Outcome
    code: str | None = Field(default=None, max_length=64)
    """``failed`` only: the error code that ended the session."""
    sig: B64Bytes = b""

    @model_validator(mode="after")
    def _counts_fit(self) -> MatchRecord:
        if self.asker == self.answerer:
            raise ValueError("a matching session is between two different participants")
        if not self.new_hits <= self.matched <= self.items:
            raise ValueError("new hits are among the matched items, which are among the items asked about")
        if (self.outcome == "failed") != (self.code is not None):
            raise ValueError("a failed session names its error code, and only a failed one")
        if self.outcome == "failed" and self.matched:
            raise ValueError("a failed session matched nothing")
        return self


def make_match_record(
    me: LocalKeys,
    at: datetime,
    random: bytes,
    session: str,
    parties: tuple[str, str],
    opened_at: datetime,
    counts: tuple[int, int, int],
    code: str | None = None,
) -> MatchRecord:
    """``me``'s signed record of ``session`` between ``parties`` (asker, answerer), with ``counts`` (items
    asked, matched, new hits); a ``code`` makes it the record of a failed session. ``random`` is 10 fresh bytes."""
    if len(random) != RANDOM_BYTES:
        raise ValueError("a record id needs exactly 10 random bytes")
    if me.participant not in parties:
        raise ValueError("only a party to the session records it")
    items, matched, new_hits = counts
    record = MatchRecord(
        record_id=uuid7(at, random),
        reporter=me.participant,
        reporter_key=me.signing_kid,
        at=at,
        session=session,
        asker=parties[0],
        answerer=parties[1],
        opened_at=opened_at,
        items=items,
        matched=matched,
        new_hits=new_hits,
        outcome="failed" if code is not None else "done",
        code=code,
    )
    return record.model_copy(update={"sig": sign(me.signing, "match-record", record.unsigned_bytes())})


def verify_match_record(record: MatchRecord, directory: KeyDirectory) -> None:
    """Check the record's signature and that its reporter is one of the session's two parties."""
    if record.reporter not in (record.asker, record.answerer):
        raise NotForUs("a matching record may only be made by a party to the session")
    key = directory.signing_key(record.reporter, record.reporter_key, record.at)
    verify(key, "match-record", record.unsigned_bytes(), record.sig)
