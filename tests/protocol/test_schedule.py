"""The delivery schedule as plain function calls: a fixed clock, fixed jitter, no event loop."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from protocol.errors import ALL_ERRORS, NcpxError, error_for_code
from protocol.models import Receipt
from protocol.schedule import (
    GAVE_UP,
    Deliver,
    Done,
    GiveUp,
    Item,
    NoProof,
    PeerSchedule,
    Policy,
    Receipted,
    Refused,
    Retry,
    is_final,
)

MINUTE = 60.0
DAY = 86400.0
DEFAULTS = Policy(initial_s=0.5, cap_s=5 * MINUTE, give_up_s=3 * DAY)
T0 = 1_000_000.0
RECEIPT = Receipt(
    message_id="01a21d52-3102-7bb4-9e4b-2ae21d416243",
    sender="TH",
    receiver="MY",
    envelope_digest="d",
    received_at=datetime(2026, 11, 27, tzinfo=UTC),
    receiver_key="kid-0000",
)


def test_backoff_doubles_from_the_initial_wait_and_stops_at_the_cap() -> None:
    schedule = PeerSchedule(DEFAULTS)
    waits = []
    for _ in range(20):
        schedule.on_failure(T0, "unreachable", jitter=0.999999)
        waits.append(schedule.next_wakeup(T0))
    assert waits[0] == pytest.approx(0.5, rel=1e-5)
    assert waits[1] == pytest.approx(1.0, rel=1e-5)
    assert waits[9] == pytest.approx(256.0, rel=1e-5)
    assert max(waits) == pytest.approx(5 * MINUTE, rel=1e-5)  # the 5-minute cap
    assert waits[-1] == pytest.approx(5 * MINUTE, rel=1e-5)
    assert not schedule.due(T0 + 5 * MINUTE - 1)
    assert schedule.due(T0 + 5 * MINUTE)


def test_jitter_spreads_the_wait_between_half_and_all_of_it() -> None:
    low, high = PeerSchedule(DEFAULTS), PeerSchedule(DEFAULTS)
    for _ in range(30):
        low.on_failure(T0, "x", jitter=0.0)
        high.on_failure(T0, "x", jitter=0.999999)
    assert low.next_wakeup(T0) == pytest.approx(2.5 * MINUTE)
    assert high.next_wakeup(T0) == pytest.approx(5 * MINUTE, rel=1e-5)


def test_contact_from_the_peer_forgets_the_wait() -> None:
    schedule = PeerSchedule(DEFAULTS)
    for _ in range(12):
        schedule.on_failure(T0, "unreachable", jitter=0.5)
    assert not schedule.due(T0 + 60)
    assert schedule.on_contact(T0 + 60) is True
    assert schedule.due(T0 + 60)
    assert schedule.failures == 0
    assert schedule.last_seen == T0 + 60
    assert schedule.on_contact(T0 + 61) is False  # nothing was waiting


def test_items_older_than_the_give_up_age_end_before_they_are_sent() -> None:
    schedule = PeerSchedule(DEFAULTS)
    old, young = Item(1, "a", T0), Item(2, "b", T0 + 10)
    assert schedule.expired([old, young], T0 + 3 * DAY) == []
    assert schedule.expired([old, young], T0 + 3 * DAY + 5) == [GiveUp(old, GAVE_UP)]


def test_a_verified_receipt_delivers_and_counts_as_success() -> None:
    schedule = PeerSchedule(DEFAULTS)
    schedule.on_failure(T0, "unreachable", jitter=0.5)
    item = Item(1, "a", T0)
    assert schedule.on_answer([(item, Receipted(RECEIPT))], T0 + 1, jitter=0.5) == [Deliver(item, RECEIPT)]
    assert schedule.failures == 0
    assert schedule.last_success == T0 + 1


def test_a_signed_final_refusal_ends_the_item() -> None:
    schedule = PeerSchedule(DEFAULTS)
    item = Item(1, "a", T0)
    assert schedule.on_answer([(item, Refused("cannot_open", signed=True))], T0, 0.5) == [
        GiveUp(item, "cannot_open")
    ]


@pytest.mark.parametrize(
    "result",
    [
        Refused("cannot_open", signed=False),  # nobody vouches for it: anyone on the path could say so
        Refused("stale_timestamp", signed=True),  # signed, but it may pass later
        Refused("unknown_key", signed=True),
        NoProof("receipt does not verify"),
    ],
)
def test_anything_else_is_retried_on_its_own_until_the_give_up_age(result: Refused | NoProof) -> None:
    schedule = PeerSchedule(DEFAULTS)
    item = Item(1, "a", T0, attempts=3)
    [effect] = schedule.on_answer([(item, result)], T0 + DAY, jitter=0.999999)
    assert isinstance(effect, Retry)
    assert effect.not_before == pytest.approx(T0 + DAY + 4.0, rel=1e-9)  # 0.5 s doubled for the 4th attempt
    assert effect.code == (result.code if isinstance(result, Refused) else NcpxError.code)
    [late] = schedule.on_answer([(item, result)], T0 + 3 * DAY + 1, jitter=0.5)
    assert late == GiveUp(item, GAVE_UP)


def test_one_item_to_retry_does_not_hold_up_the_peer() -> None:
    schedule = PeerSchedule(DEFAULTS)
    stuck, fine = Item(1, "a", T0), Item(2, "b", T0)
    effects = schedule.on_answer(
        [(stuck, Refused("too_large", signed=False)), (fine, Receipted(RECEIPT))], T0, jitter=0.5
    )
    assert isinstance(effects[0], Retry)
    assert effects[1] == Deliver(fine, RECEIPT)
    assert schedule.due(T0)


def test_a_peer_that_settles_nothing_is_backed_off() -> None:
    schedule = PeerSchedule(DEFAULTS)
    schedule.on_answer([(Item(1, "a", T0), Refused("unknown_key", signed=True))], T0, jitter=0.999999)
    assert schedule.failures == 1
    assert not schedule.due(T0)
    assert schedule.last_error is not None
    assert "unknown_key" in schedule.last_error


def test_items_without_receipts_are_done_dropped_or_retried() -> None:
    schedule = PeerSchedule(DEFAULTS)
    taken, refused, later = Item(1, "a", T0), Item(2, "b", T0), Item(3, "c", T0)
    effects = schedule.on_items([(taken, None), (refused, "malformed"), (later, "unknown_sender")], T0, 0.5)
    assert effects[:2] == [Done(taken), Done(refused)]
    assert isinstance(effects[2], Retry)


def test_retryability_is_a_property_of_the_error_class() -> None:
    retryable = {cls.code for cls in ALL_ERRORS if cls.retryable}
    assert retryable == {
        "unknown_sender",
        "unknown_key",
        "stale_timestamp",
        "no_usable_key",
        "request_timeout",
        "too_many_attempts",
        "quota_exceeded",
        "storage_quota_exceeded",
        "storage_full",
        "key_not_held",
    }
    assert not is_final("a_code_from_a_newer_peer")  # unknown codes are retried, never final
    assert error_for_code("a_code_from_a_newer_peer") is NcpxError
    assert is_final("cannot_open")


def test_a_withdrawn_recipient_ends_its_messages_and_drops_the_rest() -> None:
    schedule = PeerSchedule(DEFAULTS)
    message, notice = Item(1, "a", T0), Item(2, "b", T0)
    assert schedule.withdrawn([message], [notice]) == [GiveUp(message, "revoked_key"), Done(notice)]
