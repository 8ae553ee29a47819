"""The matching session table: the one path through it, and every replayed, early, late or foreign message."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import BudgetExhausted, Malformed, OutOfOrder, SessionExpired
from protocol.matching import (
    MAX_LIFETIME,
    SENDER,
    TRANSITIONS,
    Message,
    Role,
    Session,
    State,
    check_budget,
    open_session,
    step,
)

NOW = datetime(2015, 10, 1, 2, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(minutes=10)
PATH = [
    (Message.OFFER, Role.ASKER, State.OFFERED),
    (Message.ACCEPT, Role.ANSWERER, State.ACCEPTED),
    (Message.BLINDED, Role.ASKER, State.BLINDED),
    (Message.ANSWER, Role.ANSWERER, State.ANSWERED),
    (Message.RESULT, Role.ASKER, State.DONE),
]


def fresh(role: Role = Role.ANSWERER) -> Session:
    return open_session("0190f3a0-0000-7000-8000-000000000001", role, "TH", 3, NOW, EXPIRES)


@pytest.mark.parametrize("role", list(Role))
def test_both_sides_walk_the_same_path(role: Role) -> None:
    session = fresh(role)
    for message, sender, expected in PATH:
        session = step(session, message, sender, NOW, count=3)
        assert session.state is expected


def at(state: State) -> Session:
    return replace(fresh(), state=state)


ILLEGAL = [
    (state, message, sender)
    for state in State
    for message in Message
    for sender in Role
    if message not in TRANSITIONS[state] or sender not in SENDER[message]
]


@pytest.mark.parametrize(("state", "message", "sender"), ILLEGAL)
def test_out_of_order_replayed_or_foreign_messages_are_refused_and_change_nothing(
    state: State, message: Message, sender: Role
) -> None:
    session = at(state)
    with pytest.raises(OutOfOrder):
        step(session, message, sender, EXPIRES + timedelta(hours=1), count=3)
    assert session.state is state


def test_a_replayed_blinded_set_is_refused() -> None:
    session = step(at(State.ACCEPTED), Message.BLINDED, Role.ASKER, NOW, count=3)
    with pytest.raises(OutOfOrder):
        step(session, Message.BLINDED, Role.ASKER, NOW, count=3)
    assert session.state is State.BLINDED


@given(st.lists(st.tuples(st.sampled_from(list(Message)), st.sampled_from(list(Role))), max_size=12))
@settings(max_examples=200)
def test_any_message_sequence_only_walks_the_table(events: list[tuple[Message, Role]]) -> None:
    session = fresh()
    for message, sender in events:
        before = session
        try:
            session = step(session, message, sender, NOW, count=3)
        except OutOfOrder:
            assert session == before
            continue
        assert TRANSITIONS[before.state][message] is session.state
    assert session.state in (
        State.NEW,
        State.OFFERED,
        State.ACCEPTED,
        State.BLINDED,
        State.ANSWERED,
        State.DONE,
        State.ABORTED,
    )


@pytest.mark.parametrize("state", [State.NEW, State.OFFERED, State.ACCEPTED, State.BLINDED, State.ANSWERED])
def test_open_sessions_abort_and_expire(state: State) -> None:
    assert step(at(state), Message.ABORT, Role.ASKER, NOW).state is State.ABORTED
    assert step(at(state), Message.EXPIRE, Role.ANSWERER, EXPIRES).state is State.EXPIRED


def test_a_message_after_expiry_is_refused_and_changes_nothing() -> None:
    session = at(State.OFFERED)
    with pytest.raises(SessionExpired):
        step(session, Message.ACCEPT, Role.ANSWERER, EXPIRES)
    assert session.state is State.OFFERED


def test_the_expiry_timer_cannot_fire_early() -> None:
    with pytest.raises(OutOfOrder):
        step(at(State.BLINDED), Message.EXPIRE, Role.ASKER, EXPIRES - timedelta(seconds=1))


@pytest.mark.parametrize(
    ("message", "state"), [(Message.BLINDED, State.ACCEPTED), (Message.ANSWER, State.BLINDED)]
)
@pytest.mark.parametrize("count", [None, 2, 4])
def test_element_lists_must_have_the_offered_size(message: Message, state: State, count: int | None) -> None:
    sender = Role.ASKER if message is Message.BLINDED else Role.ANSWERER
    with pytest.raises(Malformed):
        step(at(state), message, sender, NOW, count=count)


@pytest.mark.parametrize(
    ("size", "expires_at"),
    [(0, EXPIRES), (3, NOW), (3, NOW + MAX_LIFETIME + timedelta(seconds=1))],
)
def test_empty_or_long_lived_offers_are_refused(size: int, expires_at: datetime) -> None:
    with pytest.raises(Malformed):
        open_session("s", Role.ANSWERER, "TH", size, NOW, expires_at)


def test_the_daily_budget_admits_up_to_its_limit_and_not_beyond() -> None:
    assert check_budget(asked_today=900, size=100, budget=1000) == 0
    with pytest.raises(BudgetExhausted):
        check_budget(asked_today=900, size=101, budget=1000)
    with pytest.raises(BudgetExhausted):
        check_budget(asked_today=1000, size=1, budget=1000)


@given(st.integers(0, 10_000), st.integers(1, 10_000), st.integers(0, 10_000))
def test_an_admitted_offer_never_takes_the_peer_over_its_budget(asked: int, size: int, budget: int) -> None:
    try:
        left = check_budget(asked, size, budget)
    except BudgetExhausted:
        assert asked + size > budget
    else:
        assert left >= 0
        assert asked + size + left == budget
