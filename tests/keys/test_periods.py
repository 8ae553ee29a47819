"""Periods in the signed roster: declared once, changed only by amendment, never by mistake, in their own zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys import Identity, Roster, add_participant, new_roster, parse_roster, sign_roster
from keys.roster import (
    Role,
    RosterBody,
    SignedRoster,
    add_period,
    amend_period,
    authority_public_text,
    close_period,
)
from protocol.encoding import b64e, canonical, parse_time
from protocol.errors import (
    InvalidPeriod,
    NotACoordinator,
    NotFound,
    PeriodExists,
    PeriodOver,
    UnknownSender,
)
from protocol.period import Period, period_from
from protocol.signing import sign

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
AUTHORITY = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)


def roster_body() -> RosterBody:
    """TH and MY (nodes) and XI-COORD (the coordinator)."""
    body = new_roster(AUTHORITY.public_key(), NOW - timedelta(days=1))
    for pid, role in (("TH", Role.NODE), ("MY", Role.NODE), ("XI-COORD", Role.COORDINATOR)):
        body = add_participant(body, Identity.generate(pid).card(), f"http://{pid.lower()}", role, pid, NOW)
    return body


def period(**changes: object) -> Period:
    fields: dict[str, object] = {
        "name": "jpa-2024",
        "start": NOW - timedelta(days=1),
        "end": NOW + timedelta(days=29),
        "participants": ["TH", "MY"],
        "coordinator": "XI-COORD",
        "timezone": "Asia/Bangkok",
    }
    return period_from({**fields, **changes})


def test_a_declared_period_lives_in_the_signed_roster() -> None:
    body = add_period(roster_body(), period(), NOW)
    roster = Roster(sign_roster(body, AUTHORITY), AUTHORITY.public_key())
    assert roster.period("jpa-2024") == period()
    assert roster.period("jpa-2024").zone_name == "Asia/Bangkok"
    with pytest.raises(NotFound):
        roster.period("jpa-2025")
    assert authority_public_text(AUTHORITY.public_key()).startswith("ncpx-authority:")


def test_re_declaring_a_name_is_refused_and_the_period_stays_as_it_was() -> None:
    body = add_period(roster_body(), period(), NOW)
    with pytest.raises(PeriodExists):
        add_period(body, period(title="replaced", participants=["TH"]), NOW)
    assert body.periods == [period()]


def test_a_country_as_coordinator_is_refused() -> None:
    body = roster_body()
    with pytest.raises(NotACoordinator):
        add_period(body, period(coordinator="TH"), NOW)
    assert body.periods is None


def test_a_member_missing_from_the_roster_is_refused() -> None:
    with pytest.raises(UnknownSender):
        add_period(roster_body(), period(participants=["TH", "AU"]), NOW)


def test_an_end_before_the_start_or_an_unknown_zone_is_a_named_error() -> None:
    with pytest.raises(InvalidPeriod, match="end after it starts"):
        period(end=NOW - timedelta(days=2))
    with pytest.raises(InvalidPeriod, match="time zone"):
        period(timezone="Mars/Olympus_Mons")
    with pytest.raises(InvalidPeriod, match="listed twice"):
        period(participants=["TH", "TH"])
    with pytest.raises(InvalidPeriod, match="name"):
        period(name="no spaces please")


def test_a_past_window_needs_historical() -> None:
    past = period(start=parse_time("2015-09-28T00:00:00+07:00"), end=parse_time("2015-10-29T00:00:00+07:00"))
    with pytest.raises(PeriodOver, match="--historical"):
        add_period(roster_body(), past, NOW)
    assert add_period(roster_body(), past, NOW, historical=True).periods == [past]


def test_amend_and_close_make_new_versions_and_are_validated_as_a_whole() -> None:
    body = add_period(roster_body(), period(), NOW)
    amended = amend_period(body, "jpa-2024", {"title": "JPA", "participants": ["MY"]}, NOW)
    assert amended.version == body.version + 1
    assert (amended.periods or [])[0].participants == ["MY"]
    assert (amended.periods or [])[0].start == period().start  # untouched fields stay
    with pytest.raises(InvalidPeriod):
        amend_period(body, "jpa-2024", {"end": NOW - timedelta(days=5)}, NOW)
    with pytest.raises(UnknownSender):
        amend_period(body, "jpa-2024", {"participants": ["TH", "AU"]}, NOW)
    with pytest.raises(NotFound):
        amend_period(body, "jpa-2099", {"title": "x"}, NOW)

    closed = close_period(body, "jpa-2024", NOW)
    assert (closed.periods or [])[0].end == NOW
    with pytest.raises(PeriodOver):
        close_period(closed, "jpa-2024", NOW + timedelta(hours=1))
    with pytest.raises(InvalidPeriod, match="not started"):
        close_period(body, "jpa-2024", NOW - timedelta(days=2))


def test_a_roster_signed_before_zones_existed_still_verifies() -> None:
    """A period without a zone is signed without the field, so rosters from before zones keep their signature."""
    body = add_period(roster_body(), period(timezone=None), NOW)
    wire = body.wire()
    assert "timezone" not in wire["periods"][0]
    old = {"roster": wire, "sig": b64e(sign(AUTHORITY, "roster", canonical(wire)))}
    parsed = parse_roster(canonical(old))
    roster = Roster(parsed, AUTHORITY.public_key())
    assert roster.period("jpa-2024").zone_name == "UTC"
    assert SignedRoster.model_validate(old).to_bytes() == canonical(old)


def test_local_days_follow_the_periods_zone() -> None:
    p = period(start=parse_time("2015-09-28T00:00:00+07:00"), end=parse_time("2015-10-29T00:00:00+07:00"))
    days = p.local_days()
    assert [days[0].day, days[-1].day, len(days)] == [date(2015, 9, 28), date(2015, 10, 28), 31]
    assert days[0].start == datetime(2015, 9, 27, 17, tzinfo=UTC)
    assert days[0].end == days[1].start == datetime(2015, 9, 28, 17, tzinfo=UTC)
    assert p.last_day() == date(2015, 10, 28)
