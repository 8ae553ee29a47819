"""The delivery worker: drains the outbox to each peer, in batches, with one backoff per peer.

One task per peer runs the same loop: wait until there is something to send and the peer's backoff has
passed (or until woken), send up to ``batch_size`` items in one signed request, settle the outcome in one
transaction. A transport failure doubles the peer's wait (with jitter, capped); any valid request *from* that
peer (its hello when it comes back, or any other) resets the wait at once, so a returning country gets its
backlog within seconds instead of after the cap.

Exactly-once: a row leaves the outbox only in the transaction that stores the peer's verified receipt, and the
peer answers a repeated envelope with its original receipt, so a crash at any point causes at most a resend.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from keys.roster import MAX_ROSTER_BYTES, parse_roster
from node.mailbox import Mailbox, OutboxItem
from node.service import NodeService
from protocol.encoding import canonical, digest_text, format_time
from protocol.envelope import Envelope
from protocol.errors import NcpxError, error_for_code
from protocol.models import Receipt
from protocol.receipts import verify_receipt
from protocol.requests import sign_request

log = logging.getLogger("ncpx.delivery")

ENVELOPES_PATH = "/federation/v1/envelopes"
STATUS_PATH = "/federation/v1/status"
HELLO_PATH = "/federation/v1/hello"
ROSTER_PATH = "/federation/v1/roster"
RECORDS_PATH = "/federation/v1/records"
OUTCOMES_PATH = "/federation/v1/outcomes"

_LOCAL = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - wildcard names, not binding
"""Where to reach our own server when it listens on every address."""

ROSTER_FETCH_INTERVAL_S = 2.0
"""Least time between two roster fetches from one peer."""

RETRYABLE = frozenset({"unknown_sender", "unknown_key", "no_usable_key", "stale_timestamp", "ncpx_error"})
"""Refusals that may pass later (the peer has not yet adopted the newest roster, a clock is off)."""


class TransportError(Exception):
    """The peer could not be reached or answered outside the protocol."""


@dataclass
class PeerState:
    """Backoff and reachability of one peer, kept in memory (reset by a restart and by the peer's hello)."""

    failures: int = 0
    next_attempt: float = 0.0
    last_error: str | None = None
    last_success: float | None = None
    last_seen: float | None = None
    last_roster_fetch: float = float("-inf")
    """``time.monotonic()`` of the last roster fetch from this peer."""
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class DeliveryWorker:
    """Pushes queued envelopes and notices to peers."""

    def __init__(self, service: NodeService, session: aiohttp.ClientSession) -> None:
        self.service = service
        self.mailbox: Mailbox = service.mailbox
        self.session = session
        self.delivery = service.config.delivery
        self.peers: dict[str, PeerState] = {}
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        service.on_queued = self.wake

    def state(self, peer: str) -> PeerState:
        """The backoff record of ``peer``."""
        if peer not in self.peers:
            self.peers[peer] = PeerState()
        return self.peers[peer]

    def wake(self, peers: Any) -> None:
        """Something was queued for these peers."""
        for peer in peers:
            self._ensure_task(peer)
            self.state(peer).wake.set()

    def peer_alive(self, peer: str) -> None:
        """A valid request arrived from ``peer``: forget its backoff and retry at once."""
        self.state(peer).last_seen = time.time()
        self.retry_now(peer)

    def retry_now(self, peer: str) -> None:
        """Forget ``peer``'s backoff and send its backlog at once."""
        state = self.state(peer)
        if state.failures or state.next_attempt > time.time():
            log.info("peer %s is back; retrying its backlog now", peer)
        state.failures = 0
        state.next_attempt = 0.0
        self._ensure_task(peer)
        state.wake.set()

    async def start(self) -> None:
        """Start a loop for every peer with a backlog and say hello to every peer."""
        for peer in await self.mailbox.peers_with_backlog():
            self._ensure_task(peer)
        for peer in self.service.trust.peers(role=None):
            self._tasks.setdefault(f"hello:{peer}", asyncio.create_task(self._hello(peer)))

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

    async def _loop(self, peer: str) -> None:
        state = self.state(peer)
        while True:
            wait = state.next_attempt - time.time()
            if wait > 0:
                state.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(state.wake.wait(), timeout=wait)
                continue
            state.wake.clear()
            items = await self.mailbox.due_items(peer, self.delivery.batch_size)
            if not items:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(state.wake.wait(), timeout=30)
                continue
            try:
                await self._send(peer, items)
            except TransportError as exc:
                self._fail(state, str(exc))
                await self.mailbox.record_delivery_error(
                    [i.ref for i in items if i.item == "envelope"], "peer unreachable; will retry"
                )
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop delivery to this peer for good
                log.exception("delivery to %s failed unexpectedly", peer)
                self._fail(state, "internal error")
            else:
                state.failures = 0
                state.next_attempt = 0.0
                state.last_error = None
                state.last_success = time.time()

    def _fail(self, state: PeerState, error: str) -> None:
        state.failures += 1
        delay = min(self.delivery.backoff_cap_s, self.delivery.backoff_initial_s * 2 ** (state.failures - 1))
        state.next_attempt = time.time() + delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret
        state.last_error = error

    async def _post(self, peer: str, path: str, payload: dict[str, Any] | bytes) -> tuple[int, Any]:
        body = payload if isinstance(payload, bytes) else canonical(payload)
        service = self.service
        headers = sign_request("POST", path, peer, body, service.trust.identity, service.clock())
        headers["Content-Type"] = "application/json"
        url = service.trust.url_of(peer) + path
        timeout = aiohttp.ClientTimeout(total=self.delivery.request_timeout_s)
        try:
            async with self.session.post(url, data=body, headers=headers, timeout=timeout) as response:
                data = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportError(type(exc).__name__) from exc
        try:
            return status, json.loads(data) if data else None
        except ValueError as exc:
            raise TransportError(f"peer answered {status} without JSON") from exc

    async def _send(self, peer: str, items: list[OutboxItem]) -> None:
        now = self.service.clock()
        give_up = time.time() - self.delivery.give_up_after_s
        expired = [i for i in items if i.queued_at < give_up and i.item == "envelope"]
        live = [i for i in items if i not in expired]
        if expired:
            await self.mailbox.settle([], [], [(i.seq, i.ref, "gave_up") for i in expired], [], now)
        envelopes = [i for i in live if i.item == "envelope"]
        statuses = [i for i in live if i.item == "status"]
        records = [i for i in live if i.item == "record"]
        outcomes = [i for i in live if i.item == "outcome"]
        for chunk in self._chunks(envelopes):
            await self._send_envelopes(peer, chunk)
        for chunk in self._chunks(records):
            await self._send_records(peer, chunk)
        for item in outcomes:
            await self._send_outcome(peer, item)
        if statuses:
            status, _ = await self._post(
                peer, STATUS_PATH, {"statuses": [json.loads(i.payload) for i in statuses]}
            )
            if status >= 500:
                raise TransportError(f"peer answered {status}")
            # A refused notice (the message is unknown there) is dropped: retrying cannot make it valid.
            await self.mailbox.settle([], [i.seq for i in statuses], [], [], now)

    async def _send_records(self, peer: str, items: list[OutboxItem]) -> None:
        """Metadata records to the coordinator, with how far behind this node's queue for it is."""
        backlog, oldest = await self.mailbox.oldest_queued(
            peer, max(i.seq for i in items)
        )  # behind this batch
        payload: dict[str, Any] = {"records": [json.loads(i.payload) for i in items], "backlog": backlog}
        if oldest is not None:
            payload["oldest_queued_at"] = format_time(datetime.fromtimestamp(oldest, UTC))
        status, data = await self._post(peer, RECORDS_PATH, payload)
        results = data.get("results") if isinstance(data, dict) else None
        if (
            status >= 500
            or status in (401, 403, 429)
            or not isinstance(results, list)
            or len(results) != len(items)
        ):
            raise TransportError(f"coordinator answered {status}")
        retry = []
        done = []
        for item, result in zip(items, results, strict=True):
            problem = result.get("problem") if isinstance(result, dict) else None
            code = problem.get("code") if isinstance(problem, dict) else None
            if isinstance(code, str) and code in RETRYABLE:
                retry.append(item.seq)
            else:
                if code is not None:
                    log.warning("coordinator refused record %s: %s", item.ref, code)
                done.append(item.seq)
        await self.mailbox.settle([], done, [], retry, self.service.clock())
        if retry:
            raise TransportError(f"{len(retry)} records refused for now")

    async def _send_outcome(self, peer: str, item: OutboxItem) -> None:
        status, data = await self._post(peer, OUTCOMES_PATH, json.loads(item.payload))
        code = data.get("code") if isinstance(data, dict) else None
        if status >= 500 or status == 429 or (isinstance(code, str) and code in RETRYABLE):
            raise TransportError(f"coordinator answered {status}")
        if status >= 400:
            log.warning("coordinator refused outcome return %s: %s", item.ref, code)
        await self.mailbox.settle([], [item.seq], [], [], self.service.clock())

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

    async def _send_envelopes(self, peer: str, items: list[OutboxItem]) -> None:
        await self.mailbox.mark_sent([i.ref for i in items], self.service.clock())
        parsed = {i.ref: Envelope.model_validate_json(i.payload) for i in items}
        digests = {i.ref: digest_text(i.payload) for i in items}  # outbox payloads are canonical bytes
        # Outbox payloads are canonical already: the batch is their concatenation, not a re-serialisation.
        body = b'{"envelopes":[' + b",".join(i.payload for i in items) + b"]}"
        status, data = await self._post(peer, ENVELOPES_PATH, body)
        if status == 413 and not (isinstance(data, dict) and isinstance(data.get("results"), list)):
            # The request as a whole exceeds the peer's limit: send halves; one envelope alone too large for
            # the peer can never be delivered, and must not hold up everything queued behind it.
            if len(items) == 1:
                refused = [(items[0].seq, items[0].ref, "too_large")]
                await self.mailbox.settle([], [], refused, [], self.service.clock())
                return
            await self._send_envelopes(peer, items[: len(items) // 2])
            await self._send_envelopes(peer, items[len(items) // 2 :])
            return
        # Per-envelope results decide, whatever the status (a batch refused as a whole still lists why);
        # without them, the answer says nothing about the envelopes and the batch is retried.
        results = data.get("results") if isinstance(data, dict) else None
        if status >= 500 or not isinstance(results, list) or len(results) != len(items):
            raise TransportError(f"peer answered {status} without per-envelope results")
        delivered: list[tuple[int, str, Receipt]] = []
        failed: list[tuple[int, str, str]] = []
        retry: list[int] = []
        for item, result in zip(items, results, strict=True):
            code = self._receipt_or_code(parsed[item.ref], digests[item.ref], result)
            if isinstance(code, Receipt):
                delivered.append((item.seq, item.ref, code))
            elif code in RETRYABLE:
                retry.append(item.seq)
            else:
                failed.append((item.seq, item.ref, code))
        now = self.service.clock()
        records = [
            row
            for _, ref, receipt in delivered
            for row in self.service.record_rows(parsed[ref].header, "sent", digests[ref], now, receipt)
        ]
        await self.mailbox.settle(delivered, [], failed, retry, now, records)
        if records:
            coordinator = self.service.coordinator()
            if coordinator is not None:
                self.wake([coordinator])
        if retry:
            raise TransportError(f"{len(retry)} envelopes refused for now")

    def _receipt_or_code(self, envelope: Envelope, digest: str, result: Any) -> Receipt | str:
        if not isinstance(result, dict):
            return "ncpx_error"
        if "receipt" in result:
            try:
                receipt = Receipt.model_validate(result["receipt"])
                verify_receipt(receipt, envelope, self.service.trust.roster, digest)
            except (NcpxError, ValueError):
                log.warning("peer %s returned an invalid receipt", envelope.header.recipient)
                return "ncpx_error"
            return receipt
        problem = result.get("problem")
        code = problem.get("code") if isinstance(problem, dict) else None
        return error_for_code(code).code if isinstance(code, str) else "ncpx_error"

    def fetch_roster_soon(self, peer: str) -> None:
        """A peer holds (or seems to hold) a newer roster than ours: fetch it in the background.

        At most one fetch per peer at a time and per ``ROSTER_FETCH_INTERVAL_S``, so that requests naming an
        unknown key (which trigger this unauthenticated) cannot make us hammer a peer.
        """
        state = self.state(peer)
        running = self._tasks.get(f"roster:{peer}")
        now = time.monotonic()
        busy = running is not None and not running.done()
        if busy or now - state.last_roster_fetch < ROSTER_FETCH_INTERVAL_S:
            return
        state.last_roster_fetch = now
        self._tasks[f"roster:{peer}"] = asyncio.create_task(self._fetch_roster_and_retry(peer))

    async def _fetch_roster_and_retry(self, peer: str) -> None:
        if await self.fetch_roster(peer):
            # Requests between us may have failed only because one side lacked this roster (a rotated key):
            # the backlog for this peer is worth retrying at once rather than after its backoff.
            self.retry_now(peer)

    async def fetch_roster(self, peer: str) -> bool:
        """Ask ``peer`` for its roster and adopt it if it verifies and is newer; never raises."""
        url = self.service.trust.url_of(peer) + ROSTER_PATH
        timeout = aiohttp.ClientTimeout(total=self.delivery.request_timeout_s)
        try:
            async with self.session.get(url, timeout=timeout) as response:
                raw = await response.content.read(MAX_ROSTER_BYTES + 1)
            return await self.service.offer_roster(parse_roster(raw))
        except (aiohttp.ClientError, TimeoutError, OSError, NcpxError) as exc:
            log.warning("roster from %s not adopted: %s", peer, getattr(exc, "code", type(exc).__name__))
            return False

    async def _listening(self, within: float = 10.0) -> None:
        """Wait until this node's own server accepts connections (the worker starts before it listens).

        A peer answers our hello by sending its backlog (and fetching our roster) at once: said before we
        listen, the hello would only earn us that peer's backoff again.
        """
        config = self.service.config
        host = _LOCAL.get(config.listen_host, config.listen_host)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                _, writer = await asyncio.open_connection(host, config.listen_port)
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
            status, data = await self._post(
                peer, HELLO_PATH, {"roster_version": self.service.trust.roster.version}
            )
        except TransportError:
            return
        if status == 200 and isinstance(data, dict):
            self.peer_alive(peer)
            theirs = data.get("roster_version")
            if isinstance(theirs, int) and theirs > self.service.trust.roster.version:
                await self.fetch_roster(peer)
