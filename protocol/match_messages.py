"""The matching session's messages on the wire, and the sealed claims that close it.

A session is three signed federation requests from the asker, each answered by the answerer in the same HTTP
exchange (see :mod:`protocol.matching` for the table they walk):

- ``offer`` -> ``accept``: the session id, how many items will be asked about, until when; the answer says
  how much of the asker's daily budget is left (or refuses with ``budget_exhausted``);
- ``blinded`` -> ``answer``: the asker's blinded elements; the answer carries them raised to the answerer's
  secret, and the digests of the answerer's own list (:mod:`protocol.psi`);
- ``result`` -> ``done``: the asker's *claims*, one per item it found in the intersection, naming its own case
  and contact, sealed to the answerer's current encryption key. They are what lets the answering country's
  officers see the hit on their side too: the answerer matches each claimed item against its own list and
  keeps only those it holds, so a claim about anything else tells it nothing and earns the asker nothing (no
  answer is sent back). The intersection is the one thing both sides learn; the rest stays private.
"""

from __future__ import annotations

import json
from typing import Final

from pydantic import Field, ValidationError

from protocol.errors import Malformed
from protocol.models import B64Bytes, KeyId, Model, UtcTime

MAX_CLAIMS: Final = 10_000
"""Most hits one session may claim (also bounded by the size the offer announced)."""


class Offer(Model):
    """Asker: a session of ``size`` items, open until ``expires_at``."""

    session: str = Field(min_length=1, max_length=64, pattern=r"^[0-9a-f-]+$")
    size: int = Field(ge=1, le=1_000_000)
    expires_at: UtcTime


class Accept(Model):
    """Answerer: go ahead; ``budget_left`` items may still be asked of it today after this session."""

    session: str
    budget_left: int


class Blinded(Model):
    """Asker: the blinded elements, 32 bytes each, back to back."""

    session: str
    points: B64Bytes


class Answer(Model):
    """Answerer: the elements raised to its secret (same order) and its own list's digests (sorted)."""

    session: str
    points: B64Bytes
    digests: B64Bytes


class Done(Model):
    """Answerer: the session is closed. It says nothing of the claims, so the asker learns nothing from them."""

    session: str


class Claim(Model):
    """One item the asker found in the intersection, with who to call about it on the asker's side."""

    token: str = Field(min_length=1, max_length=4096)
    case: str = Field(default="", max_length=200)
    contact: str = Field(default="", max_length=500)


class Result(Model):
    """Asker: the session is over. ``claims`` is the sealed JSON list of :class:`Claim` (absent when none),
    sealed to the answerer's encryption key ``kid``."""

    session: str
    kid: KeyId | None = None
    claims: B64Bytes | None = None


def claims_bytes(claims: list[Claim]) -> bytes:
    """What gets sealed: the claims as JSON."""
    return json.dumps([c.wire() for c in claims], separators=(",", ":")).encode("utf-8")


def parse_claims(plaintext: bytes, size: int) -> list[Claim]:
    """Opened claims, refused when malformed or more than the session asked about."""
    try:
        raw = json.loads(plaintext)
        if not isinstance(raw, list):
            raise TypeError
        claims = [Claim.model_validate(item) for item in raw]
    except (ValueError, TypeError, ValidationError) as exc:
        raise Malformed("the matching result's claims do not parse") from exc
    if len(claims) > min(size, MAX_CLAIMS):
        raise Malformed("the matching result claims more items than the session asked about")
    return claims
