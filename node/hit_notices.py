"""A hit becomes a draft deconfliction notice to the other side, for an officer to review and send.

Matching tells both countries that they hold the same item; what it cannot say is "we are acting on it, call
us first" — that is the notice's job. So each new hit drafts one, filled from our own entry or operation (the
target as structured subjects, or the operation's place and window, with our case and contact). Nothing is sent
until an officer decides to: the draft is local, sealed to the node's own key like every stored body.
"""

from __future__ import annotations

import logging

from node.service import NodeService
from node.storage.watchlist import Held, Watchlist
from protocol.errors import NcpxError
from protocol.models import (
    Address,
    BankAccount,
    NoticeBody,
    NoticeOperation,
    Person,
    Phone,
    Subjects,
    TravelDocument,
    Vessel,
)
from protocol.watchlist import (
    AccountEntry,
    AddressEntry,
    DocumentEntry,
    NewEntry,
    NewOperation,
    PersonEntry,
    PhoneEntry,
    VesselEntry,
)

log = logging.getLogger("ncpx.matching")


def subjects_of(entry: NewEntry, token: str) -> Subjects:
    """A watch-list entry as the structured subject a notice carries (the phone as matched, in E.164)."""
    if isinstance(entry, PersonEntry):
        person = Person(
            family_name=entry.names, date_of_birth=entry.date_of_birth, nationality=entry.nationality
        )
        return Subjects(persons=[person])
    if isinstance(entry, PhoneEntry):
        return Subjects(phones=[Phone(number=token.split(":", 1)[1])])
    if isinstance(entry, DocumentEntry):
        return Subjects(travel_documents=[TravelDocument(number=entry.number)])
    if isinstance(entry, VesselEntry):
        name = entry.name or f"IMO {entry.imo}"
        return Subjects(vessels=[Vessel(name=name, imo=entry.imo, flag=entry.flag)])
    if isinstance(entry, AccountEntry):
        return Subjects(bank_accounts=[BankAccount(account=entry.number)])
    assert isinstance(entry, AddressEntry)
    return Subjects(addresses=[Address(lines=entry.lines, city=entry.city, country=entry.country)])


def operation_of(operation: NewOperation, reference: str) -> NoticeOperation:
    """A planned operation as the notice describes it to the other side's officers."""
    if operation.point is not None:
        point = operation.point
        place = f"{point.latitude:.5f}, {point.longitude:.5f} (within {point.radius_m:.0f} m)"
    else:
        assert operation.address is not None
        place = ", ".join([*operation.address.lines, operation.address.city or "", operation.address.country])
    window = f"{operation.start.isoformat()} to {operation.end.isoformat()} ({operation.zone})"
    return NoticeOperation(reference=reference, what=operation.kind, place=place, window=window)


async def draft_for(service: NodeService, watchlist: Watchlist, peer: str, token: str, held: Held) -> None:
    """One draft notice to ``peer`` about our item ``held``, which matched ``token``."""
    text = (
        f"Private matching found that {peer} also holds this {held.kind}. Our case {held.case_reference} is "
        "active on it: please contact us before acting."
    )
    common = {
        "case_reference": held.case_reference,
        "contact": held.contact,
        "handling": held.handling,
        "handling_note": held.handling_note,
        "text": text,
    }
    if held.ref.source == "operation":
        stored = await watchlist.operation(held.ref.id)
        subject = f"Deconfliction: a planned {held.kind} close to one of {peer}'s"
        body = NoticeBody(
            subject=subject, operation=operation_of(stored.operation, held.case_reference), **common
        )
    else:
        entry = (await watchlist.entry(held.ref.id)).entry
        body = NoticeBody(
            subject=f"Deconfliction: a {held.kind} {peer} also holds",
            subjects=subjects_of(entry, token),
            **common,
        )
    await service.draft_notice(
        peer, body, origin=f"hit with {peer} ({held.kind}, case {held.case_reference})"
    )


async def draft_notices(service: NodeService, watchlist: Watchlist, peer: str, tokens: list[str]) -> int:
    """Draft a notice to ``peer`` for each new hit; how many were drafted. A draft that cannot be made is
    logged and skipped: the hit itself is kept and shown either way."""
    held = await watchlist.entries_for(tokens, service.clock())
    drafted, seen = 0, set()
    for token, holders in held.items():
        if holders[0].ref in seen:  # an operation matches by many (cell, hour) tokens: one notice is enough
            continue
        seen.add(holders[0].ref)
        try:
            await draft_for(service, watchlist, peer, token, holders[0])
            drafted += 1
        except (NcpxError, ValueError) as exc:  # a stored item a notice cannot carry as it is
            log.warning("no draft notice for a hit with %s: %s", peer, getattr(exc, "code", "invalid item"))
    return drafted
