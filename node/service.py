"""A running node: the protocol core wired to storage, the clock, randomness and the delivery worker.

The HTTP handlers call these methods and nothing else; they never touch SQL or keys themselves.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from keys.roster import SignedRoster
from node.config import NodeConfig
from node.mailbox import Accepted, Mailbox, outbox_row
from node.storage.database import Statement
from node.trust import Trust
from protocol.codes import CrimeArea, Kind, Urgency
from protocol.compose import compose_enquiry, compose_reply
from protocol.encoding import canonical, format_time, parse_time
from protocol.envelope import Envelope, open_body, open_envelope
from protocol.errors import (
    CannotOpen,
    InvalidState,
    Malformed,
    NcpxError,
    NoUsableKey,
    Replayed,
    TooLarge,
    UnknownRecipient,
    UnknownSender,
)
from protocol.ids import RANDOM_BYTES
from protocol.models import EnquiryBody, Header, Receipt, ReplyBody
from protocol.outcome import Figures, OutcomeReturn, make_return
from protocol.period import shared_by
from protocol.receipts import make_receipt
from protocol.records import Event, make_record
from protocol.sealing import EPHEMERAL_BYTES
from protocol.signing import ed25519_public, raw_public

log = logging.getLogger("ncpx.node")

Clock = Callable[[], datetime]
Records = Callable[[list[Header]], Sequence[Statement]]
"""Given the headers of new messages, the rows (audit, idempotency) to store in the same transaction."""


def system_clock() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class IncomingResult:
    """Outcome of one envelope of a federation batch."""

    id: str | None
    receipt: Receipt | None = None
    error: NcpxError | None = None


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
    ) -> list[Statement]:
        """Outbox rows carrying a signed metadata record of ``event`` to the coordinator.

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
        return [outbox_row(coordinator, "record", record.record_id, canonical(record.wire()))]

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
        self, period: str, figures: Figures, highlights: str | None, officer: str, audit: Statement
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
        row = outbox_row(coordinator, "outcome", f"{period}/{self.me}", canonical(outcome.wire()))
        async with self.mailbox.db.transaction() as conn:
            for sql, params in (row, audit):
                await conn.execute(sql, params)
        self.on_queued([coordinator])
        return outcome

    async def submit_reply(
        self, message_id: str, body: ReplyBody, officer: str, records: Records = lambda headers: ()
    ) -> Header:
        """Answer a received enquiry."""
        self._check_attachments(body)
        row = await self.mailbox.get(message_id)
        if row["folder"] != "inbox" or row["kind"] != Kind.ENQUIRY.value:
            raise InvalidState("only a received enquiry can be answered")
        request = Envelope.model_validate_json(row["envelope"]).header
        now = self.clock()
        identity = self.trust.identity
        item = compose_reply(body, request, identity, self.trust.roster, self._own_key(), now, self.random)
        signer = raw_public(identity.signing.public_key())
        reply = (item.envelope.header.id, item.envelope.digest())
        answered = self.record_rows(request, "answered", row["envelope_digest"], now, reply=reply)
        extra = [*records([item.envelope.header]), *answered]
        await self.mailbox.store_outgoing([item], officer, signer, now, extra)
        self.on_queued([request.sender])
        self._wake_coordinator()
        return item.envelope.header

    async def mark_read(self, message_id: str) -> None:
        """An officer has read a received message: record it and tell the sender."""
        row = await self.mailbox.get(message_id)
        if row["folder"] != "inbox":
            raise InvalidState("only received messages are marked read")
        now = self.clock()
        header = Envelope.model_validate_json(row["envelope"]).header
        notice = {"message_id": message_id, "state": "read", "at": format_time(now)}
        rows = [
            outbox_row(row["sender"], "status", message_id, canonical(notice)),
            *self.record_rows(header, "read", row["envelope_digest"], now),
        ]
        if await self.mailbox.mark_read(message_id, now, rows):
            self.on_queued([row["sender"]])
            self._wake_coordinator()

    def open_row(self, row: Any) -> EnquiryBody | ReplyBody:
        """Open a stored message's body: received ones with our key, sent ones from our own sealed copy."""
        envelope = Envelope.model_validate_json(row["envelope"])
        identity = self.trust.identity
        signer = ed25519_public(row["signer_key"])
        if row["folder"] == "inbox":
            key = identity.decryption_key(envelope.header.recipient_key)
            candidates = [(envelope.sealed, key)] if key is not None else []
        else:
            candidates = [(row["local_sealed"], k) for k in reversed(identity.encryption_keys)]
        for sealed, candidate in candidates:
            try:
                return open_body(envelope.header, sealed, candidate, signer, 1 << 62)
            except CannotOpen:
                continue
        raise CannotOpen("no key held any more opens this message")

    # -- federation --

    async def receive(self, sender: str, envelopes: Sequence[Any]) -> list[IncomingResult]:
        """Verify, store and receipt a batch of envelopes from ``sender`` (already request-authenticated)."""
        now = self.clock()
        identity = self.trust.identity
        checked: list[tuple[int, Accepted]] = []
        results: list[IncomingResult] = [IncomingResult(id=None)] * len(envelopes)
        for index, data in enumerate(envelopes):
            message_id = data.get("header", {}).get("id") if isinstance(data, dict) else None
            try:
                try:
                    envelope = Envelope.model_validate(data)
                except ValidationError as exc:
                    raise Malformed("envelope does not match its schema") from exc
                if envelope.header.sender != sender:
                    raise UnknownSender("envelope sender differs from the request signer")
                open_envelope(
                    envelope,
                    self.trust.roster,
                    identity,
                    now,
                    skew=self.config.skew,
                    max_age=self.config.max_age,
                    max_attachment_bytes=self.config.limits.max_attachment_bytes,
                )
                signer: Ed25519PublicKey = self.trust.roster.signing_key(
                    sender, envelope.header.sender_key, envelope.header.created_at
                )
                receipt = make_receipt(envelope, identity, now)
                raw = envelope.canonical_bytes()
                rows = self.record_rows(envelope.header, "received", envelope.digest(), now, receipt)
                checked.append((index, Accepted(envelope, raw, receipt, raw_public(signer), rows)))
                results[index] = IncomingResult(id=envelope.header.id)
            except NcpxError as exc:
                results[index] = IncomingResult(
                    id=message_id if isinstance(message_id, str) else None, error=exc
                )
        if checked:
            stored = await self.mailbox.accept([a for _, a in checked], now)
            self._wake_coordinator()
            for (index, accepted), outcome in zip(checked, stored, strict=True):
                if isinstance(outcome, Replayed):
                    results[index] = IncomingResult(id=accepted.envelope.header.id, error=outcome)
                else:
                    results[index] = IncomingResult(id=accepted.envelope.header.id, receipt=outcome)
        return results

    async def receive_statuses(self, sender: str, statuses: Sequence[Any]) -> int:
        """Apply ``read`` notices from ``sender`` about messages we sent it; returns how many applied."""
        applied = 0
        for status in statuses:
            if not isinstance(status, dict) or status.get("state") != "read":
                raise Malformed("status must be {message_id, state: read, at}")
            message_id, at = status.get("message_id"), status.get("at")
            if not isinstance(message_id, str) or not isinstance(at, str):
                raise Malformed("status must be {message_id, state: read, at}")
            await self.mailbox.apply_status(sender, message_id, "read", parse_time(at))
            applied += 1
        return applied

    async def offer_roster(self, candidate: SignedRoster) -> bool:
        """A newer roster from a peer or the operator's file."""
        return await self.trust.offer(candidate, self.clock())
