"""A running node: the protocol core wired to storage, the clock, randomness and the delivery worker.

The HTTP handlers call these methods and nothing else; they never touch SQL or keys themselves.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from keys.roster import Roster, SignedRoster
from node.config import NodeConfig
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
from node.storage.mailbox import Accepted, Mailbox, MessageView
from node.trust import Trust
from protocol.codes import CrimeArea, Urgency
from protocol.compose import compose_enquiry, compose_reply
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
    Replayed,
    StaleTimestamp,
    TooLarge,
    UnknownRecipient,
)
from protocol.ids import RANDOM_BYTES, check_uuid
from protocol.lifecycle import ANSWERABLE, Folder
from protocol.models import EnquiryBody, Header, Receipt, Refusal, ReplyBody
from protocol.outcome import Figures, OutcomeReturn, make_return
from protocol.period import shared_by
from protocol.receipts import make_receipt, make_refusal
from protocol.records import Event, make_record
from protocol.sealing import EPHEMERAL_BYTES
from protocol.signing import ed25519_public, raw_public

log = logging.getLogger("ncpx.node")

Clock = Callable[[], datetime]
Records = Callable[[list[Header]], Sequence[Effect]]
"""Given the headers of new messages, what to store in the same transaction (audit, idempotency)."""


def system_clock() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


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

    def _concerns(self, coordinator: str, header: Header) -> bool:
        """Whether the exchange ``header`` belongs to ``coordinator``: both parties share one of its periods."""
        periods = self.trust.roster.signed.roster.periods or []
        return shared_by(periods, coordinator, header.sender, header.recipient)

    def _wake_coordinator(self) -> None:
        coordinator = self.coordinator()
        if coordinator is not None:
            self.on_queued([coordinator])

    def _check_attachments(self, body: EnquiryBody | ReplyBody) -> None:
        if body.attachment_bytes() > self.config.limits.max_attachment_bytes:
            raise TooLarge("attachments exceed the configured limit")

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
        self._check_attachments(body)
        for recipient in recipients:
            if recipient not in self.trust.peers():
                raise UnknownRecipient(f"{recipient} is not an active node in the roster")
        now = self.clock()
        identity = self.trust.identity
        items = compose_enquiry(
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
        self._wake_coordinator()
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
            self._wake_coordinator()

    def open_message(self, view: MessageView) -> EnquiryBody | ReplyBody:
        """Open a stored message's body: received ones with our key, sent ones from our own sealed copy."""
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

    # -- federation --

    async def receive(self, sender: str, envelopes: Sequence[bytes]) -> list[IncomingResult]:
        """Verify, store and receipt a batch of envelopes from ``sender`` (already request-authenticated).

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
                outcomes = await self._check(sender, [envelopes[i] for i in indexes], now)
            checked: list[tuple[int, Accepted]] = []
            for index, outcome in zip(indexes, outcomes, strict=True):
                if isinstance(outcome, Refused):
                    results[index] = self._refuse(
                        sender, envelopes[index], outcome.message_id, outcome.error, now
                    )
                    continue
                envelope, digest = outcome.envelope, outcome.digest
                receipt = make_receipt(envelope, self.trust.identity, now, digest)
                rows = self.record_rows(envelope.header, "received", digest, now, receipt)
                checked.append(
                    (index, Accepted(envelope, envelopes[index], digest, receipt, outcome.signer_key, rows))
                )
            if not checked:
                continue
            stored = await self.mailbox.accept([a for _, a in checked], now)
            self._wake_coordinator()
            for (index, accepted), kept in zip(checked, stored, strict=True):
                if isinstance(kept, Replayed):
                    results[index] = self._refuse(
                        sender, envelopes[index], accepted.envelope.header.id, kept, now
                    )
                else:
                    results[index] = IncomingResult(id=accepted.envelope.header.id, receipt=kept)
        return results

    async def _check(self, sender: str, envelopes: list[bytes], now: datetime) -> list[Outcome]:
        """Every check of a chunk, without storage. Envelopes sealed to a key we do not hold are checked again
        if the key folder, read again, holds new keys (keys rotated on disk are taken up without a restart);
        still lacking it, they are refused for now: the sender keeps the message and tries again until its
        give-up age, so a rotation done in the wrong order loses nothing."""
        limits = self.config.limits
        bounds = Bounds(
            now, self.config.skew, self.config.max_age, limits.max_attachment_bytes, limits.max_request_bytes
        )
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
        """Apply ``read`` notices from ``sender`` about messages we sent it; returns how many applied.

        The batch is checked as a whole before anything is applied, then applied in one transaction: a bad notice
        refuses the batch and changes nothing. A time a little ahead of our clock (within the skew) is taken as
        now; further ahead is refused.
        """
        now = self.clock()
        notices: list[tuple[str, datetime]] = []
        for status in statuses:
            if not isinstance(status, dict) or status.get("state") != "read":
                raise Malformed("status must be {message_id, state: read, at}")
            message_id, at = status.get("message_id"), status.get("at")
            if not isinstance(message_id, str) or not isinstance(at, str):
                raise Malformed("status must be {message_id, state: read, at}")
            read_at = parse_time(at)
            if read_at > now + self.config.skew:
                raise StaleTimestamp("a read notice cannot be dated in the future")
            notices.append((check_uuid(message_id), min(read_at, now)))
        return await self.mailbox.apply_read_notices(sender, notices)

    async def offer_roster(self, candidate: SignedRoster) -> bool:
        """A newer roster from a peer or the operator's file."""
        return await self.trust.offer(candidate, self.clock())
