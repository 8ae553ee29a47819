"""A country's signed outcome return for a Period of Action: the debrief's figures, and optional highlights.

The enquiry figures come from the exchange itself; everything else the co-chairs report (persons assisted,
warrants, suspects, arrests, investigations, awareness activities, trainings, officers trained) comes from here.
Free-text highlights are optional and, when given, sealed to the coordinator's encryption key, so that they are
readable by the coordinator only and by no node that relays or stores the return.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from pydantic import Field

from protocol.errors import Malformed, NotForUs
from protocol.models import B64Bytes, KeyId, Model, ParticipantId, UtcTime
from protocol.period import PeriodName
from protocol.sealing import decrypt_with, encrypt_to
from protocol.signing import KeyDirectory, LocalKeys, sign, verify

Count = Annotated[int, Field(ge=0, le=10_000_000)]

FIGURES: dict[str, str] = {
    "persons_assisted": "Trafficked persons / victims assisted",
    "search_warrants": "Search warrants executed",
    "suspects_identified": "Suspects identified",
    "arrests": "Arrests",
    "new_investigations": "New investigations opened",
    "awareness_activities": "Awareness-raising activities",
    "trainings_held": "Training sessions held",
    "officers_trained": "Officers trained",
}
"""The debrief's figures, in the order the co-chairs' statement reports them, with their display labels."""


class Figures(Model):
    """One country's counts for the period.

    A figure the country did not give is absent (None), never 0: "not reported" and "none happened" are
    different answers, and the report tells them apart. Absent figures are left out of the signed bytes, so
    returns signed when every figure was required still verify.
    """

    persons_assisted: Count | None = None
    search_warrants: Count | None = None
    suspects_identified: Count | None = None
    arrests: Count | None = None
    new_investigations: Count | None = None
    awareness_activities: Count | None = None
    trainings_held: Count | None = None
    officers_trained: Count | None = None


class OutcomeReturn(Model):
    """The signed return; a later return for the same period replaces an earlier one."""

    v: Literal[1] = 1
    period: PeriodName
    participant: ParticipantId
    submitted_at: UtcTime
    figures: Figures
    highlights: B64Bytes | None = None
    """Free text sealed to the coordinator (``protocol.sealing``), when the country chooses to share it."""
    coordinator_key: KeyId | None = None
    """Key id the highlights are sealed to."""
    reporter_key: KeyId
    sig: B64Bytes = b""


def make_return(
    period: str,
    figures: Figures,
    me: LocalKeys,
    now: datetime,
    highlights: str | None = None,
    coordinator: tuple[str, X25519PublicKey] | None = None,
    ephemeral: bytes | None = None,
) -> OutcomeReturn:
    """A signed return; ``highlights`` need ``coordinator`` (key id and key) and 32 random ``ephemeral`` bytes."""
    sealed = None
    kid = None
    if highlights:
        if coordinator is None or ephemeral is None:
            raise ValueError("sealing highlights needs the coordinator's key and random bytes")
        kid, key = coordinator
        sealed = encrypt_to(highlights.encode("utf-8"), key, ephemeral)
    unsigned = OutcomeReturn(
        period=period,
        participant=me.participant,
        submitted_at=now,
        figures=figures,
        highlights=sealed,
        coordinator_key=kid,
        reporter_key=me.signing_kid,
    )
    return unsigned.model_copy(update={"sig": sign(me.signing, "outcome", unsigned.unsigned_bytes())})


def verify_return(outcome: OutcomeReturn, directory: KeyDirectory, signer: str) -> None:
    """Check the signature, and that the participant signing the request is the one the return is about."""
    if outcome.participant != signer:
        raise NotForUs("a country can only submit its own return")
    key = directory.signing_key(outcome.participant, outcome.reporter_key, outcome.submitted_at)
    verify(key, "outcome", outcome.unsigned_bytes(), outcome.sig)


def open_highlights(outcome: OutcomeReturn, key: X25519PrivateKey) -> str | None:
    """The highlights text, for the coordinator holding the key they were sealed to."""
    if outcome.highlights is None:
        return None
    try:
        return decrypt_with(outcome.highlights, key).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed("highlights are not UTF-8 text") from exc
