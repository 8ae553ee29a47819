"""What the coordinator does with what nodes send it: verify, then store; nothing else.

The coordinator holds a participant identity like any node, but it is never the recipient of an envelope and
has no code path that opens one: what reaches it is metadata records (header fields and digests) and outcome
returns. A record is accepted only if its reporter signed it, is the node that sent the request, and is the
party to the exchange that can know of the event it reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from node.coordinator.store import CoordinatorStore, NodeReport
from node.service import Clock
from node.trust import Trust
from protocol.codes import Kind
from protocol.encoding import parse_time
from protocol.errors import Malformed, NcpxError, NotForUs, NotFound
from protocol.models import MetadataRecord
from protocol.outcome import OutcomeReturn, verify_return
from protocol.receipts import verify_record

REPORTED_BY_SENDER = frozenset({"sent"})
REPORTED_BY_RECIPIENT = frozenset({"received", "read", "answered"})


@dataclass(frozen=True)
class RecordResult:
    """Outcome of one record of a batch."""

    record_id: str | None
    error: NcpxError | None = None


def check_record(record: MetadataRecord, signer: str, trust: Trust) -> None:
    """Every rule a record must pass before it is stored; raises a named error."""
    if record.reporter != signer:
        raise NotForUs("a node can only submit records it signed itself")
    verify_record(record, trust.roster)
    if record.event in REPORTED_BY_SENDER and record.reporter != record.sender:
        raise NotForUs("only the sender reports that it sent")
    if record.event in REPORTED_BY_RECIPIENT and record.reporter != record.recipient:
        raise NotForUs("only the recipient reports receiving, reading or answering")
    if record.event == "answered" and record.kind is not Kind.ENQUIRY:
        raise Malformed("only enquiries are answered")
    if record.event in ("sent", "received") and not record.receipt_digest:
        raise Malformed("sent and received records name the receipt")


class CoordinatorService:
    """Verification and storage for the coordinator role."""

    def __init__(self, trust: Trust, store: CoordinatorStore, clock: Clock, grace_s: float = 3600.0) -> None:
        self.trust = trust
        self.store = store
        self.clock = clock
        self.grace_s = grace_s

    async def receive_records(self, signer: str, payload: Any) -> list[RecordResult]:
        """Verify and store a batch of records from ``signer``; note its queue lag."""
        items = payload.get("records") if isinstance(payload, dict) else None
        if not isinstance(items, list) or len(items) > 5000:
            raise Malformed("expected {records: [0..5000 records], backlog, oldest_queued_at}")
        results: list[RecordResult] = []
        good: list[MetadataRecord] = []
        for item in items:
            record_id = item.get("record_id") if isinstance(item, dict) else None
            try:
                try:
                    record = MetadataRecord.model_validate(item)
                except ValidationError as exc:
                    raise Malformed("record does not match its schema") from exc
                check_record(record, signer, self.trust)
                good.append(record)
                results.append(RecordResult(record.record_id))
            except NcpxError as exc:
                results.append(RecordResult(record_id if isinstance(record_id, str) else None, exc))
        now = self.clock()
        if good:
            await self.store.ingest(good, now)
        await self.store.note_node(_report(signer, payload), now, got_records=bool(good))
        return results

    async def receive_outcome(self, signer: str, payload: Any) -> OutcomeReturn:
        """Verify and keep an outcome return."""
        try:
            outcome = OutcomeReturn.model_validate(payload)
        except ValidationError as exc:
            raise Malformed("outcome return does not match its schema") from exc
        verify_return(outcome, self.trust.roster, signer)
        period = self.trust.roster.period(outcome.period)
        if outcome.participant not in period.participants:
            raise NotFound(f"{outcome.participant} does not take part in {period.name}")
        await self.store.store_outcome(outcome)
        return outcome


def _report(signer: str, payload: dict[str, Any]) -> NodeReport:
    backlog = payload.get("backlog", 0)
    oldest = payload.get("oldest_queued_at")
    try:
        oldest_at: datetime | None = parse_time(oldest) if isinstance(oldest, str) else None
    except Malformed:
        oldest_at = None
    return NodeReport(signer, backlog if isinstance(backlog, int) and backlog >= 0 else 0, oldest_at)


def summarise(results: Sequence[RecordResult]) -> tuple[int, int]:
    """(accepted, refused) counts of a batch."""
    refused = sum(1 for r in results if r.error is not None)
    return len(results) - refused, refused
