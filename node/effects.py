"""What a decision of the node leaves to be stored, as data: the language between the service and storage.

Handlers and the service describe what must become true together with a message (an audit entry, the answer
kept for an Idempotency-Key, an item queued for a peer); only a repository turns these into SQL, inside the one
transaction that also stores the message, so that none of them can exist without the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Audit:
    """Who did what to which target, when; never what a message said."""

    at: datetime
    actor: str
    action: str
    target: str | None
    outcome: str


@dataclass(frozen=True)
class KeepAnswer:
    """The answer given to a request with an Idempotency-Key, returned again for a repeat of it."""

    officer: str
    key: str
    request_hash: str
    status: int
    response: bytes
    at: datetime


@dataclass(frozen=True)
class Enqueue:
    """An item to deliver to ``peer`` (an envelope, a read notice, a metadata record, an outcome return)."""

    peer: str
    item: str
    ref: str
    payload: bytes
    at: datetime


Effect = Audit | KeepAnswer | Enqueue
