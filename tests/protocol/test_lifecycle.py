"""The lifecycle table, as plain function calls: every (state, event) pair of every folder is exercised."""

from __future__ import annotations

import itertools

import pytest

from protocol.codes import Kind
from protocol.errors import InvalidState
from protocol.lifecycle import (
    ACKNOWLEDGEABLE,
    ANSWERABLE,
    INITIAL,
    SAME,
    TRANSITIONS,
    WITH_DEADLINE,
    Event,
    Folder,
    State,
    step,
)

# How far along a message is; undeliverable is the sender's conclusion without proof, below any proof.
PROGRESS = {
    State.QUEUED: 0,
    State.SENT: 1,
    State.UNDELIVERABLE: 2,
    State.RECEIVED: 3,
    State.DELIVERED: 3,
    State.READ: 4,
    State.ANSWERED: 5,
    State.ACKNOWLEDGED: 5,
}

EVERY_PAIR = [
    (folder, state, event)
    for folder in Folder
    for state, event in itertools.product(State, Event)
    if state in TRANSITIONS[folder]
]


@pytest.mark.parametrize(("folder", "state", "event"), EVERY_PAIR)
def test_every_pair_moves_as_the_table_says_or_raises(folder: Folder, state: State, event: Event) -> None:
    expected = TRANSITIONS[folder][state].get(event)
    if expected is None:
        with pytest.raises(InvalidState) as raised:
            step(folder, state, event)
        assert state.value in raised.value.detail
        assert event.value in raised.value.detail
        return
    result = step(folder, state, event)
    if expected == SAME:
        assert result.state is state
        assert not result.moved
    else:
        assert result.state == expected
        assert result.moved


@pytest.mark.parametrize(("folder", "state", "event"), EVERY_PAIR)
def test_no_step_moves_backwards(folder: Folder, state: State, event: Event) -> None:
    try:
        result = step(folder, state, event)
    except InvalidState:
        return
    assert PROGRESS[result.state] >= PROGRESS[state]


def test_states_outside_a_folder_are_refused() -> None:
    with pytest.raises(InvalidState):
        step(Folder.INBOX, State.QUEUED, Event.OFFICER_READ)
    with pytest.raises(InvalidState):
        step(Folder.SENT, State.RECEIVED, Event.RECEIPT)


def test_events_of_the_other_side_are_refused() -> None:
    for state in TRANSITIONS[Folder.INBOX]:
        for event in (
            Event.TRANSMITTED,
            Event.RECEIPT,
            Event.REFUSED,
            Event.READ_NOTICE,
            Event.REPLY_RECEIVED,
            Event.ACKNOWLEDGEMENT,
        ):
            with pytest.raises(InvalidState):
                step(Folder.INBOX, state, event)
    for state in TRANSITIONS[Folder.SENT]:
        for event in (Event.OFFICER_READ, Event.REPLY_SENT, Event.OFFICER_ACKNOWLEDGED):
            with pytest.raises(InvalidState):
                step(Folder.SENT, state, event)


def run(folder: Folder, *events: Event) -> State:
    state = INITIAL[folder]
    for event in events:
        state = step(folder, state, event).state
    return state


def test_the_ordinary_life_of_an_enquiry() -> None:
    assert (
        run(Folder.SENT, Event.TRANSMITTED, Event.RECEIPT, Event.READ_NOTICE, Event.REPLY_RECEIVED)
        is State.ANSWERED
    )
    assert run(Folder.INBOX, Event.OFFICER_READ, Event.REPLY_SENT) is State.ANSWERED


def test_a_read_notice_after_the_answer_leaves_it_answered() -> None:
    assert run(Folder.SENT, Event.TRANSMITTED, Event.REPLY_RECEIVED, Event.READ_NOTICE) is State.ANSWERED


def test_a_receipt_after_a_read_notice_leaves_it_read() -> None:
    assert run(Folder.SENT, Event.TRANSMITTED, Event.READ_NOTICE, Event.RECEIPT) is State.READ


def test_a_refusal_after_a_receipt_changes_nothing() -> None:
    assert run(Folder.SENT, Event.TRANSMITTED, Event.RECEIPT, Event.REFUSED) is State.DELIVERED


def test_proof_of_arrival_overrides_a_give_up() -> None:
    """A signed receipt, read notice or reply is proof; giving up was only the sender's conclusion."""
    assert run(Folder.SENT, Event.REFUSED, Event.RECEIPT) is State.DELIVERED
    assert run(Folder.SENT, Event.REFUSED, Event.READ_NOTICE) is State.READ
    assert run(Folder.SENT, Event.REFUSED, Event.REPLY_RECEIVED) is State.ANSWERED


def test_an_undeliverable_message_is_never_transmitted_again() -> None:
    with pytest.raises(InvalidState):
        run(Folder.SENT, Event.REFUSED, Event.TRANSMITTED)


def test_a_delivered_message_is_never_transmitted_again() -> None:
    with pytest.raises(InvalidState):
        run(Folder.SENT, Event.TRANSMITTED, Event.RECEIPT, Event.TRANSMITTED)


def test_a_second_reply_keeps_it_answered() -> None:
    assert run(Folder.INBOX, Event.REPLY_SENT, Event.REPLY_SENT, Event.OFFICER_READ) is State.ANSWERED


def test_kind_rules() -> None:
    assert {Kind.ENQUIRY} == ANSWERABLE
    assert {Kind.ENQUIRY} == WITH_DEADLINE
    assert {Kind.NOTICE} == ACKNOWLEDGEABLE


def test_the_ordinary_life_of_a_notice() -> None:
    assert (
        run(Folder.SENT, Event.TRANSMITTED, Event.RECEIPT, Event.READ_NOTICE, Event.ACKNOWLEDGEMENT)
        is State.ACKNOWLEDGED
    )
    assert run(Folder.INBOX, Event.OFFICER_READ, Event.OFFICER_ACKNOWLEDGED) is State.ACKNOWLEDGED


def test_an_acknowledgement_implies_delivery_from_any_earlier_sent_state() -> None:
    """Peers' news arrives in any order: an acknowledgement before the receipt is still proof of arrival."""
    for events in ((), (Event.TRANSMITTED,), (Event.TRANSMITTED, Event.RECEIPT), (Event.REFUSED,)):
        assert run(Folder.SENT, *events, Event.ACKNOWLEDGEMENT) is State.ACKNOWLEDGED
    assert run(Folder.INBOX, Event.OFFICER_ACKNOWLEDGED) is State.ACKNOWLEDGED


def test_late_news_leaves_a_notice_acknowledged() -> None:
    assert (
        run(
            Folder.SENT,
            Event.TRANSMITTED,
            Event.ACKNOWLEDGEMENT,
            Event.RECEIPT,
            Event.READ_NOTICE,
            Event.REFUSED,
            Event.ACKNOWLEDGEMENT,
        )
        is State.ACKNOWLEDGED
    )
    assert (
        run(Folder.INBOX, Event.OFFICER_ACKNOWLEDGED, Event.OFFICER_READ, Event.OFFICER_ACKNOWLEDGED)
        is State.ACKNOWLEDGED
    )


def test_an_acknowledged_message_is_never_answered_nor_an_answered_one_acknowledged() -> None:
    with pytest.raises(InvalidState):
        run(Folder.SENT, Event.ACKNOWLEDGEMENT, Event.REPLY_RECEIVED)
    with pytest.raises(InvalidState):
        run(Folder.SENT, Event.REPLY_RECEIVED, Event.ACKNOWLEDGEMENT)
    with pytest.raises(InvalidState):
        run(Folder.INBOX, Event.OFFICER_ACKNOWLEDGED, Event.REPLY_SENT)
    with pytest.raises(InvalidState):
        run(Folder.INBOX, Event.REPLY_SENT, Event.OFFICER_ACKNOWLEDGED)
    with pytest.raises(InvalidState):
        run(Folder.SENT, Event.TRANSMITTED, Event.ACKNOWLEDGEMENT, Event.TRANSMITTED)
