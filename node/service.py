"""A running node: the protocol core wired to storage, the clock, randomness and the delivery worker.

The HTTP handlers call these methods and nothing else; they never touch SQL or keys themselves.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from keys.roster import Roster, SignedRoster
from node.config import NodeConfig, mib
from node.effects import Audit, Effect, Enqueue
from node.intake import (
    Bounds,
    CheckPool,
    DecryptionKeys,
    Outcome,
    Refused,
    check_envelopes,
    check_in_worker,
    chunks,
)
from node.storage.drafts import Draft, Drafts
from node.storage.mailbox import Accepted, Mailbox, MessageView, OutboxItem
from node.trust import Trust
from protocol.codes import CrimeArea, Urgency
from protocol.compose import Outgoing, Random, compose_enquiry, compose_notice, compose_reply
from protocol.encoding import canonical, digest_text, format_time, parse_time
from protocol.envelope import Envelope, open_body
from protocol.errors import (
    CannotOpen,
    InvalidState,
    KeyNotHeld,
    Malformed,
    NcpxError,
    NotANode,
    NoUsableKey,
    Purged,
    StaleTimestamp,
    TooLarge,
    UnknownRecipient,
)
from protocol.ids import RANDOM_BYTES, check_uuid, uuid7
from protocol.lifecycle import ANSWERABLE, Folder
from protocol.lifecycle import Event as LifecycleEvent
from protocol.match_records import make_match_record
from protocol.models import (
    EnquiryBody,
    Header,
    NoticeBody,
    Receipt,
    Refusal,
    ReplyBody,
    SealedBody,
)
from protocol.outcome import Figures, OutcomeReturn, make_return
from protocol.period import shared_by
from protocol.receipts import make_receipt, make_refusal
from protocol.records import Event, make_record
from protocol.rekey import reseal
from protocol.sealing import EPHEMERAL_BYTES, decrypt_with, encrypt_to
from protocol.signing import KeyDirectory, LocalKeys, ed25519_public, raw_public

log = logging.getLogger("ncpx.node")

Clock = Callable[[], datetime]
Records = Callable[[list[Header]], Sequence[Effect]]
"""Given the headers of new messages, what to store in the same transaction (audit, idempotency)."""
Compose = Callable[
    [Any, list[str], CrimeArea, Urgency, LocalKeys, KeyDirectory, Any, datetime, Random], list[Outgoing]
]
"""A composer of a new thread (:func:`compose_enquiry`, :func:`compose_notice`)."""

STATUS_EVENTS = {"read": LifecycleEvent.READ_NOTICE, "acknowledged": LifecycleEvent.ACKNOWLEDGEMENT}
"""What a peer's status notice may say about a message we sent it, and the lifecycle event each one is."""


def system_clock() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Recovery:
    """Envelopes a peer hands back after our restore (:mod:`node.resync`), taken through the normal intake.

    They may be older than ``limits.max_message_age_s``: ``max_age`` reaches back to the backup's time, and
    no further. Our own receipt for an envelope, when the peer kept it and it verifies, is stored again instead
    of a new one, so that the message's deadline still runs from when it first arrived.
    """

    max_age: timedelta
    receipts: dict[str, Receipt]
    """Our verified receipts, by envelope digest."""


@dataclass(frozen=True)
class IncomingResult:
    """Outcome of one envelope of a federation batch."""

    id: str | None
    receipt: Receipt | None = None
    error: NcpxError | None = None
    refusal: Refusal | None = None
    """The error signed by us, so that the sender may trust it (absent when the item cannot be digested)."""


class NodeService:
    """Everything a node does, independent of HTTP."""

    def __init__(
        self,
        config: NodeConfig,
        trust: Trust,
        mailbox: Mailbox,
        clock: Clock = system_clock,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.config = config
        self.trust = trust
        self.mailbox = mailbox
        self.drafts = Drafts(mailbox.db)
        self.clock = clock
        self.random = random
        self.on_queued: Callable[[Sequence[str]], None] = lambda peers: None
        """Set by the delivery worker: wakes it for these peers."""
        self.checkers = CheckPool(config.verify_workers) if config.verify_workers else None
        """Processes that check incoming envelopes; None checks them on a thread of this process."""
        self._turns: dict[str, asyncio.Lock] = {}
        """Per peer: held while one chunk of its envelopes is being checked."""
        self._roster_bytes: tuple[Roster | None, bytes] = (None, b"")
        """The roster the checking processes were last given, and its bytes (encoded once per version)."""

    @property
    def me(self) -> str:
        """This node's participant id."""
        return self.trust.identity.participant

    def _own_key(self) -> Any:
        return self.trust.identity.encryption_keys[-1].public_key()

    def coordinator(self) -> str | None:
        """The coordinator records go to, if the roster names one (and it is not us)."""
        member = self.trust.roster.coordinator()
        return member.id if member is not None and member.id != self.me else None

    def record_rows(
        self,
        header: Header,
        event: Event,
        envelope_digest: str,
        at: datetime,
        receipt: Receipt | None = None,
        reply: tuple[str, str] | None = None,
    ) -> list[Effect]:
        """Metadata records of ``event`` to queue for the coordinator.

        None when the roster names no coordinator, or when the two parties do not both take part in a period
        it serves: the exchanges of anyone else stay between the two countries. ``receipt`` is the message's
        signed receipt and ``reply`` the (id, envelope digest) an ``answered`` record names.
        """
        coordinator = self.coordinator()
        if coordinator is None or not self._concerns(coordinator, header):
            return []
        record = make_record(
            header, event, self.trust.identity, at, envelope_digest, self.random(RANDOM_BYTES), receipt, reply
        )
        return [Enqueue(coordinator, "record", record.record_id, canonical(record.wire()), at)]

    def match_record_rows(
        self,
        session: str,
        parties: tuple[str, str],
        opened_at: datetime,
        counts: tuple[int, int, int],
        code: str | None = None,
    ) -> list[Effect]:
        """The signed matching record of ``session`` between ``parties`` (asker, answerer) to queue for the
        coordinator: ``counts`` are (items asked, matched, new hits), ``code`` the error that ended it. None when
        no coordinator of a period both parties share would count it."""
        coordinator = self.coordinator()
        periods = self.trust.roster.signed.roster.periods or []
        if coordinator is None or not shared_by(periods, coordinator, *parties):
            return []
        now = self.clock()
        record = make_match_record(
            self.trust.identity, now, self.random(RANDOM_BYTES), session, parties, opened_at, counts, code
        )
        return [Enqueue(coordinator, "match", record.record_id, canonical(record.wire()), now)]

    def _concerns(self, coordinator: str, header: Header) -> bool:
        """Whether the exchange ``header`` belongs to ``coordinator``: both parties share one of its periods."""
        periods = self.trust.roster.signed.roster.periods or []
        return shared_by(periods, coordinator, header.sender, header.recipient)

    def wake_coordinator(self) -> None:
        """Tell the delivery worker that something waits for the coordinator (it sleeps until told)."""
        coordinator = self.coordinator()
        if coordinator is not None:
            self.on_queued([coordinator])

    def _check_attachments(self, body: SealedBody) -> None:
        limit = self.config.limits.max_attachment_bytes
        if body.attachment_bytes() > limit:
            raise TooLarge(
                f"the attachments add up to more than this node's limit of {mib(limit)} MiB per message: "
                "send fewer or smaller files, or share large files another way"
            )

    def _check_recipient(self, recipient: str) -> None:
        """Refuse a message to anyone but another active country node, saying which mistake it is."""
        if recipient == self.me:
            raise UnknownRecipient(
                f"{recipient} is your own country: a message goes to another country's node"
            )
        coordinator = self.trust.roster.coordinator()
        if coordinator is not None and coordinator.id == recipient:
            raise NotANode(
                f"{recipient} is the coordinator, which sees only metadata and takes no messages: "
                "send it to a country node"
            )
        if recipient not in self.trust.peers():
            raise UnknownRecipient(f"{recipient} is not an active node in the roster")

    def _check_recipients(self, recipients: Sequence[str]) -> None:
        for recipient in recipients:
            self._check_recipient(recipient)

    # -- officer actions --

    async def submit_enquiry(
        self,
        body: EnquiryBody,
        recipients: list[str],
        area: CrimeArea,
        urgency: Urgency,
        officer: str,
        records: Records = lambda headers: (),
    ) -> list[Header]:
        """Seal and queue an enquiry to each recipient; returns their headers."""
        return await self._submit(compose_enquiry, body, recipients, area, urgency, officer, records)

    async def submit_notice(
        self,
        body: NoticeBody,
        recipients: list[str],
        area: CrimeArea,
        urgency: Urgency,
        officer: str,
        records: Records = lambda headers: (),
    ) -> list[Header]:
        """Seal and queue a deconfliction notice to each recipient; returns their headers."""
        return await self._submit(compose_notice, body, recipients, area, urgency, officer, records)

    def everyone(self) -> list[str]:
        """Every participant a notice "to all" goes to: the active country nodes of the roster, but us."""
        return self.trust.peers()

    async def _submit(
        self,
        compose: Compose,
        body: EnquiryBody | NoticeBody,
        recipients: list[str],
        area: CrimeArea,
        urgency: Urgency,
        officer: str,
        records: Records,
    ) -> list[Header]:
        self._check_attachments(body)
        self._check_recipients(recipients)
        now = self.clock()
        identity = self.trust.identity
        items = compose(
            body, recipients, area, urgency, identity, self.trust.roster, self._own_key(), now, self.random
        )
        headers = [i.envelope.header for i in items]
        signer = raw_public(identity.signing.public_key())
        await self.mailbox.store_outgoing(items, officer, signer, now, records(headers))
        self.on_queued([h.recipient for h in headers])
        return headers

    async def submit_outcome(
        self, period: str, figures: Figures, highlights: str | None, officer: str, audit: Audit
    ) -> OutcomeReturn:
        """Sign this country's outcome return and queue it for the coordinator (highlights sealed to it)."""
        coordinator = self.coordinator()
        if coordinator is None:
            raise NoUsableKey("the roster names no coordinator to send the return to")
        declared = self.trust.roster.period(period)
        if self.me not in declared.participants:
            raise InvalidState(f"{self.me} does not take part in {period}")
        now = self.clock()
        sealed_to = self.trust.roster.encryption_key(coordinator, now) if highlights else None
        outcome = make_return(
            period,
            figures,
            self.trust.identity,
            now,
            highlights,
            sealed_to,
            self.random(EPHEMERAL_BYTES) if highlights else None,
        )
        queued = Enqueue(coordinator, "outcome", f"{period}/{self.me}", canonical(outcome.wire()), now)
        await self.mailbox.store([queued, audit])
        self.on_queued([coordinator])
        return outcome

    async def submit_reply(
        self,
        message_id: str,
        body: ReplyBody,
        officer: str,
        records: Records = lambda headers: (),
        sender: str | None = None,
    ) -> Header:
        """Answer a received enquiry (``sender`` names its sender when two used the same id)."""
        self._check_attachments(body)
        view = await self.mailbox.get(message_id, self.clock(), sender)
        if view.folder is not Folder.INBOX or view.kind not in ANSWERABLE:
            raise InvalidState("only a received enquiry can be answered")
        request = Envelope.model_validate_json(view.envelope).header
        if not self.trust.roster.is_node(request.sender):
            raise NotANode(
                "the sender of this enquiry is no longer a country node in the roster: answer it by other means"
            )
        now = self.clock()
        identity = self.trust.identity
        item = compose_reply(body, request, identity, self.trust.roster, self._own_key(), now, self.random)
        signer = raw_public(identity.signing.public_key())
        reply = (item.envelope.header.id, item.envelope.digest())
        answered = self.record_rows(request, "answered", view.envelope_digest, now, reply=reply)
        extra = [*records([item.envelope.header]), *answered]
        await self.mailbox.store_reply(item, message_id, officer, signer, now, extra)
        self.on_queued([request.sender])
        self.wake_coordinator()
        return item.envelope.header

    async def mark_read(self, message_id: str, sender: str | None = None) -> None:
        """An officer has read a received message: record it and tell the sender (the first time only)."""
        now = self.clock()
        view = await self.mailbox.get(message_id, now, sender)
        if view.folder is not Folder.INBOX:
            raise InvalidState("only received messages are marked read")
        header = Envelope.model_validate_json(view.envelope).header
        notice = {"message_id": message_id, "state": "read", "at": format_time(now)}
        rows = [
            Enqueue(view.sender, "status", message_id, canonical(notice), now),
            *self.record_rows(header, "read", view.envelope_digest, now),
        ]
        if await self.mailbox.mark_read(message_id, view.sender, now, rows):
            self.on_queued([view.sender])
            self.wake_coordinator()

    async def acknowledge(self, message_id: str, sender: str | None = None) -> MessageView:
        """An officer acknowledged a received deconfliction notice: record it and tell the sender (the first time
        only); any other kind of message is refused with :class:`InvalidState`. Returns the message as now stored.
        """
        now = self.clock()
        view = await self.mailbox.get(message_id, now, sender)
        if view.folder is not Folder.INBOX:
            raise InvalidState("only a notice this node received can be acknowledged, not one it sent")
        header = Envelope.model_validate_json(view.envelope).header
        status = {"message_id": message_id, "state": "acknowledged", "at": format_time(now)}
        rows = [
            Enqueue(view.sender, "status", message_id, canonical(status), now),
            *self.record_rows(header, "acknowledged", view.envelope_digest, now),
        ]
        if await self.mailbox.acknowledge(message_id, view.sender, now, rows):
            self.on_queued([view.sender])
            self.wake_coordinator()
        return await self.mailbox.get(message_id, self.clock(), view.sender)

    # -- draft notices --

    async def draft_notice(
        self,
        recipient: str,
        body: NoticeBody,
        area: CrimeArea = CrimeArea.OTHER,
        urgency: Urgency = Urgency.NORMAL,
        origin: str | None = None,
    ) -> Draft:
        """Keep a notice to ``recipient`` as a draft that an officer reviews and sends (nothing is queued).

        For the node's own findings (a hit names the other side's case): the officer decides whether to send it.
        ``origin`` says what made it, for that officer.
        """
        self._check_attachments(body)
        self._check_recipients([recipient])
        now = self.clock()
        sealed = encrypt_to(canonical(body.wire()), self._own_key(), self.random(EPHEMERAL_BYTES))
        draft = Draft(
            id=uuid7(now, self.random(RANDOM_BYTES)),
            recipient=recipient,
            area=area.value,
            urgency=urgency.value,
            sealed=sealed,
            origin=origin,
            created_at=format_time(now),
        )
        await self.drafts.add(draft)
        return draft

    def open_draft(self, draft: Draft) -> NoticeBody:
        """A draft's body, opened with whichever of our encryption keys it was sealed to."""
        for key in reversed(self.trust.identity.encryption_keys):
            try:
                return NoticeBody.model_validate_json(decrypt_with(draft.sealed, key))
            except CannotOpen:
                continue
        raise CannotOpen("no key held any more opens this draft")

    async def send_draft(
        self, draft_id: str, officer: str, records: Records = lambda headers: ()
    ) -> list[Header]:
        """An officer sends a draft notice: sealed now, to its recipient, and queued like any notice."""
        draft = await self.drafts.get(draft_id)
        body = self.open_draft(draft)
        now = self.clock()
        identity = self.trust.identity
        [item] = compose_notice(
            body,
            [draft.recipient],
            CrimeArea(draft.area),
            Urgency(draft.urgency),
            identity,
            self.trust.roster,
            self._own_key(),
            now,
            self.random,
        )
        headers = [item.envelope.header]
        signer = raw_public(identity.signing.public_key())
        await self.drafts.send(draft_id, item, officer, signer, now, records(headers))
        self.on_queued([draft.recipient])
        return headers

    def open_message(self, view: MessageView) -> SealedBody:
        """Open a stored message's body: received ones with our key, sent ones from our own sealed copy."""
        if view.purged_at is not None:
            raise Purged(
                f"this message's body was removed on {view.purged_at[:10]} under the node's retention policy: "
                "only its metadata is kept"
            )
        envelope = Envelope.model_validate_json(view.envelope)
        identity = self.trust.identity
        signer = ed25519_public(view.signer_key)
        if view.folder is Folder.INBOX:
            key = identity.decryption_key(envelope.header.recipient_key)
            candidates = [(envelope.sealed, key)] if key is not None else []
        else:
            candidates = [(view.local_sealed or b"", k) for k in reversed(identity.encryption_keys)]
        for sealed, candidate in candidates:
            try:
                return open_body(envelope.header, sealed, candidate, signer, 1 << 62)
            except CannotOpen:
                continue
        raise CannotOpen("no key held any more opens this message")

    async def reseal(self, peer: str, rows: Sequence[OutboxItem]) -> tuple[dict[int, bytes], set[int]]:
        """Seal queued envelopes to ``peer`` again to its current key, from our own copies of their bodies.

        Returns the new bytes by outbox seq, and the seqs kept as they were: no own copy, no key that opens it
        or signs as it did, or handed to the peer meanwhile. The crypto runs on a worker thread."""
        copies = await self.mailbox.own_copies(peer, [r.ref for r in rows])
        identity = self.trust.identity
        to = self.trust.roster.encryption_key(peer, self.clock())
        own_keys = list(reversed(identity.encryption_keys))
        own_key = self._own_key()

        def seal_again() -> list[tuple[int, Outgoing]]:
            done: list[tuple[int, Outgoing]] = []
            for row in rows:
                envelope = Envelope.model_validate_json(row.payload)
                signer = identity.signing_key(envelope.header.sender_key)
                copy = copies.get(row.ref)
                if signer is None or copy is None:
                    continue
                try:
                    done.append((row.seq, reseal(envelope, copy, own_keys, signer, to, own_key, self.random)))
                except NcpxError as exc:
                    log.warning(
                        "message %s not sealed again (%s): it goes as it was sealed", row.ref, exc.code
                    )
            return done

        done = await asyncio.to_thread(seal_again)
        replaced = set(await self.mailbox.reseal(peer, done))
        if replaced:
            log.info("%d queued message(s) to %s sealed again to its current key", len(replaced), peer)
        resealed = {seq: out.envelope.canonical_bytes() for seq, out in done if seq in replaced}
        return resealed, {r.seq for r in rows} - replaced

    # -- federation --

    async def receive(
        self, sender: str, envelopes: Sequence[bytes], recovery: Recovery | None = None
    ) -> list[IncomingResult]:
        """Verify, store and receipt a batch of envelopes from ``sender`` (already request-authenticated, or
        asked for by us after a restore: ``recovery``).

        Each envelope is kept, digested and receipted as the bytes that arrived: nothing is encoded again. The
        batch is taken chunk by chunk (see :mod:`node.intake`): the checks (parsing, signatures, opening) run in
        the checking pool, one chunk per peer at a time, and each chunk is stored in its own transaction, so a
        maximal batch never stops the node answering its officers, its health checks or other peers, and
        another peer's batch waits for a chunk of it at most. Storing by chunks loses nothing: an envelope
        stored again unchanged gets its first receipt back, so a batch cut short is simply sent again.
        """
        now = self.clock()
        results: list[IncomingResult] = [IncomingResult(id=None)] * len(envelopes)
        for indexes in chunks(envelopes):
            async with self._turns.setdefault(sender, asyncio.Lock()):
                outcomes = await self._check(sender, [envelopes[i] for i in indexes], now, recovery)
            checked: list[tuple[int, Accepted]] = []
            for index, outcome in zip(indexes, outcomes, strict=True):
                if isinstance(outcome, Refused):
                    results[index] = self._refuse(
                        sender, envelopes[index], outcome.message_id, outcome.error, now
                    )
                    continue
                envelope, digest = outcome.envelope, outcome.digest
                kept_receipt = recovery.receipts.get(digest) if recovery is not None else None
                receipt = kept_receipt or make_receipt(envelope, self.trust.identity, now, digest)
                rows = self.record_rows(envelope.header, "received", digest, now, receipt)
                checked.append(
                    (index, Accepted(envelope, envelopes[index], digest, receipt, outcome.signer_key, rows))
                )
            if not checked:
                continue
            stored = await self.mailbox.accept(
                [a for _, a in checked], now, self.config.limits.peer_stored_bytes
            )
            self.wake_coordinator()
            for (index, accepted), kept in zip(checked, stored, strict=True):
                if isinstance(kept, NcpxError):
                    results[index] = self._refuse(
                        sender, envelopes[index], accepted.envelope.header.id, kept, now
                    )
                else:
                    results[index] = IncomingResult(id=accepted.envelope.header.id, receipt=kept)
        return results

    async def _check(
        self, sender: str, envelopes: list[bytes], now: datetime, recovery: Recovery | None
    ) -> list[Outcome]:
        """Every check of a chunk, without storage. Envelopes sealed to a key we do not hold are checked again
        if the key folder, read again, holds new keys (keys rotated on disk are taken up without a restart);
        still lacking it, they are refused for now: the sender keeps the message and tries again until its
        give-up age, so a rotation done in the wrong order loses nothing."""
        limits = self.config.limits
        max_age = max(self.config.max_age, recovery.max_age) if recovery is not None else self.config.max_age
        bounds = Bounds(now, self.config.skew, max_age, limits.max_attachment_bytes, limits.max_request_bytes)
        identity = self.trust.identity
        outcomes = await self._checked_off_loop(sender, envelopes, bounds)
        lacking = [
            i for i, o in enumerate(outcomes) if isinstance(o, Refused) and isinstance(o.error, KeyNotHeld)
        ]
        if lacking:
            await asyncio.to_thread(self.trust.reload_keys)
            if self.trust.identity is not identity:
                again = await self._checked_off_loop(sender, [envelopes[i] for i in lacking], bounds)
                for index, outcome in zip(lacking, again, strict=True):
                    outcomes[index] = outcome
        return outcomes

    async def _checked_off_loop(self, sender: str, envelopes: list[bytes], bounds: Bounds) -> list[Outcome]:
        """:func:`node.intake.check_envelopes` in the checking pool, or on a thread when it has no processes."""
        roster, identity = self.trust.roster, self.trust.identity  # read now: either may just have changed
        if self.checkers is None:
            return await asyncio.to_thread(check_envelopes, sender, envelopes, roster, identity, bounds)
        if self._roster_bytes[0] is not roster:
            self._roster_bytes = (roster, roster.signed.to_bytes())
        return await self.checkers.run(
            check_in_worker,
            sender,
            envelopes,
            self._roster_bytes[1],
            raw_public(roster.authority),
            DecryptionKeys.of(identity),
            bounds,
        )

    def close(self) -> None:
        """Stop the checking processes (the node is stopping)."""
        if self.checkers is not None:
            self.checkers.shutdown()

    def _refuse(
        self, sender: str, raw: bytes, message_id: Any, error: NcpxError, now: datetime
    ) -> IncomingResult:
        """A refused item of ``sender``'s batch, with our signed refusal naming the digest of what arrived."""
        claimed = message_id if isinstance(message_id, str) else None
        try:
            refusal = make_refusal(
                sender,
                check_uuid(claimed) if claimed else None,
                digest_text(raw),
                error.code,
                self.trust.identity,
                now,
            )
        except NcpxError:  # no id worth naming: the sender retries until its give-up age
            return IncomingResult(id=claimed, error=error)
        return IncomingResult(id=claimed, error=error, refusal=refusal)

    async def receive_statuses(self, sender: str, statuses: Sequence[Any]) -> int:
        """Apply ``read`` and ``acknowledged`` notices from ``sender`` about messages we sent it; returns how
        many applied (an acknowledgement naming anything but a notice changes nothing).

        The batch is checked as a whole before anything is applied, then applied in one transaction: a bad notice
        refuses the batch and changes nothing. A time a little ahead of our clock (within the skew) is taken as
        now; further ahead is refused.
        """
        now = self.clock()
        shape = "status must be {message_id, state: read or acknowledged, at}"
        notices: list[tuple[str, LifecycleEvent, datetime]] = []
        for status in statuses:
            state = status.get("state") if isinstance(status, dict) else None
            event = STATUS_EVENTS.get(state) if isinstance(state, str) else None
            if event is None:
                raise Malformed(shape)
            message_id, at = status.get("message_id"), status.get("at")
            if not isinstance(message_id, str) or not isinstance(at, str):
                raise Malformed(shape)
            stated_at = parse_time(at)
            if stated_at > now + self.config.skew:
                raise StaleTimestamp("a status notice cannot be dated in the future")
            notices.append((check_uuid(message_id), event, min(stated_at, now)))
        return await self.mailbox.apply_statuses(sender, notices)

    async def offer_roster(self, candidate: SignedRoster) -> bool:
        """A newer roster from a peer or the operator's file."""
        return await self.trust.offer(candidate, self.clock())
