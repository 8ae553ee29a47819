"""Checking a batch of records, written so that it can run in a worker process as well as in the event loop.

Verification (schema, canonical encoding, Ed25519) is pure CPU and dominates ingest, so the coordinator can hand
batches to a pool of processes and use every core; the function takes only bytes and plain data so that it
pickles, and each worker keeps the last roster it verified instead of re-checking it for every batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import ValidationError

from keys.roster import Roster
from node.intake import roster_in_worker
from protocol.codes import Kind
from protocol.errors import ImplausibleTime, Malformed, NcpxError, NotForUs, OutsidePeriods, StaleTimestamp
from protocol.match_records import MatchRecord, verify_match_record
from protocol.models import MetadataRecord
from protocol.period import shared_by
from protocol.receipts import verify_delivery_evidence, verify_record

REPORTED_BY_SENDER = frozenset({"sent"})
REPORTED_BY_RECIPIENT = frozenset({"received", "read", "answered", "acknowledged"})

R = TypeVar("R", MetadataRecord, MatchRecord)

Checked = tuple[str | None, MetadataRecord | None, str | None]
"""(record id if any, the record when accepted, the error code when refused)."""


@dataclass(frozen=True)
class Bounds:
    """What a record is checked against besides the roster: who we are and the time limits, as plain data."""

    coordinator: str
    now: datetime
    skew: timedelta
    max_age: timedelta
    """The oldest envelope a node accepts: a receipt later than creation plus this is a backdated creation."""


def check_record(record: MetadataRecord, signer: str, roster: Roster, bounds: Bounds) -> None:
    """Every rule a record must pass before it is stored; raises a named error."""
    if record.reporter != signer:
        raise NotForUs("a node can only submit records it signed itself")
    verify_record(record, roster)
    if record.event in REPORTED_BY_SENDER and record.reporter != record.sender:
        raise NotForUs("only the sender reports that it sent")
    if record.event in REPORTED_BY_RECIPIENT and record.reporter != record.recipient:
        raise NotForUs("only the recipient reports receiving, reading, answering or acknowledging")
    if not shared_by(roster.signed.roster.periods or [], bounds.coordinator, record.sender, record.recipient):
        raise OutsidePeriods("the two parties share no period this coordinator serves; keep it between them")
    if record.event == "answered" and record.kind is not Kind.ENQUIRY:
        raise Malformed("only enquiries are answered")
    if record.event == "acknowledged" and record.kind is not Kind.NOTICE:
        raise Malformed("only deconfliction notices are acknowledged")
    if record.event == "received" and not record.receipt_digest:
        raise Malformed("a received record names the digest of the receipt it returned")
    receipt_at = verify_delivery_evidence(record, roster).received_at if record.event == "sent" else None
    _check_times(record, receipt_at, bounds)


def _check_times(record: MetadataRecord, receipt_at: datetime | None, bounds: Bounds) -> None:
    """Times must follow each other: creation, the receiver's receipt, then the event, never after now.

    The receiver's time (the receipt in a ``sent`` record, ``at`` in a ``received`` one) may not lie further
    after creation than the envelope age nodes accept, so a sender cannot backdate a message and have the
    receiving country counted late; deadlines and response times then run from that receiver's time.
    """
    if record.at > bounds.now + bounds.skew:
        raise StaleTimestamp("the record's time lies in the future; check the node's clock")
    earliest = record.created_at - bounds.skew
    if record.at < earliest:
        raise ImplausibleTime("the record's time is before the message was created; report the true time")
    if receipt_at is not None and not earliest <= receipt_at <= record.at + bounds.skew:
        raise ImplausibleTime("the receipt's time is before the message's creation or after the record's")
    received = receipt_at or (record.at if record.event == "received" else None)
    if received is not None and received > record.created_at + bounds.max_age + bounds.skew:
        raise ImplausibleTime("the message's creation time is older than any node accepts; it was backdated")


def check_match_record(record: MatchRecord, signer: str, roster: Roster, bounds: Bounds) -> None:
    """Every rule a matching record must pass before it is counted; raises a named error."""
    if record.reporter != signer:
        raise NotForUs("a node can only submit records it signed itself")
    verify_match_record(record, roster)
    if not shared_by(roster.signed.roster.periods or [], bounds.coordinator, record.asker, record.answerer):
        raise OutsidePeriods("the two parties share no period this coordinator serves; keep it between them")
    if record.at > bounds.now + bounds.skew:
        raise StaleTimestamp("the record's time lies in the future; check the node's clock")
    if record.opened_at > record.at + bounds.skew:
        raise ImplausibleTime("the session cannot have opened after it ended; report the true times")


def _check_items(
    signer: str,
    items: list[Any],
    roster: Roster,
    bounds: Bounds,
    model: type[R],
    check: Callable[[R, str, Roster, Bounds], None],
) -> list[tuple[str | None, R | None, str | None]]:
    """Check every item of a batch as a ``model``; one refused record never refuses the others."""
    checked: list[tuple[str | None, R | None, str | None]] = []
    for item in items:
        record_id = item.get("record_id") if isinstance(item, dict) else None
        try:
            try:
                record = model.model_validate(item)
            except ValidationError as exc:
                raise Malformed("record does not match its schema") from exc
            check(record, signer, roster, bounds)
            checked.append((record.record_id, record, None))
        except NcpxError as exc:
            checked.append((record_id if isinstance(record_id, str) else None, None, exc.code))
    return checked


def check_batch(signer: str, items: list[Any], roster: Roster, bounds: Bounds) -> list[Checked]:
    """Check every metadata record of a batch."""
    return _check_items(signer, items, roster, bounds, MetadataRecord, check_record)


def check_match_batch(
    signer: str, items: list[Any], roster: Roster, bounds: Bounds
) -> list[tuple[str | None, MatchRecord | None, str | None]]:
    """Check every matching record of a batch."""
    return _check_items(signer, items, roster, bounds, MatchRecord, check_match_record)


def check_batch_in_worker(
    signer: str, items: list[Any], roster: bytes, authority: bytes, bounds: Bounds
) -> list[Checked]:
    """:func:`check_batch` in a worker process, from the roster's bytes and the pinned authority key."""
    return check_batch(signer, items, roster_in_worker(roster, authority), bounds)
