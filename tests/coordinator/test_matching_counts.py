"""Private matching at the coordinator: sessions and hits counted per pair and day from signed session records,
figures taken from the asker and confirmed by the answerer, forged or foreign records refused and uncounted."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from protocol.match_records import MatchRecord, make_match_record
from tests.coordinator.support import START, Coordinator

SESSIONS = [f"01890a5d-ac96-774b-bcce-b302099a80{n:02d}" for n in range(20)]


def match(
    c: Coordinator,
    reporter: str,
    session: str,
    parties: tuple[str, str],
    opened: datetime,
    counts: tuple[int, int, int],
    code: str | None = None,
) -> MatchRecord:
    at = opened + timedelta(seconds=2)
    return make_match_record(c.ids[reporter], at, c.rng.randbytes(10), session, parties, opened, counts, code)


async def send(c: Coordinator, reporter: str, *records: MatchRecord | dict[str, Any]) -> list[str | None]:
    payload = {"records": [r.wire() if isinstance(r, MatchRecord) else r for r in records]}
    results = await c.service.receive_match_records(reporter, payload)
    return [r.error.code if r.error else None for r in results]


async def test_sessions_and_hits_are_counted_per_pair_and_day_from_the_askers_record(
    coordinator: Coordinator,
) -> None:
    c = coordinator
    day1, day2 = START + timedelta(days=1, hours=2), START + timedelta(days=3, hours=9)
    # TH asks MY on day 1: 40 items, 3 matched, all new; MY's record confirms it.
    assert await send(c, "TH", match(c, "TH", SESSIONS[0], ("TH", "MY"), day1, (40, 3, 3))) == [None]
    assert await send(c, "MY", match(c, "MY", SESSIONS[0], ("TH", "MY"), day1, (40, 3, 3))) == [None]
    # The next round finds the same 3 again: matched, but no new hit; MY has not reported it (yet).
    assert await send(c, "TH", match(c, "TH", SESSIONS[1], ("TH", "MY"), day1, (40, 3, 0))) == [None]
    # MY asks TH on day 2 and is refused for its budget: both sides report the failure.
    refused = (("MY", "TH"), day2, (500, 0, 0), "budget_exhausted")
    assert await send(c, "MY", match(c, "MY", SESSIONS[2], *refused)) == [None]
    assert await send(c, "TH", match(c, "TH", SESSIONS[2], *refused)) == [None]
    # A record sent twice is stored once.
    assert await send(c, "TH", match(c, "TH", SESSIONS[0], ("TH", "MY"), day1, (40, 3, 3))) == [None]

    tallies = await c.tallies()
    rows = [
        (m.asker, m.answerer, m.day, m.sessions, m.done, m.failed, m.items, m.hits, m.confirmed)
        for m in tallies.matching
    ]
    assert rows == [
        ("MY", "TH", day2.date().isoformat(), 1, 0, 1, 0, 0, 0),
        ("TH", "MY", day1.date().isoformat(), 2, 2, 0, 80, 3, 1),
    ]
    assert (tallies.totals.matching_sessions, tallies.totals.matching_hits) == (3, 3)
    assert await c.count("match_reports") == 5
    [report] = (await c.report())[:1]
    assert "3 private matching sessions, 3 hits found" in report
    assert f"| TH → MY | {day1.date().isoformat()} | 2 | 2 | 0 | 80 | 3 | 1 |" in report


async def test_forged_foreign_and_impossible_records_are_refused_and_change_no_figure(
    coordinator: Coordinator,
) -> None:
    c = coordinator
    day = START + timedelta(days=2)
    before = (await c.tallies()).model_dump(exclude={"as_of"})
    good = match(c, "TH", SESSIONS[3], ("TH", "MY"), day, (10, 1, 1))
    tampered = {**good.wire(), "new_hits": 0}
    assert await send(c, "TH", tampered) == ["bad_signature"]
    # Submitted by another node than the one that signed it.
    assert await send(c, "ID", good) == ["not_for_us"]
    # About a session between two others: ID signs a record of TH and MY's session.
    stranger = good.model_copy(update={"reporter": "ID", "reporter_key": c.ids["ID"].signing_kid})
    assert await send(c, "ID", stranger) == ["not_for_us"]
    # NZ is in the roster but not in the period: its sessions are between it and TH only.
    assert await send(c, "NZ", match(c, "NZ", SESSIONS[4], ("NZ", "TH"), day, (5, 0, 0))) == [
        "outside_periods"
    ]
    # From the future, or ending before it opened.
    future = c.now[0] + timedelta(hours=1)
    assert await send(c, "TH", match(c, "TH", SESSIONS[5], ("TH", "MY"), future, (5, 0, 0))) == [
        "stale_timestamp"
    ]
    backwards = make_match_record(
        c.ids["TH"], day, c.rng.randbytes(10), SESSIONS[6], ("TH", "MY"), day + timedelta(hours=1), (5, 0, 0)
    )
    assert await send(c, "TH", backwards) == ["implausible_time"]
    assert await send(c, "TH", {"record_id": "x", "items": -1}) == ["malformed"]
    assert (await c.tallies()).model_dump(exclude={"as_of"}) == before
    assert await c.count("match_reports") == 0
