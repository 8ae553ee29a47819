"""Re-sync after a restore: a node restored from a backup asks each peer for what it holds for it since then.

A backup is a recovery point: whatever the node stored after it is gone from its own file. Most of it still
exists at its peers, who keep every message exchanged with us. ``ncpx restore`` plans a re-sync from the
backup's time (less the clock skew); at its next start the node asks every country peer, with a signed
``POST /federation/v1/resync``, in two parts, each paged until an empty page:

``sent_by_us``
    Our envelopes the peer received, with the peer's signed receipts and when its officers read or
    acknowledged them. Each envelope must carry our own valid signature and each receipt the peer's, or it is
    skipped. They come back into our sent folder as delivered (then read, acknowledged, through the lifecycle),
    with their metadata records queued again for the coordinator. Their bodies do not come back: an envelope
    is sealed to its recipient, and our own sealed copy was in the lost part of the file. Such a message shows
    its header, states and receipt, and "no key held any more opens this message" when opened.

``sent_to_us``
    The peer's envelopes to us, with our receipts. They go through the normal intake (signatures, opening,
    quotas; the age limit reaches back to the backup), so one we still hold is answered with its stored receipt
    and nothing is stored twice; our own receipt, when it verifies, is kept instead of a new one, so deadlines
    still run from the first arrival. Our officers' reads and acknowledgements, as the peer learnt them, and
    our replies recovered in the first part are applied again to these messages. These bodies can be read.

What cannot come back: messages we composed after the backup that never reached their peer (they were only in
our outbox); our read notices and acknowledgements the peer never received; drafts, watch lists and matching
sessions changed after the backup; our own audit entries since then.

A peer that cannot be reached is asked again later with a growing pause; the page reached is kept, so a
re-sync interrupted by a restart resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from node.delivery import RESYNC_PATH, DeliveryWorker, TransportError
from node.service import NodeService, Recovery
from node.storage.resync import DONE, PARTS, Pending, Recovered, ResyncStore
from protocol.encoding import digest_text, format_time, parse_time
from protocol.envelope import Envelope, verify_envelope
from protocol.errors import Malformed, NcpxError, NotForUs
from protocol.models import Receipt
from protocol.receipts import verify_receipt
from protocol.signing import raw_public

log = logging.getLogger("ncpx.resync")

PAUSE_S = (1.0, 300.0)
"""First and longest pause before asking again the peers that could not be asked."""


class Resyncer:
    """Asks each peer in the re-sync plan for its pages and stores them; ends when every peer has answered."""

    def __init__(self, service: NodeService, worker: DeliveryWorker) -> None:
        self.service = service
        self.worker = worker
        self.store = ResyncStore(service.mailbox.db)

    async def run(self) -> None:
        """Until every planned peer has been asked for everything (returns at once when none is planned)."""
        await self.store.expand(self.service.trust.peers())
        pause = PAUSE_S[0]
        while pending := await self.store.pending():
            failed = False
            for plan in pending:
                try:
                    await self._peer(plan)
                except TransportError as exc:
                    log.warning("re-sync from %s waits: %s", plan.peer, exc)
                    failed = True
            if failed:
                await asyncio.sleep(pause)
                pause = min(pause * 2, PAUSE_S[1])

    async def _peer(self, plan: Pending) -> None:
        part, after = plan.part, plan.after
        limit = 2 * self.service.config.limits.max_request_bytes + 1024 * 1024
        while part != DONE:
            request = {"part": part, "since": plan.since, "after": list(after) if after else None}
            status, data = await self.worker.post(plan.peer, RESYNC_PATH, request, answer_limit=limit)
            if status == 404:  # a release without re-sync: nothing to ask it for
                log.warning("%s offers no re-sync; its messages since %s stay missing", plan.peer, plan.since)
                await self.store.advance(plan.peer, PARTS[-1], None, self.service.clock())
                return
            items = data.get("items") if isinstance(data, dict) else None
            if status != 200 or not isinstance(items, list):
                raise TransportError(f"peer answered {status} to a re-sync request")
            if items:
                if part == "sent_by_us":
                    await self._ours(plan, items)
                else:
                    await self._theirs(plan, items)
                after = tuple(data["next"])
            else:
                after = None
            await self.store.advance(plan.peer, part, after, self.service.clock())
            if after is None:
                part = PARTS[PARTS.index(part) + 1] if part != PARTS[-1] else DONE
        log.info("re-sync from %s complete", plan.peer)

    def _max_age(self, plan: Pending) -> timedelta:
        """How old an envelope of the re-sync may be: one accepted at the backup's time could have been created
        ``max_message_age_s`` before it."""
        config = self.service.config
        return self.service.clock() - parse_time(plan.since) + config.max_age + config.skew

    def _parsed(self, item: Any) -> tuple[bytes, Envelope, Receipt | None] | None:
        try:
            raw = str(item["envelope"]).encode("utf-8")
            envelope = Envelope.model_validate_json(raw)
            receipt = Receipt.model_validate(item["receipt"]) if item.get("receipt") else None
        except (KeyError, TypeError, ValueError, ValidationError, NcpxError):
            return None
        return raw, envelope, receipt

    async def _ours(self, plan: Pending, items: list[Any]) -> None:
        """Our envelopes the peer holds, checked (our signature, its receipt) and stored as delivered."""
        service, me = self.service, self.service.me
        roster, now = service.trust.roster, service.clock()
        recovered: list[Recovered] = []
        notices: list[dict[str, str]] = []
        for item in items:
            parsed = self._parsed(item)
            try:
                raw, envelope, receipt = parsed if parsed is not None else (b"", None, None)
                if envelope is None or receipt is None:
                    raise Malformed("not an envelope with its receipt")
                if envelope.header.sender != me or envelope.header.recipient != plan.peer:
                    raise NotForUs("not a message from us to this peer")
                signer = verify_envelope(
                    envelope, roster, plan.peer, now, service.config.skew, self._max_age(plan)
                )
                digest = digest_text(raw)
                verify_receipt(receipt, envelope, roster, digest)
            except NcpxError as exc:
                log.warning("re-sync from %s: an item of ours skipped (%s)", plan.peer, exc.code)
                continue
            rows = service.record_rows(envelope.header, "sent", digest, now, receipt)
            recovered.append(Recovered(envelope, raw, digest, raw_public(signer), receipt, rows))
            for state in ("read", "acknowledged"):
                at = self._stamp(item.get(f"{state}_at"))
                if at is not None:
                    notices.append({"message_id": envelope.header.id, "state": state, "at": at})
        added = await self.store.recover_sent(recovered)
        await service.receive_statuses(plan.peer, notices)
        if added:
            log.info("re-sync from %s: %d message(s) we sent recovered, without bodies", plan.peer, added)

    def _stamp(self, value: Any) -> str | None:
        """A time the peer states (when an officer read a message), never later than now; None if it is none."""
        try:
            return format_time(min(parse_time(value), self.service.clock())) if value is not None else None
        except Malformed:
            return None

    async def _theirs(self, plan: Pending, items: list[Any]) -> None:
        """The peer's envelopes to us, through the normal intake; a refusal that may pass later stops the page."""
        service = self.service
        raws: list[bytes] = []
        receipts: dict[str, Receipt] = {}
        read: list[tuple[str, str]] = []
        acknowledged: list[tuple[str, str]] = []
        for item in items:
            parsed = self._parsed(item)
            if parsed is None:
                log.warning("re-sync from %s: an item skipped (not an envelope)", plan.peer)
                continue
            raw, envelope, receipt = parsed
            raws.append(raw)
            digest = digest_text(raw)
            if receipt is not None and receipt.receiver == service.me:
                try:
                    verify_receipt(receipt, envelope, service.trust.roster, digest)
                    receipts[digest] = receipt
                except NcpxError:
                    pass  # a new receipt is made instead
            read_at, acknowledged_at = (
                self._stamp(item.get("read_at")),
                self._stamp(item.get("acknowledged_at")),
            )
            if read_at is not None:
                read.append((envelope.header.id, read_at))
            if acknowledged_at is not None:
                acknowledged.append((envelope.header.id, acknowledged_at))
        results = await service.receive(plan.peer, raws, Recovery(self._max_age(plan), receipts))
        for result in results:
            if result.error is None:
                continue
            if result.error.retryable:
                raise TransportError(f"an envelope is refused for now ({result.error.code})")
            log.warning("re-sync from %s: an envelope refused (%s)", plan.peer, result.error.code)
        await service.mailbox.recovered_inbox(plan.peer, read, acknowledged)
