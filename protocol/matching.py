"""A private matching session, as data: its states, the messages that move it, and the table between them.

Theory of operation (magic-wormhole's key exchange and h11's ``_state.py`` are the models). One session
matches one asker's tokens against one answerer's list, with the cryptography of :mod:`protocol.psi`. Both
sides keep a :class:`Session` and feed it every message, their own as they send it and the peer's as it
arrives; the messages come in one order only, so both sides walk the same states:

    new --offer--> offered --accept--> accepted --blinded--> blinded --answer--> answered --result--> done
      (any state but done)  --abort--> aborted        (any state but done)  --expire--> expired

- ``offer`` (asker): the session id, the number of tokens it will ask about and the expiry time. The
  answerer checks the number against the peer's daily budget (:func:`check_budget`) before it accepts;
- ``accept`` (answerer): go ahead. ``abort`` (either side): stop, with an error code;
- ``blinded`` (asker): exactly the offered number of blinded elements;
- ``answer`` (answerer): the double-blinded elements and the digests of its own list;
- ``result`` (asker): the session is over and the answerer may forget its secret. It carries nothing about
  the outcome: the answerer learns how many tokens were asked about, never how many matched;
- ``expire``: the local timer, at or after ``expires_at``.

Each message may be sent only by its side (:data:`SENDER`), only in the state the table names, and only
before the session expires. Anything else, a replay included, raises a named error
(:class:`~protocol.errors.OutOfOrder`, :class:`~protocol.errors.SessionExpired`) and leaves the session as it
was: :func:`step` returns a new :class:`Session` and never changes the one it was given.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from protocol.errors import BudgetExhausted, Malformed, OutOfOrder, SessionExpired


class Role(StrEnum):
    """Which side of a session."""

    ASKER = "asker"
    """Learns which of its own tokens the peer holds."""
    ANSWERER = "answerer"
    """Learns how many tokens were asked about."""


class State(StrEnum):
    """Every state of a matching session, the same on both sides."""

    NEW = "new"
    """Created; nothing sent or received yet."""
    OFFERED = "offered"
    """The asker's offer is out: how many tokens, until when."""
    ACCEPTED = "accepted"
    """The answerer accepted the offer (it was within the peer's budget)."""
    BLINDED = "blinded"
    """The asker's blinded elements are out."""
    ANSWERED = "answered"
    """The answerer's double-blinded elements and digests are out."""
    DONE = "done"
    """The asker computed the intersection and closed the session (telling nothing of the outcome)."""
    ABORTED = "aborted"
    """One side stopped the session."""
    EXPIRED = "expired"
    """The expiry time passed before the session was done."""


class Message(StrEnum):
    """What can happen to a session: a message of the protocol, or the local expiry timer."""

    OFFER = "offer"
    ACCEPT = "accept"
    BLINDED = "blinded"
    ANSWER = "answer"
    RESULT = "result"
    ABORT = "abort"
    EXPIRE = "expire"


SENDER: Final[dict[Message, frozenset[Role]]] = {
    Message.OFFER: frozenset({Role.ASKER}),
    Message.ACCEPT: frozenset({Role.ANSWERER}),
    Message.BLINDED: frozenset({Role.ASKER}),
    Message.ANSWER: frozenset({Role.ANSWERER}),
    Message.RESULT: frozenset({Role.ASKER}),
    Message.ABORT: frozenset(Role),
    Message.EXPIRE: frozenset(Role),
}
"""Who may send each message (``expire`` comes from one's own timer, whichever side one is)."""

_S, _M = State, Message
_OPEN: Final = (_S.NEW, _S.OFFERED, _S.ACCEPTED, _S.BLINDED, _S.ANSWERED)

TRANSITIONS: Final[dict[State, dict[Message, State]]] = {
    _S.NEW: {_M.OFFER: _S.OFFERED},
    _S.OFFERED: {_M.ACCEPT: _S.ACCEPTED},
    _S.ACCEPTED: {_M.BLINDED: _S.BLINDED},
    _S.BLINDED: {_M.ANSWER: _S.ANSWERED},
    _S.ANSWERED: {_M.RESULT: _S.DONE},
    _S.DONE: {},
    _S.ABORTED: {},
    _S.EXPIRED: {},
}
"""``TRANSITIONS[state][message]``: the next state; a missing entry is out of order."""
for _state in _OPEN:
    TRANSITIONS[_state] |= {_M.ABORT: _S.ABORTED, _M.EXPIRE: _S.EXPIRED}

MAX_LIFETIME: Final = timedelta(minutes=30)
"""Longest a session may be offered for: a matching round is seconds of work; an open session holds secrets."""


@dataclass(frozen=True)
class Session:
    """One side's view of a matching session."""

    id: str
    """Chosen by the asker (a UUIDv7); both sides key the session by it and the peer's id."""
    role: Role
    peer: str
    """The other participant."""
    state: State
    expires_at: datetime
    """After this no message is taken; the expiry timer moves the session to ``expired``."""
    size: int
    """Tokens the asker offered to ask about; the blinded message must carry exactly this many."""


def open_session(
    session_id: str, role: Role, peer: str, size: int, now: datetime, expires_at: datetime
) -> Session:
    """A session as the offer describes it; refuses an empty one or one that outlives :data:`MAX_LIFETIME`."""
    if size < 1:
        raise Malformed("a matching offer must ask about at least one item")
    if not now < expires_at <= now + MAX_LIFETIME:
        raise Malformed("a matching session must expire within 30 minutes of its offer")
    return Session(session_id, role, peer, State.NEW, expires_at, size)


def step(
    session: Session, message: Message, sender: Role, now: datetime, count: int | None = None
) -> Session:
    """The session after ``message`` from ``sender`` at ``now``; ``count`` is the number of elements a
    ``blinded`` or ``answer`` message carries. Raises, leaving ``session`` as it was, when the message is out
    of order, from the wrong side, late, or of the wrong size."""
    target = TRANSITIONS[session.state].get(message)
    if target is None or sender not in SENDER[message]:
        raise OutOfOrder(
            f"a {session.state.value} matching session cannot take '{message.value}' from the {sender.value}"
        )
    if message is not Message.EXPIRE and now >= session.expires_at:
        raise SessionExpired()
    if message is Message.EXPIRE and now < session.expires_at:
        raise OutOfOrder("the matching session has not reached its expiry time yet")
    if message in (Message.BLINDED, Message.ANSWER) and count != session.size:
        raise Malformed("a matching message must carry exactly as many elements as the offer announced")
    return replace(session, state=target)


def check_budget(asked_today: int, size: int, budget: int) -> int:
    """What the peer may still ask today after this offer; raises :class:`BudgetExhausted` when the offer
    would take it over its daily ``budget`` (from the roster). Refused offers are not counted."""
    if asked_today + size > budget:
        raise BudgetExhausted()
    return budget - asked_today - size
