"""The delivery worker: drains the outbox to each peer, in batches, as that peer's schedule allows.

Every decision (when to try, what an answer means, when to give up) is made by the peer's
:class:`~protocol.schedule.PeerSchedule`; this module is the loop around it, aioquic's protocol adapter being
the model: wait until the schedule's wake-up time (or until woken), send up to ``batch_size`` items in one
signed request, check what came back (receipts and refusals are verified against exactly the bytes sent),
feed it to the schedule and persist the effects it returns in one transaction.

Exactly-once: a row leaves the outbox only in the transaction that stores the peer's verified receipt, and the
peer answers a repeated envelope with its original receipt, so a crash at any point causes at most a resend.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from aiohttp.abc import AbstractStreamWriter

from keys.roster import MAX_ROSTER_BYTES, parse_roster
from node import effects as stored
from node.logs import fresh
from node.metrics import NodeMetrics, known_code
from node.service import NodeService
from node.storage.mailbox import Mailbox, OutboxItem
from node.tls import FederationTls
from protocol.encoding import canonical, digest_text, format_time
from protocol.envelope import Envelope, join_batch
from protocol.errors import NcpxError, StaleTimestamp, TooLarge
from protocol.lifecycle import deadline
from protocol.models import Header, Receipt, Refusal
from protocol.receipts import verify_receipt, verify_refusal
from protocol.rekey import KeyAction, RecipientKeys, key_action
from protocol.requests import sign_request
from protocol.schedule import (
    Deliver,
    Done,
    Effect,
    GiveUp,
    Item,
    NoProof,
    PeerSchedule,
    Policy,
    Receipted,
    Refused,
    Result,
    Retry,
    is_final,
)

log = logging.getLogger("ncpx.delivery")

ENVELOPES_PATH = "/federation/v1/envelopes"
STATUS_PATH = "/federation/v1/status"
HELLO_PATH = "/federation/v1/hello"
ROSTER_PATH = "/federation/v1/roster"
RECORDS_PATH = "/federation/v1/records"
OUTCOMES_PATH = "/federation/v1/outcomes"
MATCH_RECORDS_PATH = "/federation/v1/match-records"
REMINDERS_PATH = "/federation/v1/reminders"
RESYNC_PATH = "/federation/v1/resync"

_LOCAL = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - wildcard names, not binding
"""Where to reach our own server when it listens on every address."""

ROSTER_FETCH_INTERVAL_S = 2.0
"""Least time between two roster fetches from one peer."""

BATCH_TYPE = "application/x-ndjson"
"""Envelopes travel one per line, each as the exact bytes its sender encoded."""

IDLE_S = 30.0
"""How long a loop with nothing queued sleeps before it looks again (queueing wakes it at once anyway)."""

MAX_ANSWER_BYTES = 8 * 1024 * 1024
"""Largest answer read from a peer: receipts for a full batch are well under 1 MiB; more is hostile."""


class TransportError(Exception):
    """The peer could not be reached or answered outside the protocol (``code``: the problem it named, if any)."""

    def __init__(self, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.code = code


WAITING = {StaleTimestamp.code: "peer refuses our clock: check this node's time (NTP); will retry"}
"""What an officer is told while messages wait, by the problem the peer named; otherwise it is unreachable."""


def _unreachable(exc: BaseException, timeout_s: float) -> str:
    """Why a peer could not be reached, as an officer or operator reads it in ``ncpx peers``."""
    if isinstance(exc, TimeoutError):
        return f"the peer's node did not answer within {timeout_s:g} s"
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ServerFingerprintMismatch):
        return "the TLS handshake with the peer's node failed: its certificate or ours is not the roster's"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "the peer's node refused the connection or cannot be reached at its roster address"
    return "the connection to the peer's node broke before it answered"


def failure_code(exc: TransportError) -> str:
    """A failed attempt as a short code for logs and metrics: the problem the peer named (if this release knows
    it), else what went wrong on the way."""
    if exc.code is not None:
        return known_code(exc.code)
    cause = exc.__cause__
    if isinstance(cause, TimeoutError):
        return "timeout"
    if isinstance(cause, aiohttp.ClientSSLError | aiohttp.ServerFingerprintMismatch):
        return "tls_failed"
    if isinstance(cause, aiohttp.ClientConnectorError):
        return "unreachable"
    if cause is not None:
        return "connection_broken"
    return "unexpected_answer"


def _jitter() -> float:
    """Uniform in [0, 1): spreads retries of nodes that failed together (not a secret, but no global state)."""
    return secrets.randbelow(1 << 30) / (1 << 30)


def _recipient_key(payload: bytes) -> str | None:
    """The encryption key id an outbox envelope was sealed to (our own bytes, so a plain read suffices)."""
    header = json.loads(payload).get("header", {})
    kid = header.get("recipient_key") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


def _deadline(header: Header | None, receipt: Receipt) -> datetime | None:
    return deadline(header.kind, header.urgency, receipt.received_at) if header else None


def _problem_code(result: Any) -> str | None:
    """The error code of a per-item problem in a peer's answer, if it carries one."""
    problem = result.get("problem") if isinstance(result, dict) else None
    code = problem.get("code") if isinstance(problem, dict) else None
    return code if isinstance(code, str) else None


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body of ``response``, refused as soon as it grows past ``limit`` (whatever Content-Length says)."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise TransportError(f"peer answered with {declared} bytes, more than {limit}")
    data = bytearray()
    async for chunk in response.content.iter_chunked(65536):
        data += chunk
        if len(data) > limit:
            raise TransportError(f"peer answered with more than {limit} bytes")
    return bytes(data)


class _Announced(aiohttp.BytesPayload):
    """A request body that runs ``before`` once the connection to the peer is open, before its first byte is
    written. What ``before`` records (envelopes handed to the peer) is then true, and never earlier: an attempt
    that could not connect leaves its messages queued, free to be sealed again to a rotated key, while one that
    may have reached the peer is recorded as handed before it can."""

    def __init__(self, value: bytes, content_type: str, before: Callable[[], Awaitable[None]]) -> None:
        super().__init__(value, content_type=content_type)
        self._before: Callable[[], Awaitable[None]] | None = before

    async def _announce(self) -> None:
        before, self._before = self._before, None
        if before is not None:
            # aiohttp cancels the body's writer when the peer disconnects: the record must still be written.
            await asyncio.shield(asyncio.ensure_future(before()))

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self._announce()
        await super().write(writer)

    async def write_with_length(self, writer: AbstractStreamWriter, content_length: int | None) -> None:
        await self._announce()
        await super().write_with_length(writer, content_length)


class DeliveryWorker:
    """The loop around each peer's :class:`~protocol.schedule.PeerSchedule`: send, feed answers in, persist
    the effects, re-arm the timer."""

    def __init__(
        self,
        service: NodeService,
        session: aiohttp.ClientSession,
        tls: FederationTls | None = None,
        metrics: NodeMetrics | None = None,
    ) -> None:
        self.service = service
        self.metrics = metrics or NodeMetrics()
        self.mailbox: Mailbox = service.mailbox
        self.session = session
        self.tls = tls
        self.delivery = service.config.delivery
        self.policy = Policy(
            initial_s=self.delivery.backoff_initial_s,
            cap_s=self.delivery.backoff_cap_s,
            give_up_s=self.delivery.give_up_after_s,
        )
        self.peers: dict[str, PeerSchedule] = {}
        self._wakes: dict[str, asyncio.Event] = {}
        self._roster_fetched: dict[str, float] = {}
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        service.on_queued = self.wake

    def _now(self) -> float:
        return self.service.clock().timestamp()

    def schedule(self, peer: str) -> PeerSchedule:
        """The schedule of ``peer``."""
        if peer not in self.peers:
            self.peers[peer] = PeerSchedule(self.policy)
            self._wakes[peer] = asyncio.Event()
        return self.peers[peer]

    def wake(self, peers: Any) -> None:
        """Something was queued for these peers."""
        for peer in peers:
            self.schedule(peer)
            self._ensure_task(peer)
            self._wakes[peer].set()

    def peer_alive(self, peer: str) -> None:
        """A valid request arrived from ``peer``: forget its backoff and send its backlog at once."""
        if self.schedule(peer).on_contact(self._now()):
            log.info("peer %s is back; retrying its backlog now", peer)
        self.wake([peer])

    async def start(self) -> None:
        """Start a loop for every peer with a backlog and say hello to every peer."""
        self.wake(await self.mailbox.peers_with_backlog())
        for peer in self.service.trust.peers(role=None):
            self._tasks.setdefault(f"hello:{peer}", asyncio.create_task(self._hello(peer)))
        if self.service.config.role == "node":
            self._tasks.setdefault("heartbeat", asyncio.create_task(self._heartbeats(), name="heartbeat"))

    async def stop(self) -> None:
        """Cancel every loop (outbox rows stay; they are retried after a restart)."""
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    def _ensure_task(self, peer: str) -> None:
        task = self._tasks.get(peer)
        if task is None or task.done():
            self._tasks[peer] = asyncio.create_task(self._loop(peer), name=f"deliver-{peer}")

    async def _sleep(self, peer: str, seconds: float) -> None:
        """Until ``seconds`` pass or something wakes this peer's loop."""
        wake = self._wakes[peer]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=seconds)

    async def _loop(self, peer: str) -> None:
        """Run this peer's turns for as long as the node runs: a turn that fails in any way (the disk, a bug)
        is logged and counted as a failed attempt, and the loop goes on after the backoff, never dying quietly.

        Its log lines name the peer, and not the request that happened to start the loop."""
        fresh(peer=peer)
        schedule = self.schedule(peer)
        while True:
            try:
                await self._turn(peer, schedule)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery to %s failed unexpectedly; it will be retried", peer)
                self.metrics.failures.labels(peer, "internal").inc()
                schedule.on_failure(self._now(), "internal error", _jitter())

    async def _turn(self, peer: str, schedule: PeerSchedule) -> None:
        """Wait until the schedule allows, then send one batch and settle what came back."""
        wake = self._wakes[peer]
        wait = schedule.next_wakeup(self._now())
        if wait > 0:
            wake.clear()
            await self._sleep(peer, wait)
            return
        wake.clear()
        items = await self.mailbox.due_items(peer, self.delivery.batch_size, self._now())
        if not items:
            waiting = await self.mailbox.next_due(peer)
            await self._sleep(peer, IDLE_S if waiting is None else max(0.0, waiting - self._now()))
            return
        self.metrics.attempts.labels(peer).inc()
        try:
            await self._send(peer, schedule, items)
        except TransportError as exc:
            code = failure_code(exc)
            self.metrics.failures.labels(peer, code).inc()
            log.warning("delivery attempt failed; will retry", extra={"code": code, "items": len(items)})
            schedule.on_failure(self._now(), str(exc), _jitter())
            await self.mailbox.record_delivery_error(
                [i.ref for i in items if i.item == "envelope"],
                WAITING.get(exc.code or "", "peer unreachable; will retry"),
            )

    async def _persist(
        self,
        peer: str,
        effects: list[Effect],
        extra: Sequence[stored.Effect] = (),
        headers: dict[str, Header] | None = None,
    ) -> None:
        """Store what the schedule decided about items for ``peer``, in one transaction; ``headers`` of
        delivered envelopes, by id. Counted and logged once stored."""
        delivered = [
            (e.item.seq, e.item.ref, e.receipt, _deadline((headers or {}).get(e.item.ref), e.receipt))
            for e in effects
            if isinstance(e, Deliver)
        ]
        done = [e.item.seq for e in effects if isinstance(e, Done)]
        failed = [(e.item.seq, e.item.ref, e.code) for e in effects if isinstance(e, GiveUp)]
        retry = [(e.item.seq, e.item.ref, e.code, e.not_before) for e in effects if isinstance(e, Retry)]
        await self.mailbox.settle(delivered, done, failed, retry, self.service.clock(), extra)
        self._observe(peer, effects)

    def _refused_for_good(self, peer: str, ref: str, code: str) -> None:
        """A record or outcome return the coordinator will never take: dropped (retrying cannot help), but
        counted and logged, since the period's figures now lack it."""
        code = known_code(code)
        self.metrics.failures.labels(peer, code).inc()
        log.warning("coordinator refused an item for good", extra={"code": code, "ref": ref})

    def _observe(self, peer: str, effects: list[Effect]) -> None:
        """Metrics and warnings for what a peer answered about each item (its id and code, never its bytes)."""
        now = self._now()
        for e in effects:
            if isinstance(e, Deliver):
                self.metrics.delivered.labels(peer).inc()
                self.metrics.latency.labels(peer).observe(max(0.0, now - e.item.queued_at))
            elif isinstance(e, Retry | GiveUp):
                code = known_code(e.code)
                self.metrics.failures.labels(peer, code).inc()
                outcome = "will retry" if isinstance(e, Retry) else "given up"
                log.warning(f"item not delivered; {outcome}", extra={"code": code, "ref": e.item.ref})

    async def post(
        self,
        peer: str,
        path: str,
        payload: dict[str, Any] | bytes,
        content_type: str = "application/json",
        before: Callable[[], Awaitable[None]] | None = None,
        answer_limit: int = MAX_ANSWER_BYTES,
    ) -> tuple[int, Any]:
        """POST signed ``payload`` to ``peer``; ``before`` runs once connected, before the body goes; an answer
        longer than ``answer_limit`` bytes is refused."""
        body = payload if isinstance(payload, bytes) else canonical(payload)
        service = self.service
        headers = sign_request("POST", path, peer, body, service.trust.identity, service.clock())
        headers["Content-Type"] = content_type
        url = service.trust.url_of(peer) + path
        timeout = aiohttp.ClientTimeout(total=self.delivery.request_timeout_s)
        try:
            sent = body if before is None else _Announced(body, content_type, before)
            async with self.session.post(
                url,
                data=sent,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
                ssl=self._tls_for(peer),
            ) as response:
                data = await read_capped(response, answer_limit)
                status = response.status
                self._note_clock(peer, response.headers.get("Date"))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportError(_unreachable(exc, self.delivery.request_timeout_s)) from exc
        try:
            return status, json.loads(data) if data else None
        except ValueError as exc:
            raise TransportError(f"peer answered {status} without JSON") from exc

    def _tls_for(self, peer: str) -> ssl.SSLContext | bool:
        """Mutual TLS pinned to ``peer``'s roster certificates when we have a certificate and it has one;
        otherwise the default checks (an ``http`` URL ignores this)."""
        if self.tls is None:
            return True
        return self.tls.client_context(self.service.trust.roster.get(peer)) or True

    def _note_clock(self, peer: str, date: str | None) -> None:
        """Keep how far ``peer``'s clock (the ``Date`` of its answer) is from ours."""
        if date is None:
            return
        with contextlib.suppress(TypeError, ValueError, IndexError):
            self.schedule(peer).note_clock(parsedate_to_datetime(date).timestamp(), self._now())

    def clock_offsets(self) -> dict[str, float]:
        """Seconds each peer's clock is ahead of ours (negative: behind), as its last answer showed."""
        return {p: s.clock_offset for p, s in self.peers.items() if s.clock_offset is not None}

    def _recipient_keys(self, peer: str) -> RecipientKeys:
        """What the roster in force says about ``peer``'s keys, for :func:`~protocol.rekey.key_action`."""
        roster = self.service.trust.roster
        try:
            current: str | None = roster.encryption_key(peer, self.service.clock())[0]
        except NcpxError:
            current = None
        return RecipientKeys(roster.withdrawn(peer), current, roster.revoked_encryption_kids(peer))

    async def _send(self, peer: str, schedule: PeerSchedule, rows: list[OutboxItem]) -> None:
        items = {row.seq: Item(row.seq, row.ref, row.queued_at, row.attempts) for row in rows}
        keys = self._recipient_keys(peer)
        if keys.withdrawn:
            envelopes = [items[r.seq] for r in rows if r.item == "envelope"]
            others = [items[r.seq] for r in rows if r.item != "envelope"]
            log.warning("%s was revoked: %d queued message(s) end undeliverable", peer, len(envelopes))
            await self._persist(peer, schedule.withdrawn(envelopes, others))
            return
        action = {
            r.seq: key_action(keys, _recipient_key(r.payload), r.handed) for r in rows if r.item == "envelope"
        }
        expired = schedule.expired(
            [items[s] for s, a in action.items() if a is not KeyAction.WITHDRAW], self._now()
        )
        gone = {e.item.seq for e in expired}
        resealing = [r for r in rows if action.get(r.seq) is KeyAction.RESEAL and r.seq not in gone]
        if resealing:
            resealed, kept = await self.service.reseal(peer, resealing)
            for seq in kept:  # not sealed again: as if it may have reached the peer
                row = next(r for r in resealing if r.seq == seq)
                action[seq] = key_action(keys, _recipient_key(row.payload), handed=True)
            rows = [dataclasses.replace(r, payload=resealed.get(r.seq, r.payload)) for r in rows]
        withdrawn = [items[s] for s, a in action.items() if a is KeyAction.WITHDRAW]
        ended = [*schedule.withdrawn(withdrawn, []), *expired]
        if ended:
            await self._persist(peer, ended)
        gone = {e.item.seq for e in ended}
        live = [r for r in rows if r.seq not in gone]
        by_kind: dict[str, list[OutboxItem]] = {}
        for row in live:
            by_kind.setdefault(row.item, []).append(row)
        for chunk in self._chunks(by_kind.get("envelope", [])):
            await self._send_envelopes(peer, schedule, chunk)
        for chunk in self._chunks(by_kind.get("record", [])):
            await self._send_records(peer, schedule, chunk)
        for chunk in self._chunks(by_kind.get("match", [])):
            await self._send_records(peer, schedule, chunk, MATCH_RECORDS_PATH)
        for row in by_kind.get("outcome", []):
            await self._send_outcome(peer, schedule, row)
        statuses = by_kind.get("status", [])
        if statuses:
            status, _ = await self.post(
                peer, STATUS_PATH, {"statuses": [json.loads(i.payload) for i in statuses]}
            )
            if status >= 500 or status in (401, 403, 429) or 300 <= status < 400:
                raise TransportError(f"peer answered {status}")
            # A notice refused as a whole (the message is unknown there) is dropped: retrying cannot help.
            await self._persist(
                peer, schedule.on_items([(items[r.seq], None) for r in statuses], self._now(), _jitter())
            )

    async def _send_records(
        self, peer: str, schedule: PeerSchedule, rows: list[OutboxItem], path: str = RECORDS_PATH
    ) -> None:
        """Metadata (or matching) records to the coordinator, with how far behind this node's queue for it is."""
        records = [json.loads(i.payload) for i in rows]
        status, data = await self.post(peer, path, await self._batch(peer, records, max(i.seq for i in rows)))
        results = data.get("results") if isinstance(data, dict) else None
        if (
            (status >= 300 and (status >= 500 or status in (401, 403, 429) or status < 400))
            or not isinstance(results, list)
            or len(results) != len(rows)
        ):
            raise TransportError(f"coordinator answered {status}")
        answers: list[tuple[Item, str | None]] = []
        for row, result in zip(rows, results, strict=True):
            code = _problem_code(result)
            if code is not None and is_final(code):
                self._refused_for_good(peer, row.ref, code)
            answers.append((Item(row.seq, row.ref, row.queued_at, row.attempts), code))
        await self._persist(peer, schedule.on_items(answers, self._now(), _jitter()))

    async def _heartbeats(self) -> None:
        """Every ``delivery.heartbeat_s``, an empty batch on the record channel to the coordinator.

        Records flow only when officers work, so their arrival cannot tell an idle node from a dead one; this
        signed request (like every request, with the node's record backlog) can. It bypasses the outbox and
        the coordinator's backoff on purpose: a heartbeat queued behind a backlog, or sent late, would say
        nothing about now. A failed one is simply not heard, which is what the coordinator measures.
        """
        await self._listening()
        while True:
            coordinator = self.service.coordinator()
            if coordinator is not None:
                try:
                    await self._heartbeat(coordinator)
                except TransportError as exc:
                    log.debug("heartbeat to %s not heard: %s", coordinator, exc)
                except Exception:
                    log.exception("heartbeat to %s failed unexpectedly", coordinator)
            await asyncio.sleep(self.delivery.heartbeat_s)

    async def _batch(self, peer: str, records: list[Any], after_seq: int = 0) -> dict[str, Any]:
        """A batch of records for the coordinator, with how far behind this node's queue for it is (the rows
        after ``after_seq``: those behind this batch)."""
        backlog, oldest = await self.mailbox.oldest_queued(peer, after_seq)
        payload: dict[str, Any] = {"records": records, "backlog": backlog}
        if oldest is not None:
            payload["oldest_queued_at"] = format_time(datetime.fromtimestamp(oldest, UTC))
        return payload

    async def _heartbeat(self, coordinator: str) -> None:
        status, _ = await self.post(coordinator, RECORDS_PATH, await self._batch(coordinator, []))
        if status >= 300:
            raise TransportError(f"coordinator answered {status}")

    async def _send_outcome(self, peer: str, schedule: PeerSchedule, row: OutboxItem) -> None:
        status, data = await self.post(peer, OUTCOMES_PATH, json.loads(row.payload))
        if status >= 500 or status == 429 or 300 <= status < 400:
            raise TransportError(f"coordinator answered {status}")
        code = (data.get("code") if isinstance(data, dict) else None) if status >= 400 else None
        if status >= 400:
            code = code if isinstance(code, str) else NcpxError.code
            if is_final(code):
                self._refused_for_good(peer, row.ref, code)
        item = Item(row.seq, row.ref, row.queued_at, row.attempts)
        await self._persist(peer, schedule.on_items([(item, code)], self._now(), _jitter()))

    def _chunks(self, items: list[OutboxItem]) -> list[list[OutboxItem]]:
        """``items`` in requests no larger than our own request limit (which a peer configured like us accepts)."""
        budget = self.service.config.limits.max_request_bytes - 1024
        chunks: list[list[OutboxItem]] = []
        size = 0
        for item in items:
            if not chunks or size + len(item.payload) + 1 > budget:
                chunks.append([])
                size = 0
            chunks[-1].append(item)
            size += len(item.payload) + 1
        return chunks

    async def _send_envelopes(self, peer: str, schedule: PeerSchedule, rows: list[OutboxItem]) -> None:
        async def handed() -> None:
            await self.mailbox.mark_sent([i.ref for i in rows], self.service.clock())

        # Outbox payloads are canonical already: each travels as it is, one per line.
        status, data = await self.post(
            peer, ENVELOPES_PATH, join_batch([i.payload for i in rows]), BATCH_TYPE, handed
        )
        results = data.get("results") if isinstance(data, dict) else None
        if status == 413 and not isinstance(results, list):
            # The request as a whole exceeds the peer's limit: send halves. One envelope alone too large
            # waits on its own until its give-up age: an unsigned 413 is no proof the peer will never take it.
            if len(rows) > 1:
                await self._send_envelopes(peer, schedule, rows[: len(rows) // 2])
                await self._send_envelopes(peer, schedule, rows[len(rows) // 2 :])
            else:
                [row] = rows
                item = Item(row.seq, row.ref, row.queued_at, row.attempts)
                refused = Refused(TooLarge.code, signed=False)
                await self._persist(peer, schedule.on_answer([(item, refused)], self._now(), _jitter()))
            return
        # Per-envelope results decide, whatever the status (a batch refused as a whole still lists why);
        # without them, the answer says nothing about the envelopes and the batch is retried.
        if status >= 500 or not isinstance(results, list) or len(results) != len(rows):
            code = data.get("code") if isinstance(data, dict) else None
            raise TransportError(
                f"peer answered {status} without per-envelope results",
                code if isinstance(code, str) else None,
            )
        parsed = {i.ref: Envelope.model_validate_json(i.payload) for i in rows}
        digests = {i.ref: digest_text(i.payload) for i in rows}  # outbox payloads are canonical bytes
        answers = [
            (
                Item(r.seq, r.ref, r.queued_at, r.attempts),
                self._result(peer, parsed[r.ref], digests[r.ref], result),
            )
            for r, result in zip(rows, results, strict=True)
        ]
        effects = schedule.on_answer(answers, self._now(), _jitter())
        now = self.service.clock()
        records = [
            row
            for e in effects
            if isinstance(e, Deliver)
            for row in self.service.record_rows(
                parsed[e.item.ref].header, "sent", digests[e.item.ref], now, e.receipt
            )
        ]
        await self._persist(
            peer, effects, records, {ref: envelope.header for ref, envelope in parsed.items()}
        )
        if records:
            coordinator = self.service.coordinator()
            if coordinator is not None:
                self.wake([coordinator])

    def _result(self, peer: str, envelope: Envelope, digest: str, result: Any) -> Result:
        """What one item of a peer's answer proves, checked against exactly what was sent."""
        if not isinstance(result, dict):
            return NoProof("result is not an object")
        roster = self.service.trust.roster
        if "receipt" in result:
            try:
                receipt = Receipt.model_validate(result["receipt"])
                verify_receipt(receipt, envelope, roster, digest)
            except (NcpxError, ValueError):
                log.warning("peer %s returned an invalid receipt", peer)
                return NoProof("receipt does not verify")
            return Receipted(receipt)
        code = _problem_code(result) or NcpxError.code
        try:
            refusal = Refusal.model_validate(result.get("refusal"))
            verify_refusal(refusal, self.service.me, peer, envelope.header.id, digest, roster)
        except (NcpxError, ValueError):
            return Refused(code, signed=False)
        return Refused(refusal.code, signed=True)

    def fetch_roster_soon(self, peer: str) -> None:
        """A peer holds (or seems to hold) a newer roster than ours: fetch it in the background.

        At most one fetch per peer at a time and per ``ROSTER_FETCH_INTERVAL_S``, so that requests naming an
        unknown key (which trigger this unauthenticated) cannot make us hammer a peer.
        """
        running = self._tasks.get(f"roster:{peer}")
        now = time.monotonic()
        busy = running is not None and not running.done()
        if busy or now - self._roster_fetched.get(peer, float("-inf")) < ROSTER_FETCH_INTERVAL_S:
            return
        self._roster_fetched[peer] = now
        self._tasks[f"roster:{peer}"] = asyncio.create_task(self._fetch_roster_and_retry(peer))

    async def _fetch_roster_and_retry(self, peer: str) -> None:
        if await self.fetch_roster(peer):
            # Requests between us may have failed only because one side lacked this roster (a rotated key):
            # the backlog for this peer is worth retrying at once rather than after its backoff.
            self.peer_alive(peer)

    async def fetch_roster(self, peer: str) -> bool:
        """Ask ``peer`` for its roster and adopt it if it verifies and is newer; never raises."""
        url = self.service.trust.url_of(peer) + ROSTER_PATH
        timeout = aiohttp.ClientTimeout(total=self.delivery.request_timeout_s)
        try:
            async with self.session.get(
                url, timeout=timeout, allow_redirects=False, ssl=self._tls_for(peer)
            ) as response:
                if response.status != 200:
                    raise TransportError(f"peer answered {response.status}")
                raw = await read_capped(response, MAX_ROSTER_BYTES)
            return await self.service.offer_roster(parse_roster(raw))
        except (aiohttp.ClientError, TimeoutError, OSError, NcpxError, TransportError) as exc:
            log.warning("roster from %s not adopted: %s", peer, getattr(exc, "code", type(exc).__name__))
            return False

    async def _listening(self, within: float = 10.0) -> None:
        """Wait until this node's own server accepts connections (the worker starts before it listens).

        A peer answers our hello by sending its backlog (and fetching our roster) at once: said before we
        listen, the hello would only earn us that peer's backoff again.
        """
        config = self.service.config
        host = _LOCAL.get(config.federation.host, config.federation.host)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                _, writer = await asyncio.open_connection(host, config.federation.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    async def _hello(self, peer: str) -> None:
        """Announce ourselves so that the peer drops its backoff for us and sends its backlog now."""
        await self._listening()
        try:
            status, data = await self.post(
                peer, HELLO_PATH, {"roster_version": self.service.trust.roster.version}
            )
        except TransportError:
            return
        if status == 200 and isinstance(data, dict):
            self.peer_alive(peer)
            theirs = data.get("roster_version")
            if isinstance(theirs, int) and theirs > self.service.trust.roster.version:
                await self.fetch_roster(peer)
