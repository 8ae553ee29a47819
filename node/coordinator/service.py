"""What the coordinator does with what nodes send it: verify, then store; nothing else.

The coordinator holds a participant identity like any node, but it is never the recipient of an envelope and
has no code path that opens one: what reaches it is metadata records (header fields and digests) and outcome
returns. A record is accepted only if its reporter signed it, is the node that sent the request, and is the
party to the exchange that can know of the event it reports; if the exchange is between participants of a
period this coordinator serves; if a ``sent`` record carries the receiver's receipt for exactly that message;
and if its times follow each other (see :mod:`node.coordinator.verify`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from node.config import Limits
from node.coordinator.store import CoordinatorStore, NodeReport
from node.coordinator.verify import Bounds, check_batch, check_batch_in_worker, check_match_batch
from node.delivery import REMINDERS_PATH, TransportError
from node.service import Clock
from node.trust import Trust
from protocol.encoding import format_time, parse_time
from protocol.errors import Conflict, Malformed, NcpxError, NotFound, error_for_code
from protocol.outcome import OutcomeReturn, verify_return
from protocol.period import Period
from protocol.signing import raw_public

Post = Callable[[str, str, dict[str, Any]], Awaitable[tuple[int, Any]]]
"""A signed POST to a participant (:meth:`node.delivery.DeliveryWorker.post`): status and parsed answer."""


@dataclass(frozen=True)
class Liveness:
    """A node as the coordinator hears it: ``up`` (records lately), ``idle`` (heartbeats only), ``down``
    (silent longer than the coordinator's ``down_after``, since ``since``) or ``never`` heard from."""

    state: Literal["up", "idle", "down", "never"]
    since: str | None
    """Down only: when it was last heard from (RFC 3339)."""


@dataclass(frozen=True)
class RecordResult:
    """Outcome of one record of a batch."""

    record_id: str | None
    error: NcpxError | None = None


class CoordinatorService:
    """Verification and storage for the coordinator role."""

    def __init__(
        self,
        trust: Trust,
        store: CoordinatorStore,
        clock: Clock,
        grace_s: float = 3600.0,
        workers: Executor | None = None,
        limits: Limits | None = None,
        down_after_s: float = 90.0,
    ) -> None:
        self.trust = trust
        self.store = store
        self.clock = clock
        self.grace_s = grace_s
        self.workers = workers
        """Processes that verify batches on the other cores; None checks in the event loop."""
        limits = limits or Limits()
        self.skew = timedelta(seconds=limits.clock_skew_s)
        """Clock difference allowed between a node and us; records' times are bounded by it."""
        self.max_age = timedelta(seconds=limits.max_message_age_s)
        """The envelope age nodes accept: a receipt later than creation plus this means a backdated creation."""
        self.down_after = timedelta(seconds=down_after_s)
        """Silence after which a node is shown down (nodes send a heartbeat every minute when idle)."""

    def liveness(self, last_seen: str | None, last_record: str | None) -> Liveness:
        """Whether a node is up, from when it was last heard from (a heartbeat or records) rather than from
        its records alone, which stop whenever its officers do."""
        now = self.clock()
        if last_seen is None:
            return Liveness("never", None)
        if now - parse_time(last_seen) > self.down_after:
            return Liveness("down", last_seen)
        busy = last_record is not None and now - parse_time(last_record) <= self.down_after
        return Liveness("up" if busy else "idle", None)

    def _bounds(self, now: datetime) -> Bounds:
        return Bounds(self.trust.identity.participant, now, self.skew, self.max_age)

    async def receive_records(self, signer: str, payload: Any) -> list[RecordResult]:
        """Verify and store a batch of records from ``signer``; note its queue lag."""
        items = _records(payload)
        now = self.clock()
        bounds = self._bounds(now)
        if self.workers is None or not items:  # an empty batch (a heartbeat) is not worth a process hop
            checked = check_batch(signer, items, self.trust.roster, bounds)
        else:
            roster = self.trust.roster
            checked = await asyncio.get_running_loop().run_in_executor(
                self.workers,
                check_batch_in_worker,
                signer,
                items,
                roster.signed.to_bytes(),
                raw_public(roster.authority),
                bounds,
            )
        good = [record for _, record, _ in checked if record is not None]
        results = [
            RecordResult(record_id, error_for_code(code)() if code is not None else None)
            for record_id, _, code in checked
        ]
        if good:
            await self.store.ingest(good, now)
        # Noted as of now, after the checks: a batch that took seconds to verify still says the node is up.
        heard = self.clock()
        await self.store.note_node(_report(signer, payload, now + self.skew), heard, got_records=bool(good))
        return results

    async def receive_match_records(self, signer: str, payload: Any) -> list[RecordResult]:
        """Verify and store a batch of matching records from ``signer`` (few and small: checked in the loop)."""
        items = _records(payload)
        now = self.clock()
        checked = check_match_batch(signer, items, self.trust.roster, self._bounds(now))
        good = [record for _, record, _ in checked if record is not None]
        if good:
            await self.store.ingest_matches(good, now)
        await self.store.note_node(
            _report(signer, payload, now + self.skew), self.clock(), got_records=bool(good)
        )
        return [
            RecordResult(record_id, error_for_code(code)() if code is not None else None)
            for record_id, _, code in checked
        ]

    async def remind(self, post: Post, period: Period, participant: str, officer: str) -> bool:
        """Remind ``participant``'s node of its missing outcome return, through the signed requests the
        coordinator makes on the federation channel; returns whether the node took it (a node that is down
        is not queued for: the secretariat sees that and tries again). Every attempt is kept."""
        if participant not in period.participants:
            raise NotFound(f"{participant} does not take part in {period.name}")
        if any(o.participant == participant for o in await self.store.outcomes(period.name)):
            raise Conflict(f"{participant} has already sent its outcome return for {period.name}")
        now = self.clock()
        payload = {"period": period.name, "about": "outcome_return", "sent_at": format_time(now)}
        try:
            status, _ = await post(participant, REMINDERS_PATH, payload)
        except TransportError:
            status = 0
        delivered = 200 <= status < 300
        await self.store.note_reminder(period.name, participant, officer, now, delivered)
        return delivered

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


MAX_BACKLOG = 100_000
"""Records a node may plausibly say it still has queued; a country's contact point writes a few thousand a day."""


def _records(payload: Any) -> list[Any]:
    """The records of a batch (metadata or matching records), within the batch limit."""
    items = payload.get("records") if isinstance(payload, dict) else None
    if not isinstance(items, list) or len(items) > 5000:
        raise Malformed("expected {records: [0..5000 records], backlog, oldest_queued_at}")
    return items


def _report(signer: str, payload: dict[str, Any], latest: datetime) -> NodeReport:
    """What a node says about its queue, bounded: it is the node's word, and the dashboard prints it.

    A backlog above :data:`MAX_BACKLOG` is kept as that cap and flagged implausible, as is an oldest queued time
    after ``latest`` (now plus the allowed skew), which is then dropped; a node cannot make the dashboard print
    whatever number it likes.
    """
    backlog = payload.get("backlog", 0)
    oldest = payload.get("oldest_queued_at")
    try:
        oldest_at: datetime | None = parse_time(oldest) if isinstance(oldest, str) else None
    except Malformed:
        oldest_at = None
    count = backlog if isinstance(backlog, int) and not isinstance(backlog, bool) and backlog >= 0 else 0
    implausible = count > MAX_BACKLOG or (oldest_at is not None and oldest_at > latest)
    if oldest_at is not None and oldest_at > latest:
        oldest_at = None
    return NodeReport(signer, min(count, MAX_BACKLOG), oldest_at, implausible)
