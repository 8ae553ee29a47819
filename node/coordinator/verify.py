"""Checking a batch of records, written so that it can run in a worker process as well as in the event loop.

Verification (schema, canonical encoding, Ed25519) is pure CPU and dominates ingest, so the coordinator can hand
batches to a pool of processes and use every core; the function takes only bytes and plain data so that it
pickles, and each worker keeps the last roster it verified instead of re-checking it for every batch.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from keys.roster import Roster, parse_roster
from protocol.codes import Kind
from protocol.errors import Malformed, NcpxError, NotForUs
from protocol.models import MetadataRecord
from protocol.receipts import verify_record
from protocol.signing import KeyDirectory, ed25519_public

REPORTED_BY_SENDER = frozenset({"sent"})
REPORTED_BY_RECIPIENT = frozenset({"received", "read", "answered"})

_rosters: dict[bytes, Roster] = {}
"""Per worker: the verified roster, by its bytes (a new version replaces it)."""

Checked = tuple[str | None, MetadataRecord | None, str | None]
"""(record id if any, the record when accepted, the error code when refused)."""


def check_record(record: MetadataRecord, signer: str, directory: KeyDirectory) -> None:
    """Every rule a record must pass before it is stored; raises a named error."""
    if record.reporter != signer:
        raise NotForUs("a node can only submit records it signed itself")
    verify_record(record, directory)
    if record.event in REPORTED_BY_SENDER and record.reporter != record.sender:
        raise NotForUs("only the sender reports that it sent")
    if record.event in REPORTED_BY_RECIPIENT and record.reporter != record.recipient:
        raise NotForUs("only the recipient reports receiving, reading or answering")
    if record.event == "answered" and record.kind is not Kind.ENQUIRY:
        raise Malformed("only enquiries are answered")
    if record.event in ("sent", "received") and not record.receipt_digest:
        raise Malformed("sent and received records name the receipt")


def check_batch(signer: str, items: list[Any], directory: KeyDirectory) -> list[Checked]:
    """Check every item of a batch; one refused record never refuses the others."""
    checked: list[Checked] = []
    for item in items:
        record_id = item.get("record_id") if isinstance(item, dict) else None
        try:
            try:
                record = MetadataRecord.model_validate(item)
            except ValidationError as exc:
                raise Malformed("record does not match its schema") from exc
            check_record(record, signer, directory)
            checked.append((record.record_id, record, None))
        except NcpxError as exc:
            checked.append((record_id if isinstance(record_id, str) else None, None, exc.code))
    return checked


def check_batch_in_worker(signer: str, items: list[Any], roster: bytes, authority: bytes) -> list[Checked]:
    """:func:`check_batch` in a worker process, from the roster's bytes and the pinned authority key."""
    verified = _rosters.get(roster)
    if verified is None:
        _rosters.clear()
        verified = _rosters[roster] = Roster(parse_roster(roster), ed25519_public(authority))
    return check_batch(signer, items, verified)
