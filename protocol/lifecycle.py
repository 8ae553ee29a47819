"""The life of a message, as data: its states per folder, the events that move it, and the table between them.

Theory of operation (h11's ``_state.py`` is the model). A message lives in one folder of one node:

    sent:   queued --transmitted--> sent --receipt--> delivered --read_notice--> read --reply_received--> answered
              \\________________________ refused ___________________________> undeliverable

    inbox:  received --officer_read--> read --reply_sent--> answered

A deconfliction notice is never answered: its recipient acknowledges it instead, and the sender learns so.

    sent:   ... delivered --read_notice--> read --acknowledgement--> acknowledged
    inbox:  received --officer_read--> read --officer_acknowledged--> acknowledged

Events come from three places: the delivery loop (``transmitted``, ``receipt``, ``refused``), the peer
(``read_notice``, ``reply_received``, ``acknowledgement``) and the officer (``officer_read``, ``reply_sent``,
``officer_acknowledged``). Which kinds may be answered or acknowledged at all is :data:`KIND_RULES`. Peers' notices travel
independently and may arrive in any order: a read notice after the reply, a receipt after a read notice. So
every step is one of three things, written in :data:`TRANSITIONS`:

- a move forward (later evidence implies the earlier: a read notice for a message still ``sent`` means it was
  delivered and read);
- an explicit idempotent repeat (:data:`SAME`), for news that is already known or is older than what is known;
- anything not in the table raises :class:`~protocol.errors.InvalidState`.

A state never moves backwards. ``undeliverable`` is what the sender concluded without proof; a later signed
receipt, read notice or reply from the peer is proof that it arrived, and moves it forward.

Storage writes a state only through :func:`step`, and the schema's ``CHECK`` constraint is built from
:class:`State`, so a state outside this module cannot be stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from protocol.codes import Kind, Urgency, due_at
from protocol.errors import InvalidState


class Folder(StrEnum):
    """Where a node keeps a message: what it sent, or what it received."""

    SENT = "sent"
    INBOX = "inbox"


class State(StrEnum):
    """Every state a stored message can be in."""

    QUEUED = "queued"
    """Sent folder: sealed and durably queued; not yet handed to the peer."""
    SENT = "sent"
    """Sent folder: handed to the peer at least once; its receipt has not come back."""
    DELIVERED = "delivered"
    """Sent folder: the peer's signed receipt is held."""
    RECEIVED = "received"
    """Inbox: stored and receipted; no officer has opened it."""
    READ = "read"
    """An officer of the receiving country opened it."""
    ANSWERED = "answered"
    """A reply to this enquiry was sent (inbox) or received (sent folder)."""
    ACKNOWLEDGED = "acknowledged"
    """An officer of the receiving country acknowledged this notice (inbox: one of ours; sent folder: theirs)."""
    UNDELIVERABLE = "undeliverable"
    """Sent folder: the peer refused it for good, or the give-up age passed without a receipt."""


class Event(StrEnum):
    """What can happen to a stored message."""

    TRANSMITTED = "transmitted"
    """The delivery loop handed the envelope to the peer (its answer is not known yet)."""
    RECEIPT = "receipt"
    """The peer's receipt for exactly this envelope verified."""
    REFUSED = "refused"
    """The peer refused the envelope for good (a signed refusal), or the give-up age passed."""
    READ_NOTICE = "read_notice"
    """The peer says one of its officers opened the message."""
    REPLY_RECEIVED = "reply_received"
    """A reply naming this message arrived from its recipient."""
    OFFICER_READ = "officer_read"
    """One of our officers opened a received message."""
    REPLY_SENT = "reply_sent"
    """One of our officers answered a received enquiry."""
    ACKNOWLEDGEMENT = "acknowledgement"
    """The peer says one of its officers acknowledged the notice."""
    OFFICER_ACKNOWLEDGED = "officer_acknowledged"
    """One of our officers acknowledged a received notice."""


SAME: Final = "same"
"""Marker in :data:`TRANSITIONS`: the event is an expected repeat and changes nothing."""

INITIAL: Final[dict[Folder, State]] = {Folder.SENT: State.QUEUED, Folder.INBOX: State.RECEIVED}
"""The state a message is stored in when it enters a folder."""

_S = State
_E = Event

TRANSITIONS: Final[dict[Folder, dict[State, dict[Event, State | str]]]] = {
    Folder.SENT: {
        _S.QUEUED: {
            _E.TRANSMITTED: _S.SENT,
            _E.RECEIPT: _S.DELIVERED,
            _E.REFUSED: _S.UNDELIVERABLE,
            _E.READ_NOTICE: _S.READ,
            _E.REPLY_RECEIVED: _S.ANSWERED,
            _E.ACKNOWLEDGEMENT: _S.ACKNOWLEDGED,
        },
        _S.SENT: {
            _E.TRANSMITTED: SAME,
            _E.RECEIPT: _S.DELIVERED,
            _E.REFUSED: _S.UNDELIVERABLE,
            _E.READ_NOTICE: _S.READ,
            _E.REPLY_RECEIVED: _S.ANSWERED,
            _E.ACKNOWLEDGEMENT: _S.ACKNOWLEDGED,
        },
        _S.DELIVERED: {
            _E.RECEIPT: SAME,
            _E.REFUSED: SAME,
            _E.READ_NOTICE: _S.READ,
            _E.REPLY_RECEIVED: _S.ANSWERED,
            _E.ACKNOWLEDGEMENT: _S.ACKNOWLEDGED,
        },
        _S.READ: {
            _E.RECEIPT: SAME,
            _E.REFUSED: SAME,
            _E.READ_NOTICE: SAME,
            _E.REPLY_RECEIVED: _S.ANSWERED,
            _E.ACKNOWLEDGEMENT: _S.ACKNOWLEDGED,
        },
        _S.ANSWERED: {
            _E.RECEIPT: SAME,
            _E.REFUSED: SAME,
            _E.READ_NOTICE: SAME,
            _E.REPLY_RECEIVED: SAME,
        },
        _S.ACKNOWLEDGED: {
            _E.RECEIPT: SAME,
            _E.REFUSED: SAME,
            _E.READ_NOTICE: SAME,
            _E.ACKNOWLEDGEMENT: SAME,
        },
        _S.UNDELIVERABLE: {
            _E.REFUSED: SAME,
            _E.RECEIPT: _S.DELIVERED,
            _E.READ_NOTICE: _S.READ,
            _E.REPLY_RECEIVED: _S.ANSWERED,
            _E.ACKNOWLEDGEMENT: _S.ACKNOWLEDGED,
        },
    },
    Folder.INBOX: {
        _S.RECEIVED: {
            _E.OFFICER_READ: _S.READ,
            _E.REPLY_SENT: _S.ANSWERED,
            _E.OFFICER_ACKNOWLEDGED: _S.ACKNOWLEDGED,
        },
        _S.READ: {
            _E.OFFICER_READ: SAME,
            _E.REPLY_SENT: _S.ANSWERED,
            _E.OFFICER_ACKNOWLEDGED: _S.ACKNOWLEDGED,
        },
        _S.ANSWERED: {_E.OFFICER_READ: SAME, _E.REPLY_SENT: SAME},
        _S.ACKNOWLEDGED: {_E.OFFICER_READ: SAME, _E.OFFICER_ACKNOWLEDGED: SAME},
    },
}
"""``TRANSITIONS[folder][state][event]``: the next state, or :data:`SAME`; a missing entry is illegal."""


@dataclass(frozen=True)
class Step:
    """The outcome of one event: where the message ends up, and whether that is a change."""

    state: State
    moved: bool


def step(folder: Folder, state: State, event: Event) -> Step:
    """Apply ``event`` to a message in ``state``; raises :class:`InvalidState` when the table forbids it."""
    target = TRANSITIONS[folder].get(state, {}).get(event)
    if target is None:
        raise InvalidState(f"a {folder.value} message that is {state.value} cannot take '{event.value}'")
    if target == SAME:
        return Step(state, moved=False)
    return Step(State(target), moved=True)


@dataclass(frozen=True)
class KindRules:
    """What a kind of message means for its lifecycle, said once."""

    answerable: bool
    """An officer may reply to it, and a reply moves it to ``answered``."""
    has_deadline: bool
    """It carries a deadline and can be overdue until answered."""
    acknowledgeable: bool
    """Its recipient's officer acknowledges it, and the acknowledgement moves both copies to ``acknowledged``."""


KIND_RULES: Final[dict[Kind, KindRules]] = {
    Kind.ENQUIRY: KindRules(answerable=True, has_deadline=True, acknowledgeable=False),
    Kind.REPLY: KindRules(answerable=False, has_deadline=False, acknowledgeable=False),
    Kind.NOTICE: KindRules(answerable=False, has_deadline=False, acknowledgeable=True),
}

ANSWERABLE: Final = frozenset(kind for kind, rules in KIND_RULES.items() if rules.answerable)
"""Kinds a reply may name."""
ACKNOWLEDGEABLE: Final = frozenset(kind for kind, rules in KIND_RULES.items() if rules.acknowledgeable)
"""Kinds an officer may acknowledge."""
WITH_DEADLINE: Final = frozenset(kind for kind, rules in KIND_RULES.items() if rules.has_deadline)
"""Kinds that can be overdue."""


def deadline(kind: Kind, urgency: Urgency, received_at: datetime) -> datetime | None:
    """When an answer is due: counted from the receiver's signed receipt time, never from the creation time
    the sender claims, so a backdated message is not overdue on arrival."""
    return due_at(urgency, received_at) if kind in WITH_DEADLINE else None


def is_overdue(kind: Kind, state: State, due: datetime | None, answered: bool, now: datetime) -> bool:
    """Whether a message is past its deadline unanswered (an undeliverable one is never due)."""
    return (
        kind in WITH_DEADLINE
        and not answered
        and state is not State.UNDELIVERABLE
        and due is not None
        and due < now
    )
